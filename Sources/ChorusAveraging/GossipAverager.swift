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
///
/// Generic over the node type, and called on every parameter vector a peer receives: its methods
/// are `@inlinable` (state `@usableFromInline`) so callers in other modules get a version
/// specialised for their node type instead of generic dictionary code through witness tables.
public struct GossipAverager<Node: Hashable & Comparable & Sendable>: Sendable {
    public enum Rejection: String, Sendable, CaseIterable {
        case notANeighbour, wrongDimension, nonFinite, badDegree
    }

    public struct Contribution: Sendable {
        public var vector: [Float]
        public var degree: Int
        public var receivedAt: Double

        @inlinable init(vector: [Float], degree: Int, receivedAt: Double) {
            self.vector = vector
            self.degree = degree
            self.receivedAt = receivedAt
        }
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

        @inlinable public init(selfWeight: Double, weights: [Node: Double], distanceToNeighbours: Double? = nil) {
            self.selfWeight = selfWeight
            self.weights = weights
            self.distanceToNeighbours = distanceToNeighbours
        }
    }

    public let dimension: Int
    public let settings: AveragingSettings
    public var neighbours: Set<Node> { _neighbours }
    public var lastHeard: [Node: Double] { _lastHeard }
    public var lastDegree: [Node: Int] { _lastDegree }
    public var rejections: [Rejection: Int] { _rejections }
    public var mixes: Int { _mixes }
    public var contributionsMixed: Int { _contributionsMixed }

    @usableFromInline var _neighbours: Set<Node>
    @usableFromInline var _lastHeard: [Node: Double] = [:]
    @usableFromInline var _lastDegree: [Node: Int] = [:]
    @usableFromInline var pending: [Node: Contribution] = [:]
    @usableFromInline var _rejections: [Rejection: Int] = [:]
    @usableFromInline var _mixes = 0
    @usableFromInline var _contributionsMixed = 0

    public init(dimension: Int, neighbours: some Sequence<Node>, settings: AveragingSettings = .init()) {
        precondition(settings.problems().isEmpty, "invalid AveragingSettings: \(settings.problems())")
        self.dimension = dimension
        self._neighbours = Set(neighbours)
        self.settings = settings
    }

    /// Replaces the neighbour set (membership changed); forgets everything about former neighbours.
    @inlinable
    public mutating func setNeighbours(_ new: some Sequence<Node>) {
        _neighbours = Set(new)
        for node in _lastHeard.keys where !_neighbours.contains(node) {
            _lastHeard[node] = nil
            _lastDegree[node] = nil
            pending[node] = nil
        }
    }

    /// Neighbours heard from within `silenceTimeout`: the ones that count in our degree.
    @inlinable
    public func activeNeighbours(now: Double) -> [Node] {
        neighbours.filter { node in lastHeard[node].map { now - $0 <= settings.silenceTimeout } ?? false }.sorted()
    }

    /// The degree this peer advertises with its parameters.
    @inlinable
    public func degree(now: Double) -> Int {
        var count = 0
        for node in neighbours where lastHeard[node].map({ now - $0 <= settings.silenceTimeout }) ?? false { count += 1 }
        return count
    }

    /// Records parameters received from a neighbour. Vectors of the wrong dimension or with NaN or
    /// infinite values are rejected and counted; they never touch the state.
    @discardableResult @inlinable
    public mutating func receive(from node: Node, vector: [Float], degree: Int, now: Double) -> Rejection? {
        guard neighbours.contains(node) else { return reject(.notANeighbour) }
        guard vector.count == dimension else { return reject(.wrongDimension) }
        guard degree >= 1 else { return reject(.badDegree) }
        guard vector.allSatisfy(\.isFinite) else { return reject(.nonFinite) }
        pending[node] = Contribution(vector: vector, degree: degree, receivedAt: now)
        _lastHeard[node] = now
        _lastDegree[node] = degree
        return nil
    }

    /// The weights that would apply now if every active neighbour contributed (for status displays).
    @inlinable
    public func currentWeights(now: Double) -> (selfWeight: Double, weights: [Node: Double]) {
        let active = activeNeighbours(now: now)
        var weights: [Node: Double] = [:]
        for node in active {
            weights[node] = WeightRule.metropolisHastings.weight(own: active.count, other: lastDegree[node] ?? 1, maxDegree: 0)
        }
        return (1 - weights.values.reduce(0, +), weights)
    }

    /// Mixes every fresh, unused contribution into `own`: own ← W_ii·own + Σ W_ij·x_j.
    /// `measuringDistance`: also compute `MixReport.distanceToNeighbours` (a pass over every
    /// contribution in double precision; a shell asks for it about once a second, not every round).
    @inlinable
    public mutating func mix(_ own: inout [Float], now: Double, measuringDistance: Bool = true) -> MixReport {
        precondition(own.count == dimension, "own vector has the wrong dimension")
        let ownDegree = degree(now: now)
        var weights: [Node: Double] = [:]
        // In node order: floating-point sums depend on order, and a seed must replay bit for bit.
        // Each contribution read once, in place (a lookup per use copied it and its vector).
        let fresh = pending.filter { now - $0.value.receivedAt <= settings.maxContributionAge }.sorted { $0.key < $1.key }
        var selfWeight = 1.0
        var mixWeights: [Float] = []
        mixWeights.reserveCapacity(fresh.count)
        for (node, contribution) in fresh {
            let weight = WeightRule.metropolisHastings.weight(own: ownDegree, other: contribution.degree, maxDegree: 0)
            weights[node] = weight
            mixWeights.append(Float(weight))
            selfWeight -= weight
        }
        var distance: Double?
        if !weights.isEmpty {
            if measuringDistance { distance = distanceToWeightedAverage(own, of: fresh, weights: weights) }
            let n = dimension
            own.withUnsafeMutableBufferPointer { x in
                let ws = Float(selfWeight)
                for i in 0..<n { x[i] *= ws }
                for (k, (_, contribution)) in fresh.enumerated() {
                    let w = mixWeights[k]
                    contribution.vector.withUnsafeBufferPointer { y in
                        for i in 0..<n { x[i] += w * y[i] }
                    }
                }
            }
        }
        _contributionsMixed += weights.count
        pending.removeAll(keepingCapacity: true)
        _mixes += 1
        return MixReport(selfWeight: selfWeight, weights: weights, distanceToNeighbours: distance)
    }

    /// ‖own − ȳ‖ / ‖ȳ‖ with ȳ = Σ w_j·y_j / Σ w_j over the contributions (in double precision;
    /// 0 when both are 0).
    @usableFromInline
    func distanceToWeightedAverage(_ own: [Float], of fresh: [(key: Node, value: Contribution)], weights: [Node: Double]) -> Double {
        var average = [Double](repeating: 0, count: dimension)
        var total = 0.0
        for (node, contribution) in fresh {
            let w = weights[node]!
            total += w
            contribution.vector.withUnsafeBufferPointer { y in
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

    @usableFromInline
    mutating func reject(_ reason: Rejection) -> Rejection {
        _rejections[reason, default: 0] += 1
        return reason
    }
}
