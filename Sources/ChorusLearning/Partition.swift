/// How a training set is divided among peers.
public enum PartitionScheme: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Rows dealt out uniformly at random: every peer sees the same label distribution.
    case iid
    /// Label skew as in Hsu, Qi & Brown (2019): each class's rows are split among the peers in
    /// proportions drawn from a symmetric Dirichlet(α). Small α (0.1) gives each peer a few
    /// dominant classes; large α (100) approaches IID.
    case dirichlet(alpha: Double)

    static let accepted = "\"iid\" or \"dirichlet:<alpha>\" with alpha > 0, e.g. \"dirichlet:0.5\""

    /// Parses "iid" or "dirichlet:<alpha>" (case-insensitive, surrounding spaces ignored).
    public init(parsing text: String) throws(SpecParseError) {
        func fail(_ problem: String) -> SpecParseError {
            SpecParseError(kind: "partition", input: text, problem: problem, expected: Self.accepted)
        }
        let s = text.trimmingSpaces.lowercased()
        let parts = s.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        switch parts[0] {
        case "iid":
            guard parts.count == 1 else { throw fail("\"iid\" takes no parameter") }
            self = .iid
        case "dirichlet":
            guard parts.count == 2, !parts[1].isEmpty else { throw fail("dirichlet needs a concentration alpha") }
            guard let alpha = Double(parts[1]) else { throw fail("alpha \"\(parts[1])\" is not a number") }
            guard alpha.isFinite, alpha > 0 else { throw fail("alpha must be positive and finite") }
            self = .dirichlet(alpha: alpha)
        default:
            throw fail(s.isEmpty ? "empty" : "unknown scheme \"\(parts[0])\"")
        }
    }

    /// Decoded from and encoded as its string form, e.g. `partition = "dirichlet:0.5"`.
    public init(from decoder: any Decoder) throws {
        self = try decodeSpec(from: decoder) { (s) throws(SpecParseError) in try PartitionScheme(parsing: s) }
    }

    public func encode(to encoder: any Encoder) throws { try encodeSpec(description, to: encoder) }

    /// The canonical string, which `init(parsing:)` reads back.
    public var description: String {
        switch self {
        case .iid: "iid"
        case .dirichlet(let alpha): "dirichlet:\(alpha)"
        }
    }
}

/// A complete, reproducible division of a dataset among `peers`: scheme plus seed. Every peer
/// computes the same partition from the same settings and takes its own shard, so no data moves.
public struct Partition: Sendable, Hashable {
    public var scheme: PartitionScheme
    public var peers: Int
    public var seed: UInt64

    public init(scheme: PartitionScheme, peers: Int, seed: UInt64) {
        self.scheme = scheme
        self.peers = peers
        self.seed = seed
    }

    public static func iid(peers: Int, seed: UInt64) -> Partition {
        Partition(scheme: .iid, peers: peers, seed: seed)
    }

    public static func dirichlet(alpha: Double, peers: Int, seed: UInt64) -> Partition {
        Partition(scheme: .dirichlet(alpha: alpha), peers: peers, seed: seed)
    }

    /// Parses the scheme string ("iid", "dirichlet:0.5") and adds peers and seed.
    public init(parsing text: String, peers: Int, seed: UInt64) throws(SpecParseError) {
        self.init(scheme: try PartitionScheme(parsing: text), peers: peers, seed: seed)
    }

    /// The row indices (ascending) each peer receives. Every row goes to exactly one peer and
    /// every peer receives at least one row.
    public func assignments(labels: [Int], classCount: Int) throws(DatasetError) -> [[Int]] {
        guard peers > 0 else { throw .invalidArgument("peers must be positive, got \(peers)") }
        guard labels.count >= peers else { throw .tooFewRows(rows: labels.count, peers: peers) }
        var rng = Xoshiro256(seed: seed)
        var shards = [[Int]](repeating: [], count: peers)
        switch scheme {
        case .iid:
            // Shuffle, then cut into contiguous runs whose sizes differ by at most one.
            let order = Sampling.permutation(count: labels.count, using: &rng)
            for p in 0..<peers {
                shards[p] = Array(order[p * labels.count / peers ..< (p + 1) * labels.count / peers])
            }
        case .dirichlet(let alpha):
            guard alpha.isFinite, alpha > 0 else { throw .invalidArgument("Dirichlet alpha must be positive and finite, got \(alpha)") }
            var byClass = [[Int]](repeating: [], count: classCount)
            for (row, label) in labels.enumerated() {
                guard label >= 0, label < classCount else { throw .labelOutOfRange(row: row, label: label, classCount: classCount) }
                byClass[label].append(row)
            }
            for var rows in byClass where !rows.isEmpty {
                Sampling.shuffle(&rows, using: &rng)
                let proportions = Sampling.dirichlet(alpha: alpha, count: peers, using: &rng)
                // Cut points at the rounded cumulative proportions; the last is exactly the end.
                var cumulative = 0.0
                var start = 0
                for p in 0..<peers {
                    cumulative += proportions[p]
                    let end = p == peers - 1 ? rows.count : min(rows.count, Int((cumulative * Double(rows.count)).rounded()))
                    if end > start { shards[p] += rows[start..<end] }
                    start = max(start, end)
                }
            }
            // Small α can leave a peer with nothing; a peer with no data cannot train, so each
            // empty peer takes one row from the currently largest shard (lowest index on ties).
            for p in 0..<peers where shards[p].isEmpty {
                let donor = shards.indices.max { a, b in
                    shards[a].count != shards[b].count ? shards[a].count < shards[b].count : a > b
                }!
                shards[p].append(shards[donor].removeLast())
            }
        }
        return shards.map { $0.sorted() }
    }
}

extension Dataset {
    /// One dataset per peer (see `Partition.assignments`); the class count is kept on every shard.
    public func partition(_ partition: Partition) throws(DatasetError) -> [Dataset] {
        try partition.assignments(labels: labels, classCount: classCount).map { subset($0) }
    }

    /// Peer `index`'s shard of `partition` — what a single peer computes at start-up.
    public func shard(index: Int, of partition: Partition) throws(DatasetError) -> Dataset {
        guard index >= 0, index < partition.peers else {
            throw .invalidArgument("shard index \(index) is outside 0..<\(partition.peers)")
        }
        return subset(try partition.assignments(labels: labels, classCount: classCount)[index])
    }
}

extension String {
    /// Without leading and trailing spaces, tabs and newlines (no Foundation needed).
    var trimmingSpaces: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\n" || $0 == "\r" }
        guard let first = firstIndex(where: { !isSpace($0) }) else { return "" }
        let last = lastIndex(where: { !isSpace($0) })!
        return String(self[first...last])
    }
}
