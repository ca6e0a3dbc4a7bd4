/// How a peer combines its value with its neighbours' each round (docs/averaging.md).
public enum MixingMode: String, Sendable, CaseIterable, CustomStringConvertible {
    /// Each peer sends its value to its out-neighbours; the receiver mixes the round's
    /// contributions with weights it chooses (rows of W sum to one). A lost contribution's weight
    /// stays with the receiver, so under loss the network average drifts.
    case plain
    /// Push-sum with running sums (Kempe et al.; Hadjicostis et al.): each peer keeps a value x
    /// and a weight w, splits both among itself and its out-neighbours (columns of W sum to one),
    /// and sends each out-neighbour the running total of what it ever sent it. A lost datagram is
    /// made good by the next one, so Σx / Σw, the network average, survives loss, duplication and
    /// reordering; each peer's estimate is x / w.
    case pushSum = "push-sum"

    public var description: String { rawValue }
    public static let help = "plain | push-sum"
}

/// Who sets the weights W_ij (the share of j's value in i's new value).
public enum WeightRule: String, Sendable, CaseIterable, CustomStringConvertible {
    /// W_ij = 1 / (1 + max(d_i, d_j)): needs only the neighbours' degrees; symmetric and doubly
    /// stochastic on any undirected graph (Xiao, Boyd, Lall).
    case metropolisHastings = "metropolis-hastings"
    /// W_ij = 1 / (1 + d_max), d_max the largest degree of the graph (every peer computes it from
    /// the same view).
    case maxDegree = "max-degree"
    /// Equal shares: with push-sum, a peer splits its value equally among itself and its
    /// out-neighbours (column-stochastic); with plain mixing, a peer gives itself and each
    /// in-neighbour the same weight (row-stochastic).
    case uniform

    public var description: String { rawValue }
    public static let help = "metropolis-hastings | max-degree | uniform"

    /// Accepts the names of `help` and "mh".
    public init?(parsing text: String) {
        switch text.lowercased() {
        case "metropolis-hastings", "mh", "metropolis": self = .metropolisHastings
        case "max-degree": self = .maxDegree
        case "uniform": self = .uniform
        default: return nil
        }
    }

    /// The weight one neighbour gets. `own` is the degree of the peer choosing the weight (its
    /// in-degree when it receives, plain mixing; its out-degree when it sends, push-sum), `other`
    /// the neighbour's, `maxDegree` the graph's largest.
    ///
    /// Over at most `own` neighbours the weights never add up to more than own / (1 + own) < 1,
    /// whatever `other` and `maxDegree` are (as long as maxDegree ≥ own): the self-weight stays
    /// positive even while peers disagree about the graph.
    @inlinable
    public func weight(own: Int, other: Int, maxDegree: Int) -> Double {
        switch self {
        case .metropolisHastings: 1 / Double(1 + max(own, other, 0))
        case .maxDegree: 1 / Double(1 + max(maxDegree, own, 0))
        case .uniform: 1 / Double(1 + max(own, 0))
        }
    }

    /// Why this rule cannot be used on `topology`, or nil.
    public func problem(with topology: Topology) -> String? {
        if self == .metropolisHastings && topology.isDirected {
            return "metropolis-hastings weights need an undirected topology; \(topology) is directed (use uniform or max-degree)"
        }
        return nil
    }
}

/// Whole mixing matrices, for analysis and tests (`chorus topology`, docs/convergence.md): the
/// matrix the peers apply together in one round when every contribution arrives.
public enum MixingMatrix {
    /// W with x(k+1) = W·x(k): W[i][j] is the share of j's value in i's new value. Plain mixing
    /// sets each row (the receiver's weights; rows sum to one); push-sum sets each column (the
    /// sender's shares; columns sum to one). For Metropolis–Hastings and max-degree weights on
    /// regular or undirected graphs the two coincide.
    public static func build(topology: Topology, count n: Int, weights: WeightRule, mixing: MixingMode, round: UInt64 = 0) -> [[Double]] {
        var w = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        guard n > 0 else { return w }
        let outs = topology.adjacency(count: n, round: round)
        var ins = [[Int]](repeating: [], count: n)
        for i in 0..<n { for j in outs[i] { ins[j].append(i) } }
        let maxDegree = topology.isDirected ? (ins + outs).map(\.count).max() ?? 0 : topology.maxDegree(count: n)
        let degree = outs.map(\.count)
        switch mixing {
        case .plain:
            for i in 0..<n {
                for j in ins[i] { w[i][j] = weights.weight(own: ins[i].count, other: degree[j], maxDegree: maxDegree) }
                w[i][i] = 1 - ins[i].reduce(0) { $0 + w[i][$1] }
            }
        case .pushSum:
            for j in 0..<n {
                for i in outs[j] { w[i][j] = weights.weight(own: outs[j].count, other: degree[i], maxDegree: maxDegree) }
                w[j][j] = 1 - outs[j].reduce(0) { $0 + w[$1][j] }
            }
        }
        return w
    }

    /// The product W(r+k−1)···W(r) of `rounds` consecutive rounds (time-varying graphs).
    public static func product(topology: Topology, count n: Int, weights: WeightRule, mixing: MixingMode,
                               from first: UInt64 = 0, rounds: Int) -> [[Double]] {
        var p = identity(n)
        for r in 0..<rounds {
            p = multiply(build(topology: topology, count: n, weights: weights, mixing: mixing, round: first + UInt64(r)), p)
        }
        return p
    }

    public static func identity(_ n: Int) -> [[Double]] {
        (0..<n).map { i in (0..<n).map { $0 == i ? 1 : 0 } }
    }

    public static func multiply(_ a: [[Double]], _ b: [[Double]]) -> [[Double]] {
        let n = a.count, m = b.first?.count ?? 0, inner = b.count
        var c = [[Double]](repeating: [Double](repeating: 0, count: m), count: n)
        for i in 0..<n {
            for k in 0..<inner where a[i][k] != 0 {
                let aik = a[i][k]
                for j in 0..<m { c[i][j] += aik * b[k][j] }
            }
        }
        return c
    }
}
