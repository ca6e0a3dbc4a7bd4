/// Settings of gossip averaging; every field has a default and a reason.
public struct AveragingSettings: Sendable, Equatable {
    /// Seconds without parameters from a neighbour before it is excluded from mixing and from our
    /// advertised degree. Long enough to ride out a few lost rounds, short enough that a dead
    /// neighbour stops holding weight quickly.
    public var silenceTimeout = 3.0
    /// Seconds after which a received vector is too stale to mix in (its weight stays with self).
    public var maxContributionAge = 1.0

    public init(silenceTimeout: Double = 3.0, maxContributionAge: Double = 1.0) {
        self.silenceTimeout = silenceTimeout
        self.maxContributionAge = maxContributionAge
    }

    public func problems() -> [String] {
        var out: [String] = []
        if !(silenceTimeout > 0) { out.append("silenceTimeout must be positive seconds, got \(silenceTimeout)") }
        if !(maxContributionAge > 0) { out.append("maxContributionAge must be positive seconds, got \(maxContributionAge)") }
        if maxContributionAge > silenceTimeout {
            // A contribution must come from a neighbour that still counts in our degree, or a row could exceed one.
            out.append("maxContributionAge (\(maxContributionAge) s) must not exceed silenceTimeout (\(silenceTimeout) s)")
        }
        return out
    }
}

/// Asynchronous gossip averaging for one peer: a pure state machine (time passed in, no I/O).
///
/// Peers send their parameters and their current degree to their neighbours every gossip
/// interval; whatever arrived is mixed in with Metropolis–Hastings weights. There is no barrier:
/// a slow or dead neighbour simply contributes nothing.
///
/// The staleness rule: each received vector is used at most once (the latest per neighbour wins);
/// a vector older than `maxContributionAge` when the peer mixes is discarded; a neighbour not heard
/// from for `silenceTimeout` is left out of the peer's degree. Weight not given to a neighbour in a
/// round stays with the peer itself, so every row is non-negative and sums to one.
public struct GossipAverager<Node: Hashable & Comparable & Sendable>: Sendable {
    public enum Rejection: String, Sendable, CaseIterable {
        case notANeighbour, wrongDimension, nonFinite, badDegree
    }

    public struct Contribution: Sendable {
        public var vector: [Float]
        public var degree: Int
        public var receivedAt: Double
    }

    /// What one call of `mix` did.
    public struct MixReport: Sendable, Equatable {
        public var selfWeight: Double
        public var weights: [Node: Double]
        /// How far this peer was from its neighbours before mixing: ‖x − ȳ‖ / ‖ȳ‖, where ȳ is the
        /// weighted average Σ w_j·y_j / Σ w_j of the contributions mixed in (nil when none was).
        /// Every peer can report it without collecting anyone's parameters; it falls towards 0
        /// as the network reaches consensus.
        public var distanceToNeighbours: Double?

        public init(selfWeight: Double, weights: [Node: Double], distanceToNeighbours: Double? = nil) {
            self.selfWeight = selfWeight
            self.weights = weights
            self.distanceToNeighbours = distanceToNeighbours
        }
    }

    public let dimension: Int
    public let settings: AveragingSettings
    public private(set) var neighbours: Set<Node>
    public private(set) var lastHeard: [Node: Double] = [:]
    public private(set) var lastDegree: [Node: Int] = [:]
    private var pending: [Node: Contribution] = [:]
    public private(set) var rejections: [Rejection: Int] = [:]
    public private(set) var mixes = 0
    public private(set) var contributionsMixed = 0

    public init(dimension: Int, neighbours: some Sequence<Node>, settings: AveragingSettings = .init()) {
        precondition(settings.problems().isEmpty, "invalid AveragingSettings: \(settings.problems())")
        self.dimension = dimension
        self.neighbours = Set(neighbours)
        self.settings = settings
    }

    /// Replaces the neighbour set (membership changed); forgets everything about former neighbours.
    public mutating func setNeighbours(_ new: some Sequence<Node>) {
        neighbours = Set(new)
        for node in lastHeard.keys where !neighbours.contains(node) {
            lastHeard[node] = nil
            lastDegree[node] = nil
            pending[node] = nil
        }
    }

    /// Neighbours heard from within `silenceTimeout`: the ones that count in our degree.
    public func activeNeighbours(now: Double) -> [Node] {
        neighbours.filter { node in lastHeard[node].map { now - $0 <= settings.silenceTimeout } ?? false }.sorted()
    }

    /// The degree this peer advertises with its parameters.
    public func degree(now: Double) -> Int {
        var count = 0
        for node in neighbours where lastHeard[node].map({ now - $0 <= settings.silenceTimeout }) ?? false { count += 1 }
        return count
    }

    /// Records parameters received from a neighbour. Vectors of the wrong dimension or with NaN or
    /// infinite values are rejected and counted; they never touch the state.
    @discardableResult
    public mutating func receive(from node: Node, vector: [Float], degree: Int, now: Double) -> Rejection? {
        guard neighbours.contains(node) else { return reject(.notANeighbour) }
        guard vector.count == dimension else { return reject(.wrongDimension) }
        guard degree >= 1 else { return reject(.badDegree) }
        guard vector.allSatisfy(\.isFinite) else { return reject(.nonFinite) }
        pending[node] = Contribution(vector: vector, degree: degree, receivedAt: now)
        lastHeard[node] = now
        lastDegree[node] = degree
        return nil
    }

    /// The weights that would apply now if every active neighbour contributed (for status displays).
    public func currentWeights(now: Double) -> (selfWeight: Double, weights: [Node: Double]) {
        let active = activeNeighbours(now: now)
        var weights: [Node: Double] = [:]
        for node in active {
            weights[node] = MetropolisHastings.weight(ownDegree: active.count, neighbourDegree: lastDegree[node] ?? 1)
        }
        return (1 - weights.values.reduce(0, +), weights)
    }

    /// Mixes every fresh, unused contribution into `own`: own ← W_ii·own + Σ W_ij·x_j.
    public mutating func mix(_ own: inout [Float], now: Double) -> MixReport {
        precondition(own.count == dimension, "own vector has the wrong dimension")
        let ownDegree = degree(now: now)
        var weights: [Node: Double] = [:]
        // In node order: floating-point sums depend on order, and a seed must replay bit for bit.
        let fresh = pending.keys.sorted().filter { now - pending[$0]!.receivedAt <= settings.maxContributionAge }
        var selfWeight = 1.0
        for node in fresh {
            let weight = MetropolisHastings.weight(ownDegree: ownDegree, neighbourDegree: pending[node]!.degree)
            weights[node] = weight
            selfWeight -= weight
        }
        var distance: Double?
        if !weights.isEmpty {
            distance = distanceToWeightedAverage(own, of: fresh, weights: weights)
            let n = dimension
            own.withUnsafeMutableBufferPointer { x in
                let ws = Float(selfWeight)
                for i in 0..<n { x[i] *= ws }
                for node in fresh {
                    let weight = weights[node]!
                    let w = Float(weight)
                    pending[node]!.vector.withUnsafeBufferPointer { y in
                        for i in 0..<n { x[i] += w * y[i] }
                    }
                }
            }
        }
        contributionsMixed += weights.count
        pending.removeAll()
        mixes += 1
        return MixReport(selfWeight: selfWeight, weights: weights, distanceToNeighbours: distance)
    }

    /// ‖own − ȳ‖ / ‖ȳ‖ with ȳ = Σ w_j·y_j / Σ w_j over `nodes` (in double precision; 0 when both are 0).
    private func distanceToWeightedAverage(_ own: [Float], of nodes: [Node], weights: [Node: Double]) -> Double {
        var average = [Double](repeating: 0, count: dimension)
        var total = 0.0
        for node in nodes {
            let w = weights[node]!
            total += w
            pending[node]!.vector.withUnsafeBufferPointer { y in
                for i in 0..<dimension { average[i] += w * Double(y[i]) }
            }
        }
        var difference = 0.0, norm = 0.0
        for i in 0..<dimension {
            let a = average[i] / total
            let d = Double(own[i]) - a
            difference += d * d
            norm += a * a
        }
        return norm > 0 ? (difference / norm).squareRoot() : (difference > 0 ? .infinity : 0)
    }

    private mutating func reject(_ reason: Rejection) -> Rejection {
        rejections[reason, default: 0] += 1
        return reason
    }
}
