/// How peers are wired: a deterministic function of the member set, so every peer that sees the
/// same members computes the same graph without talking to anyone.
public enum Topology: Sendable, Equatable, CustomStringConvertible {
    /// Symmetric exponential graph: i joins i ± 2^k (mod n) over members ordered by id.
    /// Spectral gap stays large as n grows (σ₂ 0.5 at n = 16, 0.75 at n = 256) with degree ~2·log₂ n.
    case exponential
    /// i joins i ± 1: cheap but slow to mix (σ₂ ≈ 0.997 at n = 64).
    case ring
    /// Everyone with everyone: exact averaging in one round, degree n − 1.
    case complete
    /// Each member picks k others at random (seeded, over the ordered member list); edges are
    /// made symmetric, so degrees are at least k.
    case randomK(k: Int, seed: UInt64)

    public var description: String {
        switch self {
        case .exponential: return "exponential"
        case .ring: return "ring"
        case .complete: return "complete"
        case let .randomK(k, seed): return "random:\(k):\(seed)"
        }
    }

    public static let help = "exponential | ring | complete | random:K[:SEED]"

    /// Parses "exponential", "ring", "complete", "random:K" or "random:K:SEED".
    public init?(parsing text: String) {
        let parts = text.lowercased().split(separator: ":").map(String.init)
        switch parts.first {
        case "exponential" where parts.count == 1: self = .exponential
        case "ring" where parts.count == 1: self = .ring
        case "complete" where parts.count == 1: self = .complete
        case "random" where parts.count == 2 || parts.count == 3:
            guard let k = Int(parts[1]), k >= 1 else { return nil }
            let seed = parts.count == 3 ? UInt64(parts[2]) : 0
            guard let seed else { return nil }
            self = .randomK(k: k, seed: seed)
        default: return nil
        }
    }

    /// The neighbours of `node` among `members` (any order; duplicates ignored).
    /// Returns [] when `node` is not a member.
    public func neighbours<Node: Comparable & Hashable>(of node: Node, in members: some Sequence<Node>) -> [Node] {
        let ordered = Array(Set(members)).sorted()
        guard let i = ordered.firstIndex(of: node) else { return [] }
        return neighbourIndices(of: i, count: ordered.count).sorted().map { ordered[$0] }
    }

    /// Neighbour indices of index `i` in a graph of `n` nodes.
    public func neighbourIndices(of i: Int, count n: Int) -> Set<Int> {
        guard n > 1 else { return [] }
        var out = Set<Int>()
        switch self {
        case .complete:
            for j in 0..<n where j != i { out.insert(j) }
        case .ring:
            out.insert((i + 1) % n)
            out.insert((i + n - 1) % n)
        case .exponential:
            var step = 1
            while step < n {
                out.insert((i + step) % n)
                out.insert(((i - step) % n + n) % n)
                step *= 2
            }
        case let .randomK(k, seed):
            let picks = Self.randomPicks(n: n, k: min(k, n - 1), seed: seed)
            out.formUnion(picks[i])
            for j in 0..<n where picks[j].contains(i) { out.insert(j) }
        }
        out.remove(i)
        return out
    }

    /// The whole graph as adjacency sets (for analysis and tests).
    public func adjacency(count n: Int) -> [Set<Int>] {
        (0..<n).map { neighbourIndices(of: $0, count: n) }
    }

    private static func randomPicks(n: Int, k: Int, seed: UInt64) -> [Set<Int>] {
        var state = seed ^ (UInt64(n) &* 0x9E37_79B9_7F4A_7C15)
        func next() -> UInt64 {  // SplitMix64: stable across processes and platforms
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        return (0..<n).map { i in
            var chosen = Set<Int>()
            while chosen.count < k {
                let j = Int(next() % UInt64(n))
                if j != i { chosen.insert(j) }
            }
            return chosen
        }
    }
}
