import ChorusAveraging
import ChorusCrypto
import ChorusLearning
@_spi(Simulation) import ChorusMembership
@_spi(Simulation) import ChorusWire

/// One peer's protocol, as a pure state machine: the datagram layer, membership, averaging and
/// local learning composed, with the phases (joining with model handover, training, leaving),
/// neighbour choice from the live view, the gossip round and every timer.
///
/// Time comes in (`now`, seconds on a monotonic clock), randomness comes from a generator seeded
/// at construction, and every decision comes out as a `PeerDirective`; `nextDeadline` says when to
/// call `tick` next. The real shell (ChorusPeer) and the simulator (ChorusSimulation) drive this
/// very code: the shell only moves bytes, runs learning jobs and keeps files.
public struct PeerInstance: Sendable {
    public enum Phase: String, Sendable {
        /// Waiting for the network's current model before contributing (started with --join).
        case joining
        case training
        /// Announced "left"; lingering so the announcement spreads.
        case leaving
        /// Done: the shell may close the socket.
        case stopped
    }

    /// Traffic handed to the shell to send (before any fault injection) and received from it.
    public struct Traffic: Sendable, Equatable {
        public var bytesSent = 0, bytesReceived = 0, datagramsSent = 0, datagramsReceived = 0
        /// Payload bytes (messages and objects, without the datagram layer's headers, hellos,
        /// signatures and tags) by channel number, per recipient.
        public var payloadSentByChannel = ChannelCounts()
        public var payloadReceivedByChannel = ChannelCounts()

        /// By channel name (`ChorusChannel.name`), channels with traffic only.
        public var payloadBytesSent: [String: Int] { payloadSentByChannel.named }
        public var payloadBytesReceived: [String: Int] { payloadReceivedByChannel.named }
    }

    /// Counts by channel number, updated for every message (the simulator's hot path). The
    /// channels in use are below 8 and counted inline: arrays of 256 counts on the heap were two
    /// cache misses per datagram at thousands of simulated peers.
    public struct ChannelCounts: Sendable, Equatable {
        private var low = InlineArray<8, Int>(repeating: 0)
        private var high: [UInt8: Int] = [:]

        public init() {}

        public subscript(channel: UInt8) -> Int {
            get { channel < 8 ? low[Int(channel)] : high[channel, default: 0] }
            set {
                if channel < 8 { low[Int(channel)] = newValue } else { high[channel] = newValue }
            }
        }

        /// By channel name (`ChorusChannel.name`), channels with a count only.
        public var named: [String: Int] {
            var out: [String: Int] = [:]
            for channel in UInt8(0)...255 where self[channel] != 0 { out[ChorusChannel.name(channel)] = self[channel] }
            return out
        }

        public static func == (a: Self, b: Self) -> Bool {
            a.high == b.high && (0..<8).allSatisfy { a.low[$0] == b.low[$0] }
        }
    }

    public let id: PeerID
    public let address: PeerAddress
    public let settings: PeerSettings
    public let epoch: UInt64
    public private(set) var phase: Phase
    public private(set) var wire: WireEndpoint
    public private(set) var membership: MembershipInstance
    public private(set) var averager: GossipAverager<PeerID>
    /// The model as of the last finished round (a job may be training a copy).
    public private(set) var learner: Learner
    /// This round's part of the topology over the live view (whom it sends to and hears from).
    public private(set) var neighbourhood = Neighbourhood<PeerID>()
    /// Out- and in-neighbours together, sorted.
    public var neighbours: [PeerID] { neighbourhood.all }
    public private(set) var lastEvaluation = Evaluation.none
    /// Exponential moving average of the training loss (NaN before the first round).
    public private(set) var trainLoss = Double.nan
    public private(set) var traffic = Traffic()
    /// Payloads dropped above the datagram layer, by reason (e.g. "membership.malformed").
    public private(set) var rejections: [String: Int] = [:]
    /// Whether a learning job is out with the shell.
    public private(set) var isLearning = false
    /// The weights of the last round (for invariant checks: non-negative, summing to one; plain
    /// mixing reports its row, push-sum its column).
    public private(set) var lastMix: GossipAverager<PeerID>.MixReport?
    /// Rounds skipped because the previous round's training had not finished (a slow host).
    public private(set) var roundsSkipped = 0
    /// This peer's distance to its neighbours' weighted average at the last mix that had any
    /// contribution, and when (see `MixReport.distanceToNeighbours`): convergence, seen locally.
    public private(set) var distanceToNeighbours: (value: Double, at: Double)?
    /// When the next mix measures that distance (every `settings.distanceInterval`).
    private var nextDistanceAt = -Double.infinity

    private var rng: Xoshiro256
    /// Addresses of peers membership does not (yet) name an address for: configured peers and
    /// where hellos came from. Members' addresses are read from membership, not copied here (a
    /// second table of every member's address was a sixth of a 4096-member simulation's memory).
    private var addresses: [PeerID: PeerAddress] = [:]
    /// Peers that proved they receive at an address other than the one their claim names (a
    /// host name, a peer with several addresses, or an insider naming a third party's): sends
    /// go there (`destination`). Empty when every peer receives where its claim says.
    private var provedElsewhere: [PeerID: PeerAddress] = [:]
    /// The neighbours' addresses (nil: to be looked up again at the next round, after a view or
    /// address change): one lookup per neighbour per view, not per round.
    private var neighbourAddresses: [PeerID: PeerAddress]?
    /// The live members in id order (the topology numbers them so).
    private var sortedMembers: [PeerID] = []
    private var seeds: [PeerAddress] = []
    /// Where to say hello while alone: the seeds and the configured neighbours' addresses.
    private var entryPoints: [PeerAddress] = []
    /// Whether an entry point has answered (its hello came back). Until then its hellos go on,
    /// with backoff, even while other members are known: knowing only newcomers that joined
    /// through us is not being in the network. Two newcomers that joined through each other,
    /// the first one's hellos to its own seed lost, stayed an island of two for good (found by
    /// `chorus simulate fuzz --seeds 46`). An entry point named by host name never matches the
    /// address its answers come from; such a peer keeps sending one hello per backoff period.
    private var entryPointAnswered = false
    /// Whether hellos to the entry points are due: alone, or not yet answered by one.
    private var callsEntryPoints: Bool { !entryPoints.isEmpty && (othersLive == 0 || !entryPointAnswered) }
    /// The current gap between hello rounds while alone (doubles up to seedRetryMaxInterval).
    private var seedRetryGap: Double
    /// Since when this peer has known no other member (nil: it knows some).
    private var aloneSince: Double?
    private var nextIsolationWarning = -Double.infinity
    private var warnedIsolated = false
    /// When each kind of misconfiguration warning may be given again.
    private var nextWarning: [String: Double] = [:]
    private var unknownKeyDatagrams = 0
    private var started = false
    /// Gossip rounds are aligned to the wall clock (see `PeerSettings.gossipInterval`).
    private let unixTimeAtZero: Double
    private var nextRound: UInt64 = 0
    private var nextRoundAt: Double
    /// The round whose contributions are being collected, and when they are mixed.
    private var mixRound: UInt64?
    private var mixAt = Double.infinity
    /// The estimate handed to the learning job and the push-sum weight it had then: the job's
    /// change is added to the averager's value when it returns.
    private var learningStart: (parameters: [Float], weight: Double)?
    /// The round whose shares go out when its training comes back.
    private var sendRound: UInt64?
    private var nextEvaluationAt: Double
    private var nextCheckpointAt: Double
    private var nextHousekeepingAt: Double
    private var nextSessionSweepAt = -Double.infinity
    private var nextSeedHelloAt = Double.infinity
    /// When entry points missing from the live view are next called (`recallEntryPoints`).
    private var nextEntryPointRecallAt = Double.infinity
    private var joinDeadline = Double.infinity
    private var nextModelRequestAt = Double.infinity
    private var modelRequests = 0
    /// Joining: the models handed over so far, by sender (checked for length and finiteness).
    private var modelAnswers: [PeerID: ParametersMessage] = [:]
    /// When each sender last got a model answer, and the answers of the current second
    /// (`modelAnswerInterval`, `modelAnswersPerSecond`); entries older than the interval are
    /// dropped once the table holds 256, so Sybil requests cannot grow it.
    private var modelAnswered: [PeerID: Double] = [:]
    private var modelAnswerSecond = (start: -Double.infinity, count: 0)
    private var leaveEndsAt = Double.infinity
    /// Live members besides this peer (kept with the neighbourhood, not recounted per tick).
    private var othersLive = 0

    /// - Parameters:
    ///   - epoch: this boot's epoch (grows across restarts; see docs/protocol.md).
    ///   - unixTimeAtZero: wall-clock seconds when `now` was 0 (bounds incarnations).
    ///   - seed: this peer's randomness (probe order, gossip targets, object ids).
    ///   - claimVerifier: shared by a simulator's peers (it caches verified claims); by default
    ///     a new one in the network key's crypto mode.
    ///   - admission: the network authority and this peer's certificate, when the network admits
    ///     only identities the authority certified (docs/security.md, "Admission and revocation").
    public init(identity: SigningKey, keyring: NetworkKeyring, epoch: UInt64, address: PeerAddress,
                settings: PeerSettings, learner: Learner, now: Double, unixTimeAtZero: Double, seed: UInt64,
                claimVerifier: ClaimVerifier? = nil, admission: Admission? = nil) {
        precondition(settings.problems().isEmpty, "invalid PeerSettings: \(settings.problems())")
        // Claims are checked the way the network key says (a simulator shares one verifier).
        let verifier = claimVerifier ?? ClaimVerifier(mode: keyring.primary.mode)
        precondition(verifier.mode == keyring.primary.mode, "the claim verifier and the network key disagree on the crypto mode")
        self.id = identity.peerID
        self.address = address
        self.settings = settings
        self.epoch = epoch
        self.learner = learner
        self.rng = Xoshiro256(seed: seed)
        self.phase = settings.fetchModel ? .joining : .training
        // The boot's key-exchange key: from the system's generator with real cryptography (a
        // 64-bit seed is no secret key); in a simulation's stand-in mode from a generator of its
        // own, so that a seeded run repeats and the other draws do not move.
        var keyRNG = Xoshiro256(seed: seed ^ 0xB007_5EED)
        let bootKeySeed = settings.wire.sessionKeys && keyring.primary.mode == .simulated
            ? (0..<4).flatMap { _ in withUnsafeBytes(of: keyRNG.next()) { Array($0) } } : nil
        self.wire = WireEndpoint(identity: identity, keyring: keyring, epoch: epoch, settings: settings.wire, admission: admission,
                                 bootKeySeed: bootKeySeed)
        self.membership = MembershipInstance(
            key: identity, address: address, incarnation: epoch << 16, settings: settings.membership, now: now,
            unixTimeAtZero: unixTimeAtZero, verifier: verifier, authority: admission?.authority)
        var averaging = settings.averaging
        averaging.clipFactor = averaging.clipFactor(training: settings.stepsPerRound > 0)  // resolved here, once
        self.averager = GossipAverager(initial: learner.parameters.map(Double.init), weight: settings.fetchModel ? 0 : 1,
                                       epoch: epoch, settings: averaging)
        self.unixTimeAtZero = unixTimeAtZero
        self.nextRound = Self.roundIndex(at: now, origin: unixTimeAtZero, interval: settings.gossipInterval) + 1
        self.nextRoundAt = Double(nextRound) * settings.gossipInterval - unixTimeAtZero
        self.nextEvaluationAt = now
        self.nextCheckpointAt = settings.checkpointInterval > 0 ? now + settings.checkpointInterval : .infinity
        self.nextHousekeepingAt = now + settings.housekeepingInterval
        self.seedRetryGap = settings.seedRetryInterval
        self.aloneSince = now
        self.sortedMembers = [id]  // the view of a peer alone (kept in step with it: `neighbourhoodIsCurrent`)
    }

    // MARK: Life cycle

    /// Starts talking: hellos to `seeds` (addresses whose peer is not known yet) and a join sync
    /// with every configured neighbour whose id is known.
    public mutating func start(seeds: [PeerAddress], knownPeers: [(PeerID, PeerAddress)], now: Double) -> [PeerDirective] {
        precondition(!started, "start once")
        started = true
        self.seeds = seeds
        for address in seeds + knownPeers.filter({ $0.0 != id }).map(\.1) where !entryPoints.contains(address) {
            entryPoints.append(address)
        }
        var out: [PeerDirective] = []
        if phase == .joining {
            joinDeadline = now + settings.modelWaitTimeout
            nextModelRequestAt = now
        }
        for (peer, address) in knownPeers where peer != id {
            addresses[peer] = address
            perform(membership.join(seed: peer, address: address, now: now), now: now, into: &out)
        }
        helloSeeds(now: now, into: &out)
        nextEntryPointRecallAt = now + settings.entryPointRecallInterval
        return out
    }

    /// Starts from a known view without gossiping it: a simulation's network in steady state.
    /// `claims` are the members' own alive claims (see `aliveClaim`). Their datagram sessions
    /// start as if hellos had been exchanged: a peer's incarnation starts at its epoch · 2¹⁶
    /// (see `init`), so each claim names its sender's epoch.
    ///
    /// With `sharing`, an instance already preloaded with the same claims, the membership view
    /// is taken from it and shares its memory (see `MembershipInstance.preload(sharing:now:)`), as
    /// does the datagram layer's table of short ids (`WireEndpoint.shareShortIDs`).
    /// With session keys, `bootKeys` gives each peer's boot public key (`wire.bootPublicKey`).
    @_spi(Simulation) public mutating func preload(_ claims: [Claim], sharing other: PeerInstance? = nil, now: Double,
                                                   bootKeys: [PeerID: [UInt8]] = [:]) {
        let others = claims.filter { $0.subject != id }
        if let other {
            membership.preload(sharing: other.membership, now: now)
        } else {
            membership.preload(others, now: now)
        }
        if let other, !bootKeys.isEmpty { wire.shareShortIDs(with: other.wire) }
        for claim in others where claim.status == .alive && !claim.address.isEmpty {
            wire.assumeSession(with: claim.subject, epoch: claim.incarnation >> 16, at: claim.address, now: now) { bootKeys[$0] }
        }
        if let other {
            // The same view, so the same sorted member list: one array for all until they differ
            // (n lists of n ids were half a gigabyte at 4096 peers).
            sortedMembers = other.sortedMembers
            recomputeNeighbourhood(round: mixRound ?? nextRound)
        }
        recomputeNeighbours(now: now)
    }

    /// Addresses and lengths of the heap memory a datagram or tick for this peer reads first, for
    /// a simulator to prefetch while it handles the event before (at thousands of peers each
    /// event's peer comes from memory, and these misses otherwise come one after the other).
    /// Hints only: the addresses are not for reading, and a wrong one costs nothing (they rely on
    /// a `Dictionary` and a `TreeDictionary` starting with their storage's reference).
    @_spi(Simulation) public func memoryHints(_ body: (UnsafeRawPointer, Int) -> Void) {
        wire.memoryHints(body)
        membership.memoryHints(body)
    }

    /// The network keys: the primary seals, all of them open.
    public var keyring: NetworkKeyring { wire.keyring }

    /// Installs other network keys on the running peer (a step of a key rotation,
    /// docs/security.md): nothing else changes, so no member notices.
    public mutating func setKeyring(_ keyring: NetworkKeyring) { wire.setKeyring(keyring) }

    /// Applies a revocation signed by the network authority (handed over by the operator, or kept
    /// from an earlier run), as if gossip had brought it; it is gossiped on from here. Returns
    /// why it was refused, if it was.
    public mutating func revoke(_ revocation: Claim, now: Double) -> (refused: ClaimRejection?, directives: [PeerDirective]) {
        guard revocation.status == .revoked else { return (.notFromAuthority, []) }
        let before = membership.rejections
        var out: [PeerDirective] = []
        perform(membership.learn(revocation, now: now), now: now, into: &out)
        let refused = ClaimRejection.allCases.first { membership.rejections[$0, default: 0] > before[$0, default: 0] }
        return (refused, out)
    }

    /// The revocations this peer holds, to keep across restarts.
    public var revocations: [Claim] { membership.revocations }

    /// This peer's signed statement that it is alive at its address and incarnation.
    public var aliveClaim: Claim { membership.fullState()[0] }

    /// Graceful leave: announce "left" (signed) to members directly and by gossip, hand the
    /// current parameters to the neighbours one last time, stop training, and linger for
    /// `leaveLinger` seconds (still answering) before `PeerEvent.stopped`.
    public mutating func leave(now: Double) -> [PeerDirective] {
        guard phase == .joining || phase == .training else { return [] }
        let wasTraining = phase == .training
        phase = .leaving
        leaveEndsAt = now + settings.leaveLinger
        var out: [PeerDirective] = []
        perform(membership.leave(now: now, rng: &rng), now: now, into: &out)
        // Push-sum hands all of this peer's mass to its out-neighbours now and every round of
        // the linger (running sums: a lost share is made good by the next). Plain mixing has
        // nothing to hand over: this peer's value is in its neighbours' last mixes.
        if wasTraining && settings.averaging.mixing == .pushSum { sendShares(round: nextRound &- 1, handOver: true, now: now, into: &out) }
        return out
    }

    /// The progress to save (the last finished round).
    public var snapshot: ModelSnapshot {
        ModelSnapshot(steps: learner.steps, epoch: learner.epoch, parameters: learner.parameters)
    }

    /// Where this peer reaches `peer` (from membership claims, hellos or configuration).
    public func address(of peer: PeerID) -> PeerAddress? { membership.address(of: peer) ?? addresses[peer] }

    // MARK: Time

    /// When `tick` must run next (calling it earlier is harmless).
    /// More datagram sessions than members (and slack): identities that said hello and never
    /// joined. Checked in O(1), so a network without strangers never sweeps.
    private var holdsStrangerSessions: Bool { wire.sessionCount > membership.members.count + 64 }

    public var nextDeadline: Double {
        if phase == .stopped { return .infinity }
        var t = membership.nextDeadline
        if wire.needsTick || holdsStrangerSessions { t = min(t, nextHousekeepingAt) }  // idle housekeeping is skipped, not ticked
        switch phase {
        case .training:
            if settings.gossipRounds { t = min(t, nextRoundAt, mixAt) }
            t = min(t, nextCheckpointAt)
        case .joining:
            t = min(t, joinDeadline)
            if !neighbourhood.out.isEmpty || !neighbourhood.in.isEmpty { t = min(t, nextModelRequestAt) }
        case .leaving:
            t = min(t, leaveEndsAt)
            if handsOverWhileLeaving { t = min(t, nextRoundAt) }
        case .stopped:
            break
        }
        if callsEntryPoints { t = min(t, nextSeedHelloAt) } else if !entryPoints.isEmpty { t = min(t, nextEntryPointRecallAt) }
        if isolated { t = min(t, max(aloneSince! + settings.isolationWarningAfter, nextIsolationWarning)) }
        return t
    }

    public mutating func tick(now: Double) -> [PeerDirective] {
        let out = tickOnce(now: now)
        #if DEBUG
        checkDeadlineMoved(now: now)
        #endif
        return out
    }

    #if DEBUG
    /// Ticks in a row at one instant that left `nextDeadline` due, in debug builds.
    private var dueAfterTicks = (at: -Double.infinity, count: 0)

    /// `nextDeadline` mirrors every condition of `tick` by hand; where they disagree, a tick at
    /// the deadline does nothing and leaves it due, and a shell that obeys spins at that instant
    /// (fuzz seed 36 found one). A deadline may ask for a second tick at the same instant (a round
    /// right after joining), so only a third in a row traps.
    private mutating func checkDeadlineMoved(now: Double) {
        guard nextDeadline <= now else {
            dueAfterTicks = (now, 0)
            return
        }
        dueAfterTicks = (now, dueAfterTicks.at == now ? dueAfterTicks.count + 1 : 1)
        assert(dueAfterTicks.count < 3, "nextDeadline (\(nextDeadline)) still due after three ticks at \(now): it disagrees with tick")
    }
    #endif

    private mutating func tickOnce(now: Double) -> [PeerDirective] {
        var out: [PeerDirective] = []
        guard phase != .stopped else { return out }
        if phase == .leaving && now >= leaveEndsAt {
            // The last hand-over: whatever arrived since the previous round goes on too.
            if handsOverWhileLeaving { sendShares(round: nextRound &- 1, handOver: true, now: now, into: &out) }
            phase = .stopped
            out.append(.event(.stopped))
            return out
        }
        if now >= membership.nextDeadline { perform(membership.tick(now: now, rng: &rng), now: now, into: &out) }
        if now >= nextHousekeepingAt {
            nextHousekeepingAt = now + settings.housekeepingInterval
            if wire.needsTick {
                let membership = membership, addresses = addresses
                for (peer, address, hello) in wire.tick(now: now, address: { membership.address(of: $0) ?? addresses[$0] }) {
                    emit([hello], to: address, peer: peer, into: &out)
                }
            }
            if holdsStrangerSessions && now >= nextSessionSweepAt {
                // Sessions of identities that never became members (a Sybil flood, peers long
                // gone) are forgotten once idle, and their memory given back.
                nextSessionSweepAt = now + settings.sessionSweepInterval
                let membership = membership, addresses = addresses
                _ = wire.forgetIdleSessions(now: now) { membership.status(of: $0) != nil || addresses[$0] != nil }
            }
        }
        if callsEntryPoints {
            if now >= nextSeedHelloAt { helloSeeds(now: now, into: &out) }  // no seed answered yet: they may have started after us
        } else if !entryPoints.isEmpty && now >= nextEntryPointRecallAt {
            recallEntryPoints(now: now, into: &out)
        }
        if warnedIsolated && othersLive > 0 {
            warnedIsolated = false
            nextIsolationWarning = -.infinity
            out.append(.event(.reconnected(members: othersLive + 1)))
        }
        // The very sum `nextDeadline` compares: `now - since >= after` rounds differently (22.9 − 12.9
        // is 9.999999999999998), and the tick at the deadline would then do nothing, forever.
        if isolated, let since = aloneSince, now >= since + settings.isolationWarningAfter, now >= nextIsolationWarning {
            nextIsolationWarning = now + settings.warningInterval
            warnedIsolated = true
            out.append(.event(.isolated(seconds: now - since, tried: entryPoints)))
        }
        switch phase {
        case .joining:
            requestModel(now: now, into: &out)
        case .training:
            if settings.gossipRounds && now >= nextRoundAt { startRound(now: now, into: &out) }
            if settings.gossipRounds && now >= mixAt { finishRound(now: now, into: &out) }
            if now >= nextCheckpointAt {
                nextCheckpointAt = now + settings.checkpointInterval
                out.append(.saveCheckpoint(snapshot))
            }
        case .leaving:
            if handsOverWhileLeaving && now >= nextRoundAt {
                let round = advanceRound(now: now)
                sendShares(round: round, handOver: true, now: now, into: &out)
            }
        case .stopped:
            break
        }
        return out
    }

    // MARK: Gossip rounds

    /// The round under way at `now`: rounds are aligned to the wall clock, so every peer whose
    /// clock is right numbers them alike (docs/averaging.md).
    private func roundIndex(at now: Double) -> UInt64 {
        Self.roundIndex(at: now, origin: unixTimeAtZero, interval: settings.gossipInterval)
    }

    private static func roundIndex(at now: Double, origin: Double, interval: Double) -> UInt64 {
        let t = ((origin + now) / interval).rounded(.down)
        return t > 0 ? UInt64(t) : 0
    }

    /// When round `round` starts, in this peer's seconds.
    private func roundStart(_ round: UInt64) -> Double {
        Double(round) * settings.gossipInterval - unixTimeAtZero
    }

    /// Moves to the next round boundary; returns the round that starts now. Rounds missed while
    /// the process stood still are skipped, not caught up.
    private mutating func advanceRound(now: Double) -> UInt64 {
        let round = max(nextRound, roundIndex(at: now))
        nextRound = round + 1
        nextRoundAt = roundStart(nextRound)
        return round
    }

    private var handsOverWhileLeaving: Bool { settings.gossipRounds && settings.averaging.mixing == .pushSum }

    /// A round starts: train (adapt), send the trained shares as soon as training is back, and
    /// collect until `collectFraction` of the round, then mix (combine). So the model between a
    /// mix and the next round's start is the combined one: what status, checkpoints, hand-overs
    /// and evaluations see. If the last round's training has not come back, this round is
    /// skipped (counted).
    private mutating func startRound(now: Double, into out: inout [PeerDirective]) {
        let round = advanceRound(now: now)
        if isLearning || mixRound != nil {
            roundsSkipped += 1
            return
        }
        if settings.topology.isTimeVarying { recomputeNeighbourhood(round: round) }
        if settings.averaging.mixing == .pushSum && round % 10 == 0 {  // the idle timeout is a minute: once a second is plenty
            let membership = self.membership
            averager.housekeeping(now: now) { membership.status(of: $0).map { $0 == .alive || $0 == .suspect } ?? false }
        }
        mixRound = round
        mixAt = roundStart(round) + settings.collectFraction * settings.gossipInterval
        let evaluate = settings.evaluationInterval > 0 && now >= nextEvaluationAt
        if evaluate { nextEvaluationAt = now + settings.evaluationInterval }
        guard settings.stepsPerRound > 0 || evaluate else {
            sendShares(round: round, handOver: false, now: now, into: &out)
            return
        }
        isLearning = true
        sendRound = round
        learningStart = (learner.parameters, averager.weight)
        out.append(.learn(LearningJob(learner: learner, steps: settings.stepsPerRound, evaluate: evaluate)))
    }

    /// The collection deadline: mix the round's contributions and take the estimate as the model.
    private mutating func finishRound(now: Double, into out: inout [PeerDirective]) {
        let round = mixRound!
        mixRound = nil
        mixAt = .infinity
        if settings.topology.isTimeVarying { recomputeNeighbourhood(round: round) }
        let measuring = settings.averaging.mixing == .plain && now >= nextDistanceAt
        if measuring { nextDistanceAt = now + settings.distanceInterval }
        let report = averager.mix(round: round, in: neighbourhood.in, ownDegree: neighbourhood.inDegree,
                                  maxDegree: neighbourhood.maxDegree, measuringDistance: measuring)
        lastMix = report
        if let distance = report.distanceToNeighbours { distanceToNeighbours = (distance, now) }
        takeEstimate()
    }

    /// The averager's estimate becomes the model (it holds only finite values of the right
    /// length; push-sum has an estimate once it holds weight: a joiner trains its adopted model
    /// until then).
    private mutating func takeEstimate() {
        if let estimate = averager.estimate { try? learner.replaceParameters(estimate.map(Float.init)) }
    }

    /// A round's training is back: its change is added to the averaged value (contributions that
    /// arrived meanwhile stay), and the round's shares go out if the round still collects.
    public mutating func learningFinished(_ result: LearningResult, now: Double) -> [PeerDirective] {
        isLearning = false
        guard phase == .training else { return [] }  // left meanwhile: the result is moot
        if let start = learningStart {
            averager.applyLocalUpdate(from: start.parameters, to: result.learner.parameters, weight: start.weight)
        }
        learningStart = nil
        learner = result.learner
        if result.meanLoss.isFinite { trainLoss = trainLoss.isNaN ? result.meanLoss : 0.8 * trainLoss + 0.2 * result.meanLoss }
        if let evaluation = result.evaluation { lastEvaluation = evaluation }
        var out: [PeerDirective] = []
        if let round = sendRound {
            sendRound = nil
            if mixRound == round {
                sendShares(round: round, handOver: false, now: now, into: &out)
            } else {
                roundsSkipped += 1  // training outlasted the collection: this round's shares would be late
                takeEstimate()  // the mix happened meanwhile: the model is the mixed value plus this change
            }
        }
        return out
    }

    /// The network's average as this peer estimates it, in double precision (nil while a
    /// push-sum joiner holds no weight yet).
    public var estimate: [Double]? { averager.estimate }

    /// Evaluates the current model now (for a simulator's sampling; the real shell never calls this on its I/O loop).
    public func evaluate() -> Evaluation { learner.evaluate() }

    // MARK: Network

    public mutating func receive(_ bytes: [UInt8], from source: PeerAddress, now: Double) -> [PeerDirective] {
        var out: [PeerDirective] = []
        guard phase != .stopped else { return out }
        traffic.bytesReceived += bytes.count
        traffic.datagramsReceived += 1
        let reception = wire.receive(bytes, from: source, now: now)
        if let (peer, epoch) = reception.earlierBoot {
            tellEarlierBoot(of: peer, epoch: epoch, at: source, now: now, into: &out)
        }
        if reception.rejection == .unknownNetwork {
            unknownKeyDatagrams += 1
            if warnOnce("unknownNetwork", now: now) {
                out.append(.event(.misconfiguredTraffic(.unknownNetworkKey(from: source, count: unknownKeyDatagrams))))
            }
        }
        emit(reception.replies, to: source, peer: nil, into: &out)
        if let sender = reception.sender, !reception.flushed.isEmpty {
            emit(reception.flushed, to: source, peer: sender, into: &out)  // where the sender just proved it receives
        }
        for delivery in reception.deliveries {
            switch delivery {
            case let .hello(peer):
                if wire.isProven(peer, at: source) { provedElsewhere[peer] = address(of: peer) == source ? nil : source }
                // An entry point answering, or anyone while we are not settled yet (a newcomer
                // joining through another newcomer): exchange views through it. A settled member
                // only greets a stranger with its view's digest (one small datagram); a peer with
                // news answers with its view. Joining through every stranger sent each one our
                // whole view every second until it answered: an insider's hellos in 100 000
                // names, or at a third party's address, came back as megabytes (issue 21).
                let fromEntryPoint = entryPoints.contains(source)
                if fromEntryPoint { entryPointAnswered = true }
                let stranger = membership.status(of: peer) == nil
                // A member that says hello from a later boot than our view holds has restarted:
                // greeting it brings its new alive claim at once, rather than when gossip does.
                let rebooted = !stranger && (wire.epoch(of: peer) ?? 0) > (membership.members[peer]?.incarnation ?? 0) >> 16
                if (stranger || rebooted) && !fromEntryPoint && settled {
                    perform(membership.greet(peer, address: source, now: now), now: now, into: &out)
                } else if (fromEntryPoint || stranger) && answersMayGo(to: peer, at: source) {
                    if address(of: peer) == nil {
                        addresses[peer] = source
                        neighbourAddresses = nil
                    }
                    perform(membership.join(seed: peer, address: source, now: now), now: now, into: &out)
                }
            case let .message(from, channel, payload):
                traffic.payloadReceivedByChannel[channel] += payload.count
                handleMessage(from: from, channel: channel, payload: payload, source: source, now: now, into: &out)
            case let .object(object):
                traffic.payloadReceivedByChannel[object.channel] += object.bytes.count
                handleObject(object, source: source, now: now, into: &out)
            }
        }
        return out
    }

    private mutating func handleMessage(from sender: PeerID, channel: UInt8, payload: [UInt8], source: PeerAddress,
                                        now: Double, into out: inout [PeerDirective]) {
        switch channel {
        case ChorusChannel.membership:
            guard let message = MembershipMessage.decode(payload) else { return count("membership.malformed") }
            guard let answerAddress = answerAddress(sender, source) else { return count("membership.unproven") }
            perform(membership.receive(message, from: sender, address: answerAddress, now: now, rng: &rng), now: now, into: &out)
        case ChorusChannel.modelRequest:
            // Only a peer that is itself training has a model worth handing over.
            guard phase == .training else { return }
            if let last = modelAnswered[sender], now - last < settings.modelAnswerInterval { return count("model.rateLimited") }
            if now - modelAnswerSecond.start >= 1 { modelAnswerSecond = (now, 0) }
            guard modelAnswerSecond.count < settings.modelAnswersPerSecond else { return count("model.rateLimited") }
            modelAnswerSecond.count += 1
            if modelAnswered.count >= 256 { modelAnswered = modelAnswered.filter { now - $0.value < settings.modelAnswerInterval } }
            guard let address = address(of: sender) ?? (wire.isProven(sender, at: source) ? source : nil) else { return count("model.unproven") }
            modelAnswered[sender] = now
            send(.object(modelObject()), to: sender, at: address, now: now, into: &out)
        default:
            count("channel.unknown")
        }
    }

    private mutating func handleObject(_ object: CompletedObject, source: PeerAddress, now: Double, into out: inout [PeerDirective]) {
        switch object.channel {
        case ChorusChannel.parameters:
            // Push-sum takes shares in every phase but stopped: their mass was given away, and a
            // joining peer keeps it for when it trains, a leaving one hands it on.
            guard phase == .training || (settings.averaging.mixing == .pushSum && phase != .stopped) else { return }
            guard let message = ParametersMessage.decode(object.bytes) else { return count("parameters.malformed") }
            // Plain mixing weighs only its in-neighbours of that round; push-sum adds any
            // authenticated peer's share (its sender already gave that mass away).
            if settings.averaging.mixing == .plain && !isInNeighbour(object.sender, round: message.round) {
                averager.countRejection(.notANeighbour)
                return
            }
            let rejection = averager.receive(from: object.sender, message.share, now: now)
            if rejection == .wrongDimension, warnOnce("otherModel", now: now) {
                out.append(.event(.misconfiguredTraffic(.otherModel(from: object.sender, theirParameters: message.values.count,
                                                                    ours: learner.parameterCount))))
            }
        case ChorusChannel.membershipSync:
            guard let message = MembershipMessage.decode(object.bytes), message.isBulk else { return count("membership.malformed") }
            guard let answerAddress = answerAddress(object.sender, source) else { return count("membership.unproven") }
            perform(membership.receive(message, from: object.sender, address: answerAddress, now: now, rng: &rng), now: now, into: &out)
        case ChorusChannel.model:
            guard phase == .joining else { return }
            guard let message = ParametersMessage.decode(object.bytes), message.stream == nil,
                  message.values.count == learner.parameterCount, message.values.allSatisfy({ $0.isFinite && abs($0) <= Double(Float.greatestFiniteMagnitude) })
            else { return count("model.rejected") }
            modelAnswers[object.sender] = message
            if modelAnswers.count >= modelQuorumNeeded { adoptModel(now: now, into: &out) }
        default:
            count("channel.unknown")
        }
    }

    /// Where membership may answer `sender`'s message from `source`: there, if the sender is a
    /// member (membership answers members at their claims' addresses) or proved that it
    /// receives there (`WireEndpoint.isProven`); nil for a stranger that did not, whose message
    /// is dropped (`membership.unproven`). Its datagram may come from a third party's address:
    /// an insider can key a pair with us from any address, and it was answered with our whole
    /// view; only an echoed cookie shows where a peer receives. What a peer sends before it has
    /// proved any address waits in the datagram layer for the proof, so what reaches this check
    /// unproved comes from a peer that proved another address.
    private func answerAddress(_ sender: PeerID, _ source: PeerAddress) -> PeerAddress? {
        membership.status(of: sender) != nil || wire.isProven(sender, at: source) ? source : nil
    }

    /// Whether items for `peer` may be addressed to `source`: it proved that it receives there,
    /// or it has not proved any address yet (the datagram layer then holds them until it does,
    /// and sends them where it did).
    private func answersMayGo(to peer: PeerID, at source: PeerAddress) -> Bool {
        !wire.isConfirmed(peer) || wire.isProven(peer, at: source)
    }

    private mutating func count(_ reason: String) {
        rejections[reason, default: 0] += 1
    }

    /// An earlier boot of `peer` is still sending from `source`: two processes may share its
    /// identity. Show that process the later boot's own alive claim (signed with the key they
    /// share, so it cannot be forged): it learns it was started again and stops
    /// (docs/membership.md, "One identity, one process"). Once per peer per warning interval.
    private mutating func tellEarlierBoot(of peer: PeerID, epoch: UInt64, at source: PeerAddress, now: Double,
                                          into out: inout [PeerDirective]) {
        guard let claim = membership.members[peer]?.aliveClaim, claim.incarnation >> 16 > epoch,
              warnOnce("earlierBoot " + peer.description, now: now) else { return }
        let message = MembershipMessage.gossip(claims: [claim]).encoded()
        emit(wire.sendToEarlierBoot(.message(channel: ChorusChannel.membership, payload: message), of: peer, epoch: epoch),
             to: source, peer: nil, into: &out)
    }

    /// Shows a revoked member its revocation, once, before its session goes: nobody gossips to it
    /// any more, and it must learn that it is out (its process then stops and says why).
    private mutating func tellRevoked(_ peer: PeerID, into out: inout [PeerDirective]) {
        guard let epoch = wire.epoch(of: peer), epoch != 0, let claim = membership.members[peer]?.statusClaim,
              let address = address(of: peer) else { return }
        let message = MembershipMessage.gossip(claims: [claim]).encoded()
        emit(wire.sendToEarlierBoot(.message(channel: ChorusChannel.membership, payload: message), of: peer, epoch: epoch),
             to: address, peer: peer, into: &out)
    }

    /// Whether a warning of this kind may be given now (at most one per `warningInterval`).
    private mutating func warnOnce(_ kind: String, now: Double) -> Bool {
        guard now >= nextWarning[kind, default: -.infinity] else { return false }
        nextWarning[kind] = now + settings.warningInterval
        return true
    }

    /// Part of a network, as far as this peer can tell: not alone, and an entry point answered
    /// (or it had none: a first peer). Newcomers that joined only through each other cannot tell.
    public var settled: Bool { othersLive > 0 && (entryPoints.isEmpty || entryPointAnswered) }

    /// Alone although entry points are configured (a first peer with none is not isolated).
    public var isolated: Bool {
        othersLive == 0 && !entryPoints.isEmpty && (phase == .joining || phase == .training)
    }

    // MARK: Membership

    private mutating func perform(_ directives: [MembershipDirective], now: Double, into out: inout [PeerDirective]) {
        var viewChanged = false
        for directive in directives {
            switch directive {
            case let .send(message, to, address):
                // Membership names the address it knows (the member's claim, or where a seed's hello
                // came from); the address book is only the fallback (one lookup fewer per message).
                let destination = address.isEmpty ? addresses[to] ?? "" : address
                guard !destination.isEmpty else { continue }
                // A whole view may be large: it travels as a chunked object; the rest fit one datagram.
                let item: Outgoing = message.isBulk
                    ? .object(prepared(channel: ChorusChannel.membershipSync, bytes: message.encoded()))
                    : .message(channel: ChorusChannel.membership, payload: message.encoded())
                send(item, to: to, at: destination, now: now, into: &out)
            case let .event(event):
                switch event {
                case let .joined(peer, address), let .addressChanged(peer, address):
                    if !address.isEmpty { addresses[peer] = nil }  // membership names it from now on
                    neighbourAddresses = nil
                case let .removed(peer):
                    wire.forget(peer)
                    addresses[peer] = nil
                    provedElsewhere[peer] = nil
                case let .rebooted(peer, epoch):
                    wire.peerRebooted(peer, epoch: epoch)
                case let .revoked(peer) where peer == id:
                    // The authority removed this identity: nobody will talk to it again.
                    if phase != .stopped {
                        phase = .stopped
                        out.append(.event(.membership(event)))
                        out.append(.event(.stopped))
                    }
                    continue
                case let .revoked(peer):
                    tellRevoked(peer, into: &out)
                    wire.revoke(peer)
                    addresses[peer] = nil
                case let .laterSelf(address, incarnation):
                    // The network follows the later boot: this one stops, whatever the shell (a
                    // real process exits with the error; a simulated peer is taken out).
                    out.append(.event(.identityInUse(laterEpoch: incarnation >> 16, address: address)))
                    if phase != .stopped {
                        phase = .stopped
                        out.append(.event(.stopped))
                    }
                default:
                    break
                }
                if event.changesLiveSet { viewChanged = true }
                out.append(.event(.membership(event)))
            }
        }
        if viewChanged { recomputeNeighbours(now: now) }
    }

    /// Neighbours are a deterministic function of the live member set (settings.topology).
    private mutating func recomputeNeighbours(now: Double) {
        othersLive = membership.liveMemberCount - 1
        if othersLive > 0 {
            aloneSince = nil
            if entryPointAnswered { seedRetryGap = settings.seedRetryInterval }
        } else if aloneSince == nil {
            aloneSince = now
            nextSeedHelloAt = now  // everyone went away: back to the entry points at once
        }
        let members = membership.liveMembers.sorted()
        guard members != sortedMembers else { return }
        // Both lists are sorted: the members that left are found in one walk (a set of the
        // earlier list cost every simulated peer n insertions per change of the live set).
        var j = 0
        for peer in sortedMembers {
            while j < members.count && members[j] < peer { j += 1 }
            if j == members.count || members[j] != peer { averager.forget(peer) }
        }
        sortedMembers = members
        recomputeNeighbourhood(round: mixRound ?? nextRound)
    }

    /// Whether the neighbourhood is computed over the live view membership holds now. It is
    /// recomputed on the membership events that change the live set (`changesLiveSet`); a change
    /// of the live set without one would leave it stale, and contributions of the real
    /// neighbours would be refused (`notANeighbour`) while the view looks right. The simulator
    /// checks it whenever a view changes.
    @_spi(Simulation) public var neighbourhoodIsCurrent: Bool {
        sortedMembers.count == membership.liveMemberCount
            && MembershipInstance.setDigest(sortedMembers) == membership.liveMembersDigest
    }

    private mutating func recomputeNeighbourhood(round: UInt64) {
        neighbourhood = settings.topology.neighbourhood(of: id, inSorted: sortedMembers, round: round)
        neighbourAddresses = nil
    }

    /// Whether `peer` sends to this peer in `round` (plain mixing takes no one else's values).
    private func isInNeighbour(_ peer: PeerID, round: UInt64) -> Bool {
        guard settings.topology.isTimeVarying else { return neighbourhood.in.contains { $0.node == peer } }
        guard let i = sortedMembers.firstIndex(of: id) else { return false }
        return settings.topology.inNeighbours(of: i, count: sortedMembers.count, round: round).contains { sortedMembers[$0] == peer }
    }

    // MARK: Model handover

    /// Models a joiner waits for: `modelQuorum`, or one per other member when there are fewer.
    private var modelQuorumNeeded: Int { min(settings.modelQuorum, max(1, othersLive)) }

    /// A joining peer asks its neighbours for their current model, every `modelRequestInterval`
    /// as many as answers are still missing, each in turn. With `modelQuorumNeeded` answers it
    /// adopts one (`adoptModel`); at `modelWaitTimeout` it adopts from the answers it has, or
    /// with none (e.g. it is the first peer) starts from its own.
    private mutating func requestModel(now: Double, into out: inout [PeerDirective]) {
        if now >= joinDeadline {
            if !modelAnswers.isEmpty { return adoptModel(now: now, into: &out) }
            // Nobody handed a model over: this peer's own start is its contribution to the average.
            averager.reset(to: learner.parameters.map(Double.init), weight: 1)
            becomeTraining(now: now)
            out.append(.event(.startedAlone(waited: settings.modelWaitTimeout)))
            return
        }
        guard now >= nextModelRequestAt, !neighbours.isEmpty else { return }
        nextModelRequestAt = now + settings.modelRequestInterval
        var asked = 0
        for _ in neighbours.indices where asked < modelQuorumNeeded - modelAnswers.count {
            let target = neighbours[modelRequests % neighbours.count]
            modelRequests += 1
            guard modelAnswers[target] == nil, let address = address(of: target) else { continue }
            send(.message(channel: ChorusChannel.modelRequest, payload: []), to: target, at: address, now: now, into: &out)
            asked += 1
        }
    }

    /// Adopts one of the models handed over: with three or more, the one nearest their
    /// coordinate-wise median, which is an honest model while honest senders are a majority
    /// (each coordinate's median lies between honest values); answers farther from that median
    /// than the clipping radius of plain mixing would allow (`clipFactor` × the lower median of
    /// the distances) are counted as `model.outlier`. With two there is no majority: the one
    /// nearer this peer's own starting parameters is taken (an honest model has moved from the
    /// shared start only as far as training took it, a poisoned one anywhere); one is taken as it
    /// comes (a network of two).
    private mutating func adoptModel(now: Double, into out: inout [PeerDirective]) {
        let senders = modelAnswers.keys.sorted()
        let models = senders.map { modelAnswers[$0]! }
        func distances(to reference: [Double]) -> [Double] {
            models.map { m in zip(m.values, reference).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() }
        }
        var chosen = 0
        if models.count == 2 {
            let distances = distances(to: learner.parameters.map(Double.init))
            chosen = distances[1] < distances[0] ? 1 : 0
        } else if models.count >= 3 {
            let median = (0..<learner.parameterCount).map { i in
                let column = models.map { $0.values[i] }.sorted()
                return column.count % 2 == 1 ? column[column.count / 2] : (column[column.count / 2 - 1] + column[column.count / 2]) / 2
            }
            let distances = distances(to: median)
            chosen = distances.indices.min { distances[$0] < distances[$1] }!
            let factor = averager.settings.clipFactor ?? 0
            if factor > 0 {
                let radius = max(factor * distances.sorted()[(distances.count - 1) / 2],
                                 1e-6 * median.reduce(0) { $0 + $1 * $1 }.squareRoot())
                for d in distances where d > radius { count("model.outlier") }
            }
        }
        let message = models[chosen]
        modelAnswers = [:]
        guard (try? learner.adopt(parameters: message.parameters, step: message.step)) != nil else {
            return count("model.rejected")  // cannot happen for a checked length; the join goes on
        }
        // Plain: the model is the value. Push-sum: the joiner keeps the mass it was sent while
        // joining (none of its own: it leaves the network's average as it is); its estimate
        // replaces the adopted model at its first round.
        if settings.averaging.mixing == .plain { averager.reset(to: message.values, weight: 1) }
        becomeTraining(now: now)
        out.append(.event(.adoptedModel(from: senders[chosen], step: message.step)))
    }

    private mutating func becomeTraining(now: Double) {
        phase = .training
        joinDeadline = .infinity
        nextModelRequestAt = .infinity
        nextEvaluationAt = now  // the first round after joining reports its accuracy
    }

    // MARK: Sending

    /// This round's shares to the out-neighbours (plain: one object, hashed once for all).
    private mutating func sendShares(round: UInt64, handOver: Bool, now: Double, into out: inout [PeerDirective]) {
        // Push-sum only: who gets no new mass (plain mixing sends its value to every out-neighbour):
        // a suspect, and a peer that has not proved where it receives yet (what is sent to it
        // waits in the datagram layer, or is dropped: docs/averaging.md, "push-sum").
        var held = Set<PeerID>()
        var silence: Double?
        if settings.averaging.mixing == .pushSum {
            for (peer, _) in neighbourhood.out where membership.status(of: peer) != .alive || !wire.isConfirmed(peer) {
                held.insert(peer)
            }
            if !settings.topology.isDirected { silence = Double(settings.averaging.silentRounds) * settings.gossipInterval }
        }
        let outgoing = averager.beginRound(round, out: neighbourhood.out, ownDegree: neighbourhood.outDegree,
                                           maxDegree: neighbourhood.maxDegree, retained: neighbourhood.retained, handOver: handOver,
                                           now: now, held: held, silence: silence)
        if averager.settings.mixing == .pushSum, let report = averager.lastReport { lastMix = report }
        guard !outgoing.isEmpty else { return }
        if neighbourAddresses == nil { neighbourAddresses = [:] }
        for item in outgoing {
            var share = item.share
            if let poison = settings.poison, settings.averaging.mixing == .plain { share.values = poisoned(share.values, poison) }
            let message = ParametersMessage(share: share, step: learner.steps, float64: settings.averaging.sendsFloat64)
            let object = prepared(channel: ChorusChannel.parameters, bytes: message.encoded())
            for target in item.targets {
                if neighbourAddresses![target] == nil, let address = address(of: target) { neighbourAddresses![target] = address }
                guard let address = neighbourAddresses![target] else { continue }
                send(.object(object), to: target, at: address, now: now, into: &out)
            }
        }
    }

    /// This peer's model with its step count, float32: the answer to a joiner's model request.
    private mutating func modelObject() -> PreparedObject {
        var parameters = learner.parameters
        if let poison = settings.poison { parameters = poisoned(parameters.map(Double.init), poison).map(Float.init) }
        let message = ParametersMessage(round: nextRound &- 1, step: learner.steps, degree: max(1, neighbourhood.outDegree),
                                        parameters: parameters)
        return prepared(channel: ChorusChannel.model, bytes: message.encoded())
    }

    /// An insider's values (`PeerSettings.poison`), drawn from this peer's generator.
    private mutating func poisoned(_ values: [Double], _ poison: Poison) -> [Double] {
        switch poison {
        case .huge: return [Double](repeating: 1e30, count: values.count)
        case .random: return values.map { _ in Double.random(in: -1000...1000, using: &rng) }
        }
    }

    /// An object ready to send: its id from this peer's generator (so a seed replays it), its
    /// hash in the network key's crypto mode.
    private mutating func prepared(channel: UInt8, bytes: [UInt8]) -> PreparedObject {
        PreparedObject(channel: channel, bytes: bytes, objectID: rng.next(), mode: wire.cryptoMode)
    }

    /// Hellos to every entry point; the answer (a hello back) starts a join sync. Unanswered
    /// rounds back off exponentially up to `seedRetryMaxInterval`, and never stop.
    private mutating func helloSeeds(now: Double, into out: inout [PeerDirective]) {
        guard !entryPoints.isEmpty else { nextSeedHelloAt = .infinity; return }
        nextSeedHelloAt = now + seedRetryGap
        seedRetryGap = min(seedRetryGap * 2, settings.seedRetryMaxInterval)
        for address in entryPoints { emit([wire.hello(at: address, now: now)], to: address, peer: nil, into: &out) }
    }

    /// Once joined, a hello every `entryPointRecallInterval` to each entry point that is not a live
    /// member. Two sides of a partition that outlasted the tombstones have forgotten each other,
    /// and nothing else brings them back: a 10-peer network started at 60 % loss split in two
    /// islands for good (`chorus simulate --peers 10 --task membership --bootstrap join --loss
    /// 0.6 --liveness 60 --seed 9`). The hello makes the entry point exchange views with us.
    private mutating func recallEntryPoints(now: Double, into out: inout [PeerDirective]) {
        nextEntryPointRecallAt = now + settings.entryPointRecallInterval
        let live = Set(membership.liveMembers.compactMap { membership.address(of: $0) })
        let missing = entryPoints.filter { !live.contains($0) }
        guard !missing.isEmpty else { return }
        for address in missing { emit([wire.hello(at: address, now: now)], to: address, peer: nil, into: &out) }
    }

    /// Seals `item` for `peer` (with a hello first when there is no session yet), counts its
    /// payload by channel, and hands the datagrams to the shell, at `destination`.
    private mutating func send(_ item: Outgoing, to peer: PeerID, at address: PeerAddress, now: Double, into out: inout [PeerDirective]) {
        guard let address = destination(of: peer, named: address) else { return count("send.unproven") }
        traffic.payloadSentByChannel[item.channel] += item.byteCount
        emit(wire.send(item, to: peer, at: address, now: now), to: address, peer: peer, channel: item.channel, into: &out)
    }

    /// Where to send `peer` what is addressed to `address` (its claim's, usually): there if it
    /// has proved that it receives there, or has proved no address yet (the datagram layer then
    /// sends only hellos until it has); else where it did prove it receives. A member's claim
    /// names its address, and an insider that proved its own could name a third party's:
    /// members sent that party everything they send a member (the issue measured 662 KB in
    /// 20 s for 2.1 KB). WireGuard, too, sends to where a peer's authenticated datagrams came from.
    private func destination(of peer: PeerID, named address: PeerAddress) -> PeerAddress? {
        guard wire.isConfirmed(peer), !wire.isProven(peer, at: address) else { return address }
        guard let elsewhere = provedElsewhere[peer], wire.isProven(peer, at: elsewhere) else { return nil }
        return elsewhere
    }

    private mutating func emit(_ datagrams: [[UInt8]], to address: PeerAddress, peer: PeerID?, channel: UInt8? = nil,
                               into out: inout [PeerDirective]) {
        guard !datagrams.isEmpty else { return }
        traffic.datagramsSent += datagrams.count
        for d in datagrams { traffic.bytesSent += d.count }
        out.append(.send(datagrams, to: address, peer: peer, channel: channel))
    }
}

extension MembershipEvent {
    /// Whether the set of live members (and so the neighbourhood) may have changed.
    public var changesLiveSet: Bool {
        switch self {
        case .joined, .failed, .left, .removed, .revoked: return true
        case .suspected, .refuted, .addressChanged, .refutedAccusation, .laterSelf, .rebooted: return false
        }
    }
}
