/// Settings of gossip averaging; every field has a default and a reason.
public struct AveragingSettings: Sendable, Equatable {
    /// Plain (row-stochastic, the receiver's weights) or push-sum with running sums (keeps the
    /// network average under loss). docs/averaging.md compares them.
    public var mixing: MixingMode = .plain
    /// How weights are chosen from degrees (docs/averaging.md, "Weights").
    public var weights: WeightRule = .metropolisHastings
    /// Plain mixing: values travel as float64 (exact averages to 1e-15, twice the bytes) rather
    /// than float32 (a relative error of 6e-8 per round, below what training notices). Push-sum
    /// always sends float64: its running sums grow without bound, and float32 would swallow the
    /// increments.
    public var float64Values = false
    /// Push-sum: rounds a stream's last sums are sent again after it stopped carrying new mass
    /// (the peer is no longer an out-neighbour, or this peer is leaving), so a lost datagram
    /// cannot lose them: all 8 are lost with probability loss⁸ (4·10⁻⁶ at 20 % loss).
    public var closingRounds = 8
    /// Push-sum: after the closing rounds, rounds between two more sends of a stream's final
    /// sums, until it closes. The loss⁸ above is per datagram; a share of a model is an object of
    /// several, and all its parts must arrive: at 10 % loss a 5-datagram share misses all 9
    /// sends once in 3000, and what the stream still carried was lost (peers joining through each
    /// other under loss: docs/averaging.md). Every 10 rounds is one share a second per stopped
    /// stream.
    public var closingResendRounds = 10
    /// Push-sum on undirected graphs: rounds without a share from an out-neighbour (which also
    /// sends to this peer every round) before it gets no new mass. Three rounds (0.3 s by
    /// default) bound what a crashed neighbour swallows before membership notices it, seconds
    /// later; a live one that lost a few shares gets mass again as soon as it is heard.
    public var silentRounds = 3
    /// Push-sum: seconds a stream is kept after it last carried mass (sender side) or was last
    /// heard (receiver side). Longer than a false failure lasts (a suspicion is refuted within
    /// seconds): when the peer comes back the stream goes on, so nothing sent to or by it is lost.
    /// A receiver remembers a stream closed after that by its id only, and refuses (counts) what
    /// still comes on it instead of adding it twice.
    public var streamIdleTimeout = 60.0
    /// Plain mixing: self-centred clipping (as ClippedGossip, He, Karimireddy and Jaggi 2022).
    /// Each contribution enters the mix as x + clip(y − x, τ), τ this factor times the lower
    /// median of the round's distances ‖y_j − x‖ (never below 10⁻⁶‖x‖; a lone contribution
    /// takes the last round's, see `clip`): one neighbour, or any minority, can
    /// pull a peer at most its weight times τ per round, whatever it sends. 0 turns it off; nil
    /// (the default) means `defaultClipFactor` for a peer that trains and 0 for one that only
    /// averages (from independent random starts, peers are far apart in uneven ways, and
    /// clipping would move the exact average such a run measures). docs/security.md,
    /// "Poisoned parameters", measures it. Push-sum is not guarded (clipping running sums
    /// would break their conservation).
    public var clipFactor: Double?
    public static let defaultClipFactor = 1.5

    /// The factor in force for a peer that trains or only averages.
    public func clipFactor(training: Bool) -> Double { clipFactor ?? (training ? Self.defaultClipFactor : 0) }

    public init(mixing: MixingMode = .plain, weights: WeightRule = .metropolisHastings, float64Values: Bool = false,
                closingRounds: Int = 8, streamIdleTimeout: Double = 60, clipFactor: Double? = nil) {
        self.clipFactor = clipFactor
        self.mixing = mixing
        self.weights = weights
        self.float64Values = float64Values
        self.closingRounds = closingRounds
        self.streamIdleTimeout = streamIdleTimeout
    }

    /// Whether values travel as float64.
    public var sendsFloat64: Bool { mixing == .pushSum || float64Values }

    public func problems() -> [String] {
        var out: [String] = []
        if silentRounds < 1 { out.append("silentRounds must be at least 1, got \(silentRounds)") }
        if closingRounds < 0 || closingRounds > 1000 { out.append("closingRounds must be between 0 and 1000, got \(closingRounds)") }
        if closingResendRounds < 1 { out.append("closingResendRounds must be at least 1, got \(closingResendRounds)") }
        if !(streamIdleTimeout > 0 && streamIdleTimeout.isFinite) {
            out.append("streamIdleTimeout must be positive seconds, got \(streamIdleTimeout)")
        }
        if let clipFactor, !(clipFactor == 0 || (clipFactor >= 1 && clipFactor <= 1000)) {
            out.append("clipFactor must be 0 (off) or between 1 and 1000, got \(clipFactor)")
        }
        return out
    }
}

/// Which running sum a push-sum share belongs to: the sender's boot epoch and a counter of the
/// streams it opened in that boot. A receiver adds the difference between two shares of one
/// stream; a later stream from the same sender starts again from zero.
public struct StreamID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var epoch: UInt64
    public var counter: UInt32

    public init(epoch: UInt64, counter: UInt32) {
        self.epoch = epoch
        self.counter = counter
    }

    public static func < (a: Self, b: Self) -> Bool { (a.epoch, a.counter) < (b.epoch, b.counter) }
    public var description: String { "\(epoch).\(counter)" }
}

/// What one peer sends one neighbour in one round.
public struct Share: Sendable, Equatable {
    /// The sender's round (rounds are aligned to the wall clock: docs/averaging.md).
    public var round: UInt64
    /// The sender's degree in the topology (Metropolis–Hastings weights need it).
    public var degree: Int
    /// Push-sum: the stream these running sums belong to (nil for plain mixing).
    public var stream: StreamID?
    /// Push-sum: the share's place in its stream (1, 2, …): a receiver applies only a share
    /// later than the last it applied, so a duplicated or overtaken one changes nothing.
    public var sequence: UInt64
    /// Push-sum: the running total of weight sent on the stream; plain: 1.
    public var weight: Double
    /// Plain: the sender's value. Push-sum: the running total of value sent on the stream.
    public var values: [Double]

    public init(round: UInt64, degree: Int, stream: StreamID? = nil, sequence: UInt64 = 0, weight: Double = 1, values: [Double]) {
        self.round = round
        self.degree = degree
        self.stream = stream
        self.sequence = sequence
        self.weight = weight
        self.values = values
    }
}

/// Gossip averaging for one peer: a pure state machine (no I/O, no clock; rounds come in).
///
/// Rounds are numbered by the caller and aligned across peers (docs/averaging.md). In round k a
/// peer calls `beginRound` and sends what it returns; what arrives is handed to `receive`; at
/// the round's collection deadline it calls `mix(round: k, …)`. So every mix uses the
/// neighbours' values of the same round, and one round is exactly x ← W·x.
///
/// - Plain: the receiver weighs the round's contributions (rows of W sum to one); a contribution
///   that is missing, late or from another round leaves its weight with the receiver.
/// - Push-sum: the sender splits its (x, w) among itself and its out-neighbours (columns of W sum
///   to one) and sends running totals; the receiver adds the difference to the last total it
///   applied, so a lost share is made good by the next. The estimate is x / w.
///
/// Values are kept in double precision whatever travels on the wire.
public struct GossipAverager<Node: Hashable & Comparable & Sendable>: Sendable {
    public enum Rejection: String, Sendable, CaseIterable {
        case notANeighbour, wrongDimension, nonFinite, badDegree
        /// Plain: a contribution for a round this peer already mixed (clocks apart by more than
        /// the collection window, or a very slow path).
        case late
        /// Push-sum: a share of a stream older than one already applied, or not newer than the
        /// last applied on its stream (duplicated or reordered; nothing is lost by dropping it).
        case duplicate
        /// Push-sum: a share of a stream this peer stopped tracking (its sender was silent for
        /// `streamIdleTimeout`) or one that a later stream from the same sender replaced.
        case closedStream
        /// Push-sum: a running weight that went down (running sums only grow).
        case negativeWeight
        /// A push-sum share to a plain peer or the other way round: the network disagrees on
        /// `gossip.mixing`.
        case wrongMode
        /// Plain: a contribution farther from this peer than the clipping radius (`clipFactor`);
        /// not dropped but pulled in to the radius. Counted so a poisoning neighbour shows.
        case clipped
    }

    /// What one round did, for invariant checks and status: plain, the weights of the mix (each
    /// row non-negative and summing to one); push-sum, the shares of the round's send (each
    /// column non-negative and summing to one).
    public struct MixReport: Sendable, Equatable {
        public var selfWeight: Double
        public var weights: [Node: Double]
        /// Plain: ‖x − ȳ‖ / ‖ȳ‖ before mixing, ȳ the weighted average of the contributions mixed
        /// in (nil when none was, or not measured). Falls towards 0 as the network agrees.
        public var distanceToNeighbours: Double?

        @inlinable public init(selfWeight: Double, weights: [Node: Double], distanceToNeighbours: Double? = nil) {
            self.selfWeight = selfWeight
            self.weights = weights
            self.distanceToNeighbours = distanceToNeighbours
        }
    }

    /// One neighbour and its degree, as the caller's view of the topology gives it.
    public typealias Neighbour = (node: Node, degree: Int)

    /// A share and whom to send it to (plain: one share for every out-neighbour).
    public struct Outgoing: Sendable {
        public var share: Share
        public var targets: [Node]
        @inlinable public init(share: Share, targets: [Node]) {
            self.share = share
            self.targets = targets
        }
    }

    @usableFromInline struct Contribution: Sendable {
        @usableFromInline var round: UInt64
        @usableFromInline var degree: Int
        @usableFromInline var values: [Double]
        @inlinable init(round: UInt64, degree: Int, values: [Double]) {
            self.round = round
            self.degree = degree
            self.values = values
        }
    }

    @usableFromInline struct OutStream: Sendable {
        @usableFromInline var id: StreamID
        @usableFromInline var sum: [Double]
        @usableFromInline var weight = 0.0
        @usableFromInline var sequence: UInt64 = 0
        /// When it last carried mass, and when it was opened.
        @usableFromInline var lastMass: Double
        @usableFromInline var opened: Double
        /// Rounds left to send the final sums again once the stream stopped carrying mass.
        @usableFromInline var closingLeft: Int
        @inlinable init(id: StreamID, sum: [Double], lastMass: Double, opened: Double, closingLeft: Int) {
            self.id = id
            self.sum = sum
            self.lastMass = lastMass
            self.opened = opened
            self.closingLeft = closingLeft
        }
    }

    @usableFromInline struct InStream: Sendable {
        @usableFromInline var id: StreamID
        @usableFromInline var sequence: UInt64
        @usableFromInline var sum: [Double]
        @usableFromInline var weight: Double
        @usableFromInline var lastHeard: Double
        @inlinable init(id: StreamID, sequence: UInt64, sum: [Double], weight: Double, lastHeard: Double) {
            self.id = id
            self.sequence = sequence
            self.sum = sum
            self.weight = weight
            self.lastHeard = lastHeard
        }
    }

    public let dimension: Int
    public let settings: AveragingSettings
    /// x: plain, the value itself; push-sum, the value mass.
    public var value: [Double] { _value }
    /// w: push-sum's weight mass (1 for plain).
    public var weight: Double { _weight }
    public var rejections: [Rejection: Int] { _rejections }
    /// Rounds mixed, contributions mixed in (plain) or shares applied (push-sum).
    public var mixes: Int { _mixes }
    public var contributionsMixed: Int { _contributionsMixed }
    public var lastHeard: [Node: Double] { _lastHeard }
    public var lastDegree: [Node: Int] { _lastDegree }
    public var lastReport: MixReport? { _lastReport }

    // State `@usableFromInline` and methods `@inlinable`: ChorusCore gets a version specialised
    // for its peer ids, not generic dictionary code through witness tables (every share a peer
    // receives comes through here).
    @usableFromInline var _value: [Double]
    @usableFromInline var _weight: Double
    @usableFromInline var _rejections: [Rejection: Int] = [:]
    /// The clipping reference: the lower median of the distances of the last round that mixed
    /// two contributions or more. A lone contribution is clipped against it, so it cannot set
    /// its own radius (a time-varying graph, a quiet round).
    @usableFromInline var _clipReference: Double?
    /// The length of the path this peer's own local training has moved its value since it
    /// started (the sum of its updates' lengths; mixing not counted): the clipping reference of a
    /// lone contribution before any round has set `_clipReference`.
    @usableFromInline var _trainingPath = 0.0
    @usableFromInline var _mixes = 0
    @usableFromInline var _contributionsMixed = 0
    @usableFromInline var _lastHeard: [Node: Double] = [:]
    @usableFromInline var _lastDegree: [Node: Int] = [:]
    @usableFromInline var _lastReport: MixReport?

    @usableFromInline let epoch: UInt64
    @usableFromInline var lastMixedRound: UInt64?
    @usableFromInline var pending: [Node: [Contribution]] = [:]
    @usableFromInline var outStreams: [Node: OutStream] = [:]
    @usableFromInline var inStreams: [Node: InStream] = [:]
    /// Push-sum: the last stream of each sender this peer no longer tracks (nothing on it, or
    /// older, is applied again).
    @usableFromInline var closedStreams: [Node: StreamID] = [:]
    @usableFromInline var streamsOpened: UInt32 = 0

    /// - Parameters:
    ///   - initial: the starting value (plain) or estimate (push-sum).
    ///   - weight: push-sum's starting weight: 1 for a peer that brings its value into the
    ///     average, 0 for one that joins a running network (it takes the network's estimate
    ///     without changing it). Ignored by plain mixing.
    ///   - epoch: this boot's epoch (names push-sum streams; grows across restarts).
    @inlinable public init(initial: [Double], weight: Double = 1, epoch: UInt64 = 0, settings: AveragingSettings = .init()) {
        precondition(settings.problems().isEmpty, "invalid AveragingSettings: \(settings.problems())")
        self.dimension = initial.count
        self.settings = settings
        self.epoch = epoch
        let w = settings.mixing == .pushSum ? weight : 1
        self._weight = w
        self._value = w == 1 ? initial : initial.map { $0 * w }
    }

    /// The current estimate of the network average: x (plain) or x / w (push-sum; nil while this
    /// peer holds no weight yet).
    @inlinable public var estimate: [Double]? {
        guard _weight != 1 else { return _value }
        guard _weight > 0 else { return nil }
        let w = _weight
        return _value.map { $0 / w }
    }

    // MARK: Rounds

    /// Round `round` starts: what to send to whom. `out` are this round's out-neighbours with
    /// their degrees (sorted), `ownDegree` this peer's degree, `maxDegree` the graph's largest.
    /// `retained`: peers whose push-sum streams stay open although they are not out-neighbours
    /// this round (a time-varying graph's other targets); other streams send their last sums
    /// `closingRounds` more times, then every `closingResendRounds` until `streamIdleTimeout`
    /// after they last carried mass (the peer may come back after a false failure), then close.
    /// `handOver`: push-sum only, give all of this peer's mass to `out` (a graceful leave).
    ///
    /// Push-sum gives no new mass to an out-neighbour in `held` (e.g. suspected by membership, or
    /// not yet keyed), nor to one it has heard nothing from for `silence` seconds (undirected
    /// graphs, where every out-neighbour also sends): mass sent to a crashed peer is lost, and
    /// without this each peer would lose its share to it every round until the crash is
    /// detected, seconds later. The stream still goes out (with its old totals), so the other
    /// side hears from this one.
    @inlinable public mutating func beginRound(_ round: UInt64, out: [Neighbour], ownDegree: Int, maxDegree: Int,
                                    retained: Set<Node> = [], handOver: Bool = false, now: Double = 0,
                                    held: Set<Node> = [], silence: Double? = nil) -> [Outgoing] {
        switch settings.mixing {
        case .plain:
            guard !out.isEmpty else { return [] }
            return [Outgoing(share: Share(round: round, degree: max(1, ownDegree), values: _value), targets: out.map(\.node))]
        case .pushSum:
            return pushShares(round, out: out, ownDegree: ownDegree, maxDegree: maxDegree, retained: retained, handOver: handOver,
                              now: now, held: held, silence: silence)
        }
    }

    @inlinable mutating func pushShares(_ round: UInt64, out: [Neighbour], ownDegree: Int, maxDegree: Int,
                                     retained: Set<Node>, handOver: Bool, now: Double, held: Set<Node>,
                                     silence: Double?) -> [Outgoing] {
        var sent: [Outgoing] = []
        var shares: [Node: Double] = [:]
        var selfShare = 1.0
        func quiet(_ node: Node) -> Bool {
            if held.contains(node) { return true }
            guard let silence else { return false }
            // Never heard: quiet once its stream has been open that long.
            let since = _lastHeard[node] ?? outStreams[node]?.opened ?? now
            return now - since > silence
        }
        let receiving = out.filter { !quiet($0.node) }
        for (node, degree) in receiving {
            let a = handOver ? 1 / Double(receiving.count) : settings.weights.weight(own: ownDegree, other: degree, maxDegree: maxDegree)
            shares[node] = a
            selfShare -= a
        }
        // A hand-over gives everything away, but only to someone: with nobody to take it the mass stays.
        if (handOver && !receiving.isEmpty) || selfShare < 0 { selfShare = 0 }
        for (node, _) in out {
            let a = shares[node] ?? 0
            var stream = outStreams.removeValue(forKey: node) ?? openStream(now: now)
            stream.closingLeft = settings.closingRounds
            stream.lastMass = now
            add(a, of: _value, to: &stream.sum)
            stream.weight += a * _weight
            stream.sequence += 1
            sent.append(Outgoing(share: Share(round: round, degree: max(1, ownDegree), stream: stream.id, sequence: stream.sequence,
                                              weight: stream.weight, values: stream.sum), targets: [node]))
            outStreams[node] = stream
        }
        // Streams that carried no mass this round: kept (retained), resent (closing), kept silently
        // (the peer may come back), or closed.
        let current = Set(out.map(\.node))
        for node in outStreams.keys.sorted() where !current.contains(node) && !retained.contains(node) {
            var stream = outStreams[node]!
            if stream.closingLeft == 0 {
                if now - stream.lastMass > settings.streamIdleTimeout {
                    outStreams[node] = nil
                    continue
                }
                guard round % UInt64(settings.closingResendRounds) == 0 else { continue }
            }
            stream.closingLeft = max(0, stream.closingLeft - 1)
            stream.sequence += 1
            sent.append(Outgoing(share: Share(round: round, degree: max(1, ownDegree), stream: stream.id, sequence: stream.sequence,
                                              weight: stream.weight, values: stream.sum), targets: [node]))
            outStreams[node] = stream
        }
        if selfShare != 1 {
            for i in _value.indices { _value[i] *= selfShare }
            _weight *= selfShare
        }
        if !out.isEmpty { _lastReport = MixReport(selfWeight: selfShare, weights: shares) }
        return sent
    }

    @inlinable mutating func openStream(now: Double) -> OutStream {
        streamsOpened &+= 1
        return OutStream(id: StreamID(epoch: epoch, counter: streamsOpened), sum: [Double](repeating: 0, count: dimension),
                         lastMass: now, opened: now, closingLeft: settings.closingRounds)
    }

    /// y += a·x, element by element.
    @inlinable func add(_ a: Double, of x: [Double], to y: inout [Double]) {
        x.withUnsafeBufferPointer { x in
            y.withUnsafeMutableBufferPointer { y in
                for i in 0..<x.count { y[i] += a * x[i] }
            }
        }
    }

    // MARK: Receiving

    /// Takes a neighbour's share. The caller checked that `node` is an authenticated peer (and,
    /// for plain mixing, one of the in-neighbours of `share.round`). Shares with NaN or infinite
    /// numbers, of the wrong length or mode, or stale are refused and counted, never applied.
    @discardableResult
    @inlinable public mutating func receive(from node: Node, _ share: Share, now: Double) -> Rejection? {
        guard share.values.count == dimension else { return reject(.wrongDimension) }
        guard share.degree >= 1 else { return reject(.badDegree) }
        guard share.weight.isFinite, share.values.allSatisfy(\.isFinite) else { return reject(.nonFinite) }
        guard (share.stream != nil) == (settings.mixing == .pushSum) else { return reject(.wrongMode) }
        if let rejection = settings.mixing == .plain ? store(share, from: node) : apply(share, from: node, now: now) {
            return reject(rejection)
        }
        _lastHeard[node] = now
        _lastDegree[node] = share.degree
        return nil
    }

    @inlinable mutating func store(_ share: Share, from node: Node) -> Rejection? {
        if let last = lastMixedRound, share.round <= last { return .late }
        var list = pending.removeValue(forKey: node) ?? []
        list.removeAll { $0.round == share.round }  // one per round: the latest
        list.append(Contribution(round: share.round, degree: share.degree, values: share.values))
        if list.count > 2 { list.removeFirst(list.count - 2) }  // the current round and the next, at most
        pending[node] = list
        return nil
    }

    @inlinable mutating func apply(_ share: Share, from node: Node, now: Double) -> Rejection? {
        let id = share.stream!
        if let closed = closedStreams[node], id <= closed { return .closedStream }
        var stream: InStream
        if let known = inStreams[node] {
            if id < known.id { return .duplicate }
            if id == known.id {
                guard share.sequence > known.sequence else { return .duplicate }
                guard share.weight >= known.weight else { return .negativeWeight }
                stream = known
            } else {
                closedStreams[node] = known.id  // a later stream replaces it
                stream = InStream(id: id, sequence: 0, sum: [Double](repeating: 0, count: dimension), weight: 0, lastHeard: now)
            }
        } else {
            guard share.weight >= 0 else { return .negativeWeight }
            stream = InStream(id: id, sequence: 0, sum: [Double](repeating: 0, count: dimension), weight: 0, lastHeard: now)
        }
        share.values.withUnsafeBufferPointer { new in
            stream.sum.withUnsafeBufferPointer { old in
                _value.withUnsafeMutableBufferPointer { x in
                    for i in 0..<x.count { x[i] += new[i] - old[i] }
                }
            }
        }
        _weight += share.weight - stream.weight
        stream.sum = share.values
        stream.weight = share.weight
        stream.sequence = share.sequence
        stream.lastHeard = now
        inStreams[node] = stream
        _contributionsMixed += 1
        return nil
    }

    // MARK: Mixing

    /// The collection deadline of round `round`: plain mixing combines the round's contributions
    /// from `in` (this round's in-neighbours with their degrees) into the value,
    /// x ← W_ii·x + Σ_j W_ij·x_j, a missing one's weight staying with self. Push-sum has applied
    /// every share on arrival and only closes the round. `measuringDistance`: also compute
    /// `MixReport.distanceToNeighbours` (a pass over every contribution).
    @inlinable public mutating func mix(round: UInt64, in neighbours: [Neighbour], ownDegree: Int, maxDegree: Int,
                             measuringDistance: Bool = false) -> MixReport {
        defer {
            lastMixedRound = max(lastMixedRound ?? round, round)
            _mixes += 1
        }
        guard settings.mixing == .plain else {
            return _lastReport ?? MixReport(selfWeight: 1, weights: [:])
        }
        var weights: [Node: Double] = [:]
        var used: [(weight: Double, values: [Double])] = []
        var selfWeight = 1.0
        for (node, _) in neighbours {
            guard let contribution = pending[node]?.first(where: { $0.round == round }) else { continue }
            let w = settings.weights.weight(own: ownDegree, other: contribution.degree, maxDegree: maxDegree)
            weights[node] = w
            used.append((w, contribution.values))
            selfWeight -= w
        }
        for node in Array(pending.keys) {
            pending[node]!.removeAll { $0.round <= round }
            if pending[node]!.isEmpty { pending[node] = nil }
        }
        var distance: Double?
        if !used.isEmpty {
            if measuringDistance { distance = Self.distance(_value, toWeightedAverageOf: used) }
            if let factor = settings.clipFactor, factor > 0 { clip(&used, factor: factor, neighbours: neighbours.count) }
            let s = selfWeight
            _value.withUnsafeMutableBufferPointer { x in
                for i in 0..<x.count { x[i] *= s }
                for (w, values) in used {
                    values.withUnsafeBufferPointer { y in
                        for i in 0..<x.count { x[i] += w * y[i] }
                    }
                }
            }
        }
        _contributionsMixed += used.count
        let report = MixReport(selfWeight: selfWeight, weights: weights, distanceToNeighbours: distance)
        _lastReport = report
        return report
    }

    /// Self-centred clipping: each contribution y becomes x + (y − x)·min(1, τ/‖y − x‖), τ =
    /// `clipFactor` × a reference distance (never below 10⁻⁶‖x‖, so agreement to rounding is
    /// never clipped): the lower median of the round's distances, an honest one while honest
    /// neighbours are a majority; the nearer of two; and for a lone contribution the last
    /// round's reference (`_clipReference`). Before any round of two, a lone contribution is
    /// held back (it cannot be judged, and the first rounds of a network are where an unclipped
    /// insider did the most harm on real processes), unless this peer has a single neighbour,
    /// when no second contribution may ever come (a network of two): then it is clipped against
    /// the length of this peer's own training path (`_trainingPath`). Peers that started from
    /// the same parameters and trained alike are at most their two paths apart, and an insider
    /// that is a new peer's only neighbour while views form (slow under load) pulls it only
    /// about as far as it trains. Nothing trained yet (or only averaging): held back.
    @inlinable mutating func clip(_ used: inout [(weight: Double, values: [Double])], factor: Double, neighbours: Int) {
        let x = _value
        var distances = [Double](repeating: 0, count: used.count)
        for j in used.indices {
            var d = 0.0
            used[j].values.withUnsafeBufferPointer { y in
                for i in 0..<x.count { let e = y[i] - x[i]; d += e * e }
            }
            distances[j] = d.squareRoot()
        }
        if used.count >= 2 { _clipReference = distances.sorted()[(used.count - 1) / 2] }
        guard let reference = _clipReference ?? (neighbours == 1 && _trainingPath > 0 ? _trainingPath : nil) else {
            used[0].values = x  // held back: mixes in as this peer's own value
            _rejections[.clipped, default: 0] += 1
            return
        }
        var norm = 0.0
        for v in x { norm += v * v }
        let radius = max(factor * reference, 1e-6 * norm.squareRoot())
        for j in used.indices where distances[j] > radius {
            let scale = radius / distances[j]
            for i in 0..<x.count { used[j].values[i] = x[i] + (used[j].values[i] - x[i]) * scale }
            _rejections[.clipped, default: 0] += 1
        }
    }

    /// ‖x − ȳ‖ / ‖ȳ‖ with ȳ = Σ w_j·y_j / Σ w_j (0 when both are 0).
    @inlinable static func distance(_ x: [Double], toWeightedAverageOf contributions: [(weight: Double, values: [Double])]) -> Double {
        var average = [Double](repeating: 0, count: x.count)
        var total = 0.0
        for (w, y) in contributions {
            total += w
            for i in 0..<x.count { average[i] += w * y[i] }
        }
        var difference = 0.0, norm = 0.0
        for i in 0..<x.count {
            let a = average[i] / total
            difference += (x[i] - a) * (x[i] - a)
            norm += a * a
        }
        return norm > 0 ? (difference / norm).squareRoot() : (difference > 0 ? .infinity : 0)
    }

    // MARK: Local changes

    /// Local training moved the estimate from `old` to `new`: x += w·(new − old), w the weight
    /// the estimate had when training started (push-sum), 1 for plain. Shares that arrived
    /// meanwhile are kept.
    @inlinable public mutating func applyLocalUpdate(from old: [Float], to new: [Float], weight w: Double) {
        guard old.count == dimension, new.count == dimension, w > 0 else { return }
        var length = 0.0
        for i in 0..<dimension {
            let step = w * (Double(new[i]) - Double(old[i]))
            _value[i] += step
            length += step * step
        }
        _trainingPath += length.squareRoot()
    }

    /// Starts over from `values` with weight `weight` (a model adopted from the network: plain
    /// takes it as its value; push-sum with weight 0 leaves the network average unchanged).
    @inlinable public mutating func reset(to values: [Double], weight w: Double) {
        precondition(values.count == dimension, "reset with the wrong dimension")
        _weight = settings.mixing == .pushSum ? w : 1
        _value = values.map { $0 * _weight }
        _trainingPath = 0  // a new start: paths are measured from here
    }

    /// A peer left the view: its pending contributions go. Push-sum streams to and from it stay
    /// for `streamIdleTimeout` (it may have been declared failed wrongly and come back); if it is
    /// really gone, what it held and what was on its way to it are lost with it.
    @inlinable public mutating func forget(_ node: Node) {
        pending[node] = nil
        _lastHeard[node] = nil
        _lastDegree[node] = nil
    }

    /// Drops the running sums of senders silent for `streamIdleTimeout`, remembering their stream
    /// ids; never those of senders `keep` names (live members: a stream can be silent for a long
    /// time under heavy loss, and what it still carries would be lost with it).
    @inlinable public mutating func housekeeping(now: Double, keep: (Node) -> Bool = { _ in false }) {
        for (node, stream) in inStreams where now - stream.lastHeard > settings.streamIdleTimeout && !keep(node) {
            closedStreams[node] = stream.id
            inStreams[node] = nil
        }
    }

    /// Counts a share the caller refused before handing it over (e.g. not from an in-neighbour).
    @inlinable public mutating func countRejection(_ reason: Rejection) {
        _rejections[reason, default: 0] += 1
    }

    @inlinable mutating func reject(_ reason: Rejection) -> Rejection {
        _rejections[reason, default: 0] += 1
        return reason
    }
}
