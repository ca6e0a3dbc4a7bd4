/// Who holds which data shard during a run with churn: the rule of docs/experiments.md ("Data
/// under churn"), one implementation for the simulator and for real experiments.
///
/// The training set is dealt into as many shards as there are peers at the start. A peer that
/// crashes or leaves frees its shard; a peer that joins takes the shard freed longest ago, so a
/// replacement brings the data of the peer it replaces, never a copy of someone else's. A
/// restarted peer keeps its own shard. Only when no shard is free (more joins than departures)
/// does a joiner share the shard held by the fewest peers (the lowest such shard).
public struct ShardLedger: Sendable, Equatable {
    public let shards: Int
    private var holders: [Int]
    /// Shards nobody holds, oldest departure first.
    public private(set) var free: [Int] = []

    /// Peer `i` of the starting peers holds shard `i`.
    public init(startingPeers: Int) {
        precondition(startingPeers >= 1, "a run starts with at least one peer")
        shards = startingPeers
        holders = Array(repeating: 1, count: startingPeers)
    }

    /// How many live peers hold `shard`.
    public func holders(of shard: Int) -> Int { holders[shard] }

    /// The shard for a peer that joins now; it counts as held from here on.
    public mutating func assignJoiner() -> Int {
        let shard = free.isEmpty ? holders.indices.min { (holders[$0], $0) < (holders[$1], $1) }! : free.removeFirst()
        holders[shard] += 1
        return shard
    }

    /// A peer holding `shard` crashed or left for good (not a restart).
    public mutating func release(_ shard: Int) {
        precondition(holders[shard] > 0, "shard \(shard) released more often than it was held")
        holders[shard] -= 1
        if holders[shard] == 0 { free.append(shard) }
    }
}
