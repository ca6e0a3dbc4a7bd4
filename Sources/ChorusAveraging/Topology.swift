/// How peers are wired: a deterministic function of the member set (and, for time-varying
/// graphs, of the round), so every peer that sees the same members computes the same graph
/// without talking to anyone. Members are numbered 0…n−1 in id order.
///
/// Spectral figures for each kind (second-largest eigenvalue modulus of the mixing matrix,
/// rounds to shrink consensus error by 10⁶): `chorus topology --kind K --peers N`, and the
/// table in docs/convergence.md.
public enum Topology: Sendable, Equatable, Hashable, CustomStringConvertible {
    /// i joins i ± 1: cheap but slow to mix (σ₂ ≈ 0.997 at n = 64).
    case ring
    /// A 2-D torus of r × c peers, r the largest divisor of n not above √n (4 × 4, 4 × 8, 8 × 8):
    /// i joins its four grid neighbours with wrap-around. A prime n gives a 1 × n torus, a ring.
    case torus
    /// Symmetric exponential graph: i joins i ± 2^k (mod n). Degree about 2·log₂ n, and a
    /// spectral gap that stays large as n grows (σ₂ 0.5 at n = 16 with Metropolis–Hastings).
    case exponential
    /// Directed exponential graph: i sends to i + 2^k (mod n) and hears from i − 2^k. Regular,
    /// with in- and out-degree ⌈log₂ n⌉.
    case directedExponential
    /// Time-varying: in round t, i sends to i + 2^(t mod ⌈log₂ n⌉) only (one peer per round).
    /// With weights ½–½ and n a power of two, ⌈log₂ n⌉ rounds give the exact average.
    case onePeerExponential
    /// A random k-regular undirected graph drawn from `seed` and n (every peer draws the same).
    /// When n·k is odd one peer, chosen by the seed, has degree k + 1.
    case randomRegular(k: Int, seed: UInt64)
    /// Everyone with everyone: exact averaging in one round, degree n − 1.
    case complete

    public var description: String {
        switch self {
        case .ring: "ring"
        case .torus: "torus"
        case .exponential: "exponential"
        case .directedExponential: "directed-exponential"
        case .onePeerExponential: "one-peer-exponential"
        case let .randomRegular(k, seed): seed == 0 ? "random:\(k)" : "random:\(k):\(seed)"
        case .complete: "complete"
        }
    }

    public static let help = "ring | torus | exponential | directed-exponential | one-peer-exponential | random:K[:SEED] | complete"

    /// Every kind once (random with k = 4), for tables and tests.
    public static let examples: [Topology] = [.ring, .torus, .exponential, .directedExponential, .onePeerExponential,
                                              .randomRegular(k: 4, seed: 0), .complete]

    /// Parses the names of `help`.
    public init?(parsing text: String) {
        let parts = text.lowercased().split(separator: ":", omittingEmptySubsequences: false).map(String.init)
        switch parts.first {
        case "ring" where parts.count == 1: self = .ring
        case "torus" where parts.count == 1: self = .torus
        case "exponential" where parts.count == 1: self = .exponential
        case "directed-exponential" where parts.count == 1: self = .directedExponential
        case "one-peer-exponential" where parts.count == 1: self = .onePeerExponential
        case "complete" where parts.count == 1: self = .complete
        case "random" where parts.count == 2 || parts.count == 3:
            guard parts.dropFirst().allSatisfy({ !$0.isEmpty && $0.allSatisfy(\.isASCII) && $0.allSatisfy(\.isNumber) }),
                  let k = Int(parts[1]), k >= 1, k <= 1024 else { return nil }
            let seed = parts.count == 3 ? UInt64(parts[2]) : 0
            guard let seed else { return nil }
            self = .randomRegular(k: k, seed: seed)
        default: return nil
        }
    }

    /// Whether an edge i → j may exist without j → i (Metropolis–Hastings needs undirected graphs).
    public var isDirected: Bool {
        switch self {
        case .directedExponential, .onePeerExponential: true
        default: false
        }
    }

    /// Whether the graph changes from round to round.
    public var isTimeVarying: Bool { self == .onePeerExponential }

    /// Rounds after which a time-varying graph repeats (1 for static ones).
    public func period(count n: Int) -> Int {
        isTimeVarying ? Self.log2Ceiling(n) : 1
    }

    // MARK: Neighbours by index

    /// Whom peer `i` of `n` sends to in round `round` (sorted, without i).
    public func outNeighbours(of i: Int, count n: Int, round: UInt64 = 0) -> [Int] {
        neighbours(of: i, count: n, round: round, outgoing: true)
    }

    /// Whom peer `i` of `n` hears from in round `round` (sorted, without i).
    public func inNeighbours(of i: Int, count n: Int, round: UInt64 = 0) -> [Int] {
        neighbours(of: i, count: n, round: round, outgoing: false)
    }

    /// The out-neighbour lists of every peer (analysis and tests; random graphs are drawn once).
    public func adjacency(count n: Int, round: UInt64 = 0) -> [[Int]] {
        if case let .randomRegular(k, seed) = self {
            return Self.randomRegularGraph(n: n, k: k, seed: seed).map { $0.sorted() }
        }
        return (0..<n).map { outNeighbours(of: $0, count: n, round: round) }
    }

    /// The largest in-degree of the graph (max-degree weights use it): a closed form for every
    /// kind but random graphs.
    public func maxDegree(count n: Int) -> Int {
        guard n > 1 else { return 0 }
        switch self {
        case .randomRegular(let k, _):
            guard k < n - 1 else { return n - 1 }
            return n * k % 2 == 1 ? k + 1 : k
        case .complete: return n - 1
        default: return inNeighbours(of: 0, count: n).count  // vertex-transitive: every peer alike
        }
    }

    private func neighbours(of i: Int, count n: Int, round: UInt64, outgoing: Bool) -> [Int] {
        guard n > 1, (0..<n).contains(i) else { return [] }
        var out: [Int] = []
        func add(_ j: Int) { out.append(((j % n) + n) % n) }
        switch self {
        case .ring:
            add(i + 1)
            add(i - 1)
        case .torus:
            let (rows, columns) = Self.torusShape(n)
            let (r, c) = (i / columns, i % columns)
            out.append(((r + 1) % rows) * columns + c)
            out.append(((r + rows - 1) % rows) * columns + c)
            out.append(r * columns + (c + 1) % columns)
            out.append(r * columns + (c + columns - 1) % columns)
        case .exponential:
            var step = 1
            while step < n {
                add(i + step)
                add(i - step)
                step *= 2
            }
        case .directedExponential:
            var step = 1
            while step < n {
                add(outgoing ? i + step : i - step)
                step *= 2
            }
        case .onePeerExponential:
            let step = 1 << Int(round % UInt64(Self.log2Ceiling(n)))
            add(outgoing ? i + step : i - step)
        case let .randomRegular(k, seed):
            out = Array(Self.randomRegularGraph(n: n, k: k, seed: seed)[i])
        case .complete:
            out = Array(0..<n)
        }
        return Set(out).subtracting([i]).sorted()
    }

    // MARK: Neighbours among members

    /// The neighbours of `node` among `members` in round `round`: whom it sends to (`out`) and
    /// hears from (`in`), each sorted. Both empty when `node` is not a member.
    public func neighbours<Node: Comparable & Hashable>(of node: Node, in members: some Sequence<Node>,
                                                       round: UInt64 = 0) -> (out: [Node], in: [Node]) {
        let ordered = Array(Set(members)).sorted()
        guard let i = ordered.firstIndex(of: node) else { return ([], []) }
        let out = outNeighbours(of: i, count: ordered.count, round: round).map { ordered[$0] }
        let into = isDirected ? inNeighbours(of: i, count: ordered.count, round: round).map { ordered[$0] } : out
        return (out, into)
    }

    /// Everything a peer needs of the graph in one round: whom it sends to and hears from, with
    /// their degrees, its own degrees, the graph's largest degree, and (time-varying graphs) every
    /// peer it sends to in some round of the period. `members` must be sorted and unique.
    public func neighbourhood<Node: Comparable & Hashable & Sendable>(of node: Node, inSorted members: [Node], round: UInt64) -> Neighbourhood<Node> {
        guard let i = members.firstIndex(of: node), members.count > 1 else { return Neighbourhood() }
        let n = members.count
        var result = Neighbourhood<Node>()
        if case let .randomRegular(k, seed) = self {
            let graph = Self.randomRegularGraph(n: n, k: k, seed: seed)
            let mine = graph[i].sorted()
            result.out = mine.map { (members[$0], graph[$0].count) }
            result.in = result.out
            result.maxDegree = graph.map(\.count).max() ?? 0
        } else {
            // Every other kind is vertex-transitive: each peer has the degrees this one has.
            let outs = outNeighbours(of: i, count: n, round: round)
            let ins = isDirected ? inNeighbours(of: i, count: n, round: round) : outs
            let degree = isDirected ? max(outs.count, ins.count) : outs.count
            result.out = outs.map { (members[$0], degree) }
            result.in = ins.map { (members[$0], degree) }
            result.maxDegree = degree
        }
        if isTimeVarying {
            let p = period(count: n)
            let first = round - round % UInt64(p)
            result.retained = Set((0..<p).flatMap { outNeighbours(of: i, count: n, round: first + UInt64($0)) }.map { members[$0] })
        } else {
            result.retained = Set(result.out.map(\.node))
        }
        return result
    }

    // MARK: Shapes

    /// ⌈log₂ n⌉, at least 1.
    static func log2Ceiling(_ n: Int) -> Int {
        var k = 0
        while (1 << k) < n { k += 1 }
        return max(k, 1)
    }

    /// Rows and columns of the torus for n peers: rows the largest divisor of n with rows² ≤ n.
    public static func torusShape(_ n: Int) -> (rows: Int, columns: Int) {
        var rows = 1
        var r = 1
        while r * r <= n {
            if n % r == 0 { rows = r }
            r += 1
        }
        return (rows, n / rows)
    }

    /// A k-regular simple graph on n vertices, the same for the same (n, k, seed) on every
    /// platform (SplitMix64). Edges are drawn by the pairing model one pair at a time, refusing
    /// loops and double edges (Steger–Wormald), restarting when stuck. k ≥ n − 1 gives the
    /// complete graph; with n·k odd the seed picks one vertex to take one more edge. Above
    /// k = (n − 1)/2 the pairing would restart for ever (almost every pair is taken): the graph is
    /// then the complement of a sparse one of degree n − 1 − k.
    static func randomRegularGraph(n: Int, k: Int, seed: UInt64) -> [Set<Int>] {
        guard n > 1 else { return Array(repeating: [], count: max(n, 0)) }
        if k >= n - 1 { return (0..<n).map { i in Set(0..<n).subtracting([i]) } }
        if 2 * k > n - 1 {
            let sparse = pairing(n: n, k: n - 1 - k, seed: seed, odd: -1, tag: UInt64(k))
            return (0..<n).map { i in Set(0..<n).subtracting(sparse[i]).subtracting([i]) }
        }
        return pairing(n: n, k: k, seed: seed, odd: +1, tag: UInt64(k))
    }

    /// A simple graph with every degree k, but one vertex k + `odd` when n·k is odd.
    private static func pairing(n: Int, k: Int, seed: UInt64, odd: Int, tag: UInt64) -> [Set<Int>] {
        var rng = SplitMix(seed: seed ^ (UInt64(n) &* 0x9E37_79B9_7F4A_7C15) ^ (tag << 48))
        let extra = n * k % 2 == 1 ? Int(rng.next() % UInt64(n)) : -1
        while true {
            var stubs: [Int] = []
            stubs.reserveCapacity(n * k + 1)
            for v in 0..<n { for _ in 0..<(v == extra ? k + odd : k) { stubs.append(v) } }
            var adjacency = [Set<Int>](repeating: [], count: n)
            var stuck = false
            while !stubs.isEmpty && !stuck {
                var paired = false
                for _ in 0..<(50 + stubs.count) {
                    let a = Int(rng.next() % UInt64(stubs.count))
                    let b = Int(rng.next() % UInt64(stubs.count))
                    let (u, v) = (stubs[a], stubs[b])
                    guard a != b, u != v, !adjacency[u].contains(v) else { continue }
                    adjacency[u].insert(v)
                    adjacency[v].insert(u)
                    for index in [max(a, b), min(a, b)] { stubs.swapAt(index, stubs.count - 1); stubs.removeLast() }
                    paired = true
                    break
                }
                if !paired {
                    // Random tries failed: look for any suitable pair before giving up on this draw.
                    var open: (Int, Int)?
                    search: for a in stubs.indices {
                        for b in stubs.indices where b > a && stubs[a] != stubs[b] && !adjacency[stubs[a]].contains(stubs[b]) {
                            open = (a, b)
                            break search
                        }
                    }
                    guard let (a, b) = open else { stuck = true; continue }
                    adjacency[stubs[a]].insert(stubs[b])
                    adjacency[stubs[b]].insert(stubs[a])
                    stubs.remove(at: b)
                    stubs.remove(at: a)
                }
            }
            if !stuck { return adjacency }
        }
    }
}

/// SplitMix64: a tiny generator whose output is the same on every platform and process.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// One peer's part of the graph in one round (see `Topology.neighbourhood`).
public struct Neighbourhood<Node: Hashable & Comparable & Sendable>: Sendable {
    /// Whom this peer sends to, and hears from, with each one's degree; sorted by node.
    public var out: [(node: Node, degree: Int)] = []
    public var `in`: [(node: Node, degree: Int)] = []
    /// The graph's largest degree (max-degree weights).
    public var maxDegree = 0
    /// Everyone this peer sends to in some round of the graph's period (push-sum keeps their
    /// streams open between turns).
    public var retained: Set<Node> = []

    public init() {}

    public var outDegree: Int { out.count }
    public var inDegree: Int { self.in.count }
    /// Out- and in-neighbours together, sorted, each once.
    public var all: [Node] {
        var seen = Set<Node>()
        return (out.map(\.node) + self.in.map(\.node)).filter { seen.insert($0).inserted }.sorted()
    }
}
