import ChorusCrypto
import HashTreeCollections
import HeapModule

/// SWIM with Lifeguard for one peer, as a pure state machine: no sockets, no clocks, no global
/// randomness. Every handler takes the time (`now`, seconds on a monotonic clock) and a random
/// generator, and returns directives (messages to send, events); `nextDeadline` says when to call
/// `tick` next. A real peer and the simulator drive the very same code.
///
/// Mechanisms (see docs/membership.md): probes in shuffled round-robin order; ping, then ping
/// requests through `indirectChecks` members that answer with acks or nacks; suspicion with
/// incarnation numbers, refuted only by the suspect; failure after a suspicion timeout that
/// shrinks with independent confirmations; claims piggybacked least-sent first with a retransmit
/// limit growing with log n, plus periodic gossip pushes; Lifeguard's local health stretching
/// this peer's own probe interval and timeout; the suspect told it is suspected (buddy system);
/// periodic anti-entropy syncs (also the join path); tombstones that expire.
public struct MembershipInstance: Sendable {
    public let settings: MembershipSettings
    public let me: PeerID
    public private(set) var address: String
    public private(set) var incarnation: UInt64
    /// Every member this peer knows, by id. Written only through `store` and `forget`, which keep
    /// the two indexes below in step, so no hot path scans all members. A hash tree rather than a
    /// `Dictionary`: copies share their nodes and a change copies one path, so a simulation's
    /// peers share the view they start from (`preload(sharing:now:)`): 4096 peers 5.4 → 3.7 GB.
    public private(set) var members = TreeDictionary<PeerID, Member>()
    /// Counts every change to `members`: a checker re-reads the view only when it moved.
    public private(set) var memberChanges: UInt64 = 0
    /// Live members other than this peer, sorted (deterministic random picks without re-sorting);
    /// updated only when a member's liveness changes.
    private var liveIDs: [PeerID] = [] { didSet { timersDeadline = nil } }
    /// Failed and left members, with when they became so: the tombstones `tick` expires.
    private(set) var tombstones: [PeerID: Double] = [:] { didSet { timersDeadline = nil } }
    /// Set while `preload` applies a whole view: the live index is rebuilt once at the end.
    private var bulkLoading = false
    /// XOR of `entryHash` over the live members: the view's digest without this peer's own entry.
    private var othersDigest: UInt64 = 0
    /// XOR of `syncHash` (id and boot epoch) over the live members: `digest` without this peer.
    private var othersSyncDigest: UInt64 = 0
    /// Lifeguard's local health multiplier: 0 (healthy) … settings.maxLocalHealth.
    public private(set) var localHealth = 0
    public private(set) var isLeaving = false
    public private(set) var rejections: [ClaimRejection: Int] = [:]
    public private(set) var stats = Stats()

    public struct Stats: Sendable, Equatable {
        public var probes = 0
        public var failedProbes = 0
        public var indirectProbes = 0
        public var directRetries = 0
        public var suspicionsRaised = 0
        public var failuresDeclared = 0
        public var refutations = 0
        public var messagesSent = 0
        public var pausesDetected = 0
    }

    private let key: SigningKey
    private let verifier: ClaimVerifier
    /// Unix time (seconds) when `now` was 0: bounds incarnations against the wall clock.
    private let unixTimeAtZero: Double
    private var myAliveClaim: Claim

    struct Probe {
        var target: PeerID
        var sequence: UInt32
        var indirectAt: Double
        var endAt: Double
        var acked = false
        var indirectSent = false
        /// Direct retries sent so far, and when the next is due (`MembershipSettings.directRetries`).
        var retriesSent = 0
        var nextRetryAt = Double.infinity
        var nacksExpected = 0
        var relaysAsked: Set<PeerID> = []
        var relaysNacked: Set<PeerID> = []
        var nacksReceived: Int { relaysNacked.count }
        mutating func shift(by gap: Double) {
            indirectAt += gap
            nextRetryAt += gap
            endAt += gap
        }
        /// When this probe's next step is due (indirect requests, direct retries, the end of the period).
        var nextStepAt: Double {
            if acked { return endAt }
            return min(indirectSent ? nextRetryAt : indirectAt, endAt)
        }
    }

    struct Relay {
        var origin: PeerID
        var originAddress: String
        var originSequence: UInt32
        var deadline: Double
    }

    struct Suspicion {
        var startedAt: Double
        var incarnation: UInt64
        var accusers: Set<PeerID>
        /// When the last accuser was counted: a confirmation that brings the timeout below the
        /// time already waited ends the suspicion then.
        var confirmedAt: Double
        /// The timer ran out but this peer never saw the suspect fail a probe itself: it probes it
        /// next and declares only if that probe fails too.
        var verifying = false
        /// Raised by this peer from another view's verdict (a sync), not from its own failed
        /// probe: verified by a probe like any accusation we only heard of.
        var secondHand = false
    }

    struct Queued {
        var claim: Claim
        var transmits: Int
        var order: Int
    }

    /// A suspicion timer that ran out, as `PeerSimulation`'s timing check sees it: when the
    /// suspicion began (shifted by any pause, as the timer is), when its last accuser was
    /// counted, when the timer ran out, and the accusers and cluster size the timeout was
    /// computed from. The check recomputes Lifeguard's timeout from docs/membership.md on its
    /// own, so a change in how the timeout is counted (an off-by-one in the confirmations) fails
    /// the fuzz sweep, not only `SuspicionTests`.
    public struct TimerExpiry: Sendable, Equatable {
        public let subject: PeerID
        public let startedAt: Double
        public let confirmedAt: Double
        public let expiredAt: Double
        public let accusers: Int
        public let clusterSize: Int
    }

    /// The last suspicion timer that ran out, and how many have (so a checker knows a new one).
    public private(set) var lastTimerExpiry: TimerExpiry?
    public private(set) var timerExpiries = 0

    /// This round's probe order, as positions in `probeSnapshot` (then in `probeNewcomers`): 4
    /// bytes a member, not a 32-byte id. The snapshot shares `liveIDs`' storage until the live set
    /// changes, so a round no longer copies every id: at 4096 members those copies were half a
    /// gigabyte of fresh pages in the first second of a simulation.
    private var probeOrder: [UInt32] = []
    private var probeSnapshot: [PeerID] = []
    /// Members that became live during the round, after the snapshot was taken.
    private var probeNewcomers: [PeerID] = []
    private var probeIndex = 0
    /// The first round starts at a random place in its order, so peers started together do not
    /// begin (and end) their rounds together. Synchronised rounds leave a member that crashes
    /// late in a round unprobed until the next round begins: everyone has probed it already.
    private var firstRound = true
    private var probe: Probe?
    /// The member probed now and the probe's sequence number, nil between probes (for a shell's
    /// debug log: the core itself logs nothing).
    public var currentProbe: (target: PeerID, sequence: UInt32)? { probe.map { ($0.target, $0.sequence) } }
    private var nextProbeAt: Double
    private var relays: [UInt32: Relay] = [:] { didSet { timersDeadline = nil } }
    private var sequence: UInt32 = 0
    private var suspicions: [PeerID: Suspicion] = [:] { didSet { timersDeadline = nil } }
    /// The earliest relay, suspicion or tombstone deadline, nil when it must be recomputed (any
    /// change to those tables, or to the live count that scales suspicion timeouts). `nextDeadline` is read
    /// after every event a peer handles; walking both tables each time was a cache miss or two
    /// per event in a large simulation.
    private var timersDeadline: Double?
    private var queue: [PeerID: Queued] = [:]
    private var queueOrder = 0
    /// The queue in dissemination order, so taking claims never sorts the whole queue.
    private var ranking = ClaimRanking()
    /// The next gossip round. Rounds fall on a fixed grid (every `gossipInterval` from a phase
    /// set by the id); a round with nothing to send passes without a tick (`passGossipRounds`).
    private var nextGossipAt: Double
    private var nextSyncAt: Double
    private var nextReconnectAt: Double
    /// The deadline the shell was given at the end of the last call: a tick much later than it
    /// means this peer was paused or starved (see `tick`).
    private var promisedTick = Double.infinity
    private var seeds: [PeerID: String] = [:]
    private var nextJoinAttempt: Double = 0
    /// When we last answered an unknown sender with a sync (rate limit).
    private var lastStrangerSync: [PeerID: Double] = [:]
    /// Set when a claim made us refute; `receive` then announces the new incarnation.
    private var refutedAccuser: PeerID?
    /// When each member's accusations were proved false lately, and who is distrusted until
    /// when (`MembershipSettings.falseAccusationLimit`). Both are pruned as they age.
    private var falseAccusations: [PeerID: [(subject: PeerID, at: Double)]] = [:]
    private var distrusted: [PeerID: Double] = [:]
    /// Members still spreading an accusation we already refuted, told our alive claim (once per
    /// incarnation each; a missed refutation would otherwise let their timers run out).
    private var staleAccusers: Set<PeerID> = []
    private var informed: Set<PeerID> = []
    /// Suspects whose timer ran out here: probed before the round-robin order continues.
    private var verifyNext: [PeerID] = []

    public init(key: SigningKey, address: String, incarnation: UInt64, settings: MembershipSettings,
                now: Double, unixTimeAtZero: Double, verifier: ClaimVerifier = ClaimVerifier()) {
        precondition(settings.problems().isEmpty, "invalid MembershipSettings: \(settings.problems())")
        self.settings = settings
        self.key = key
        self.me = key.peerID
        self.address = address
        self.incarnation = incarnation
        self.verifier = verifier
        self.unixTimeAtZero = unixTimeAtZero
        self.myAliveClaim = Claim.make(.alive, subject: key.peerID, incarnation: incarnation, address: address, key: key)
        // Spread the phase of probes and gossip by id: peers started together must not all probe
        // on the same instants.
        let phase = Double(UInt32(key.peerID.leadingWord >> 32)) / Double(UInt32.max)
        self.nextProbeAt = now + settings.probeInterval * (1 + phase)
        self.nextGossipAt = now + settings.gossipInterval * (1 + phase)
        self.nextSyncAt = now + settings.syncInterval
        self.nextReconnectAt = now + settings.reconnectInterval * (1 + phase)
    }

    // MARK: Views

    /// Where the members tree's root node is: the first heap memory a message or probe reads (a
    /// simulator prefetches it; `PeerInstance.memoryHints`).
    public func memoryHints(_ body: (UnsafeRawPointer, Int) -> Void) {
        Swift.withUnsafeBytes(of: members) { $0.load(as: UnsafeRawPointer?.self).map { body($0, 128) } }
    }

    /// Members that are alive or suspect, plus this peer: the set neighbourhoods are computed from.
    public var liveMembers: [PeerID] { [me] + liveIDs }
    public func status(of peer: PeerID) -> MemberStatus? { peer == me ? (isLeaving ? .left : .alive) : members[peer]?.status }
    /// The address a member's latest claim names (nil for strangers and empty addresses).
    public func address(of peer: PeerID) -> String? {
        guard let address = members[peer]?.address, !address.isEmpty else { return nil }
        return address
    }
    /// Whether this peer's suspicion timer for `peer` ran out and it is probing it before declaring.
    func isVerifying(_ peer: PeerID) -> Bool { suspicions[peer]?.verifying ?? false }
    func isVerifyingNext(_ peer: PeerID) -> Bool { verifyNext.contains(peer) }
    /// Probes left in this round, and whether `peer` is among them (tests).
    var probesLeftInRound: Int { max(0, probeOrder.count - probeIndex) }
    func isDueThisRound(_ peer: PeerID) -> Bool { (probeIndex..<probeOrder.count).contains { probeID(at: $0) == peer } }
    /// n for the protocol's formulas: live members including this peer.
    var clusterSize: Int { 1 + liveIDs.count }
    /// Live members including this peer (`liveMembers.count` without building the array).
    public var liveMemberCount: Int { clusterSize }
    public var pendingClaims: Int { queue.count }
    /// When the next gossip round falls (it ticks only with claims queued).
    var nextGossipRound: Double { nextGossipAt }

    /// When `tick` must run next (the shell may call it more often).
    public var nextDeadline: Double {
        var t = nextSyncAt
        if !queue.isEmpty { t = min(t, nextGossipAt) }
        if !isLeaving { t = min(t, nextProbeAt) }
        if let step = probe?.nextStepAt { t = min(t, step) }
        t = min(t, timersDeadline ?? earliestTimer())
        if !seeds.isEmpty { t = min(t, nextJoinAttempt) }
        if !tombstones.isEmpty { t = min(t, nextReconnectAt) }
        return t
    }

    /// The earliest relay nack, suspicion timeout or tombstone expiry (see `timersDeadline`).
    private func earliestTimer() -> Double {
        var t = Double.infinity
        for since in tombstones.values { t = min(t, since + settings.tombstoneTimeout) }
        for relay in relays.values { t = min(t, relay.deadline) }
        for (peer, s) in suspicions where !s.verifying {
            t = min(t, s.startedAt + suspicionTimeout(confirmations: s.accusers.count - 1, for: peer))
        }
        return t
    }

    /// Caches `earliestTimer()` at the end of every public mutating call, and notes the
    /// deadline the shell now has. A deadline already past (a timer left stale while idle, such
    /// as `nextReconnectAt` before the first tombstone) is a tick due now, not a promise made
    /// in the past: taking it as one made the first tombstone after a quiet minute look like a
    /// minute-long pause, and the peer shifted its probes a minute ahead (the detection tail
    /// of issue 19).
    private mutating func cacheTimers(now: Double) {
        if timersDeadline == nil { timersDeadline = earliestTimer() }
        promisedTick = max(nextDeadline, now)
    }

    /// Moves `nextGossipAt` to the first round on its grid after `now`. Rounds with an empty
    /// queue are skipped this way rather than ticked (they were most of a large network's
    /// events); a claim queued between rounds still waits for the next round, as if every
    /// round had ticked.
    private mutating func passGossipRounds(upTo now: Double) {
        guard nextGossipAt <= now else { return }
        nextGossipAt += (((now - nextGossipAt) / settings.gossipInterval).rounded(.down) + 1) * settings.gossipInterval
    }

    // MARK: Joining and leaving

    /// Starts from a known view without gossiping it (a simulation's steady state, or tests).
    public mutating func preload(_ claims: [Claim], now: Double) {
        defer { cacheTimers(now: now) }
        bulkLoading = true
        for claim in claims { _ = apply(claim, now: now) }
        bulkLoading = false
        liveIDs = members.values.filter(\.isLive).map(\.id).sorted()
        endPreload()
    }

    /// The same start as `preload` with `other`'s view (and `other` itself), sharing its tree of
    /// members: a simulation's peers all start from one view, and a shared tree keeps n views in
    /// little more than the memory of one (a change copies only the path to the member changed).
    public mutating func preload(sharing other: MembershipInstance, now: Double) {
        defer { cacheTimers(now: now) }
        precondition(members.isEmpty && other.tombstones.isEmpty, "preload(sharing:) starts an empty view from a steady one")
        (members, othersDigest, othersSyncDigest, liveIDs) = (other.members, other.othersDigest, other.othersSyncDigest, other.liveIDs)
        // Two changes, kept in step with the indexes as any other; endPreload then drops what
        // they queued for gossip and for the probe order.
        _ = apply(other.myAliveClaim, now: now)
        forget(me)
        endPreload()
    }

    private mutating func endPreload() {
        queue.removeAll()
        ranking.removeAll()
        (probeOrder, probeSnapshot, probeNewcomers) = ([], [], [])  // reshuffled (with the caller's randomness) at the first probe
        (probeIndex, firstRound) = (0, true)
    }

    /// Contacts a seed (its id learned from the datagram layer's hello): sends our view and asks
    /// for theirs. Repeated every second until some sync answer arrives.
    public mutating func join(seed: PeerID, address seedAddress: String, now: Double) -> [MembershipDirective] {
        defer { cacheTimers(now: now) }
        if queue.isEmpty { passGossipRounds(upTo: now) }
        guard seed != me else { return [] }
        seeds[seed] = seedAddress
        nextJoinAttempt = now + settings.joinRetryInterval
        // Announce ourselves on every message we send from now on, not only through the seed.
        if queue[me] == nil { enqueue(myAliveClaim) }
        return [send(.sync(isResponse: false, claims: fullState()), to: seed, address: seedAddress)]
    }

    /// Graceful leave: announce a signed "left" claim directly to up to `announceFanout` members and
    /// by gossip; probing stops. The shell keeps the instance running briefly to spread it.
    public mutating func leave(now: Double, rng: inout some RandomNumberGenerator) -> [MembershipDirective] {
        defer { cacheTimers(now: now) }
        if queue.isEmpty { passGossipRounds(upTo: now) }
        guard !isLeaving else { return [] }
        isLeaving = true
        probe = nil
        let claim = Claim.make(.left, subject: me, incarnation: incarnation, key: key)
        enqueue(claim)
        var out: [MembershipDirective] = []
        for target in randomLiveMembers(count: settings.announceFanout, excluding: [], rng: &rng) {
            let others = takeClaims(budget: settings.maxMessageBytes - 3 - claim.encodedSize).filter { $0.subject != me }
            out.append(send(.gossip(claims: [claim] + others), to: target.id, address: target.address))
        }
        return out
    }

    // MARK: Timers

    public mutating func tick(now: Double, rng: inout some RandomNumberGenerator) -> [MembershipDirective] {
        defer { cacheTimers(now: now) }
        var out: [MembershipDirective] = []
        let lateness = now - promisedTick
        if lateness > settings.probeInterval {
            // Ticked a probe interval or more after the deadline we gave: this peer was paused or
            // starved, and timers that ran out meanwhile say nothing about the others. Shift them
            // (Lifeguard's spirit: a slow node must not accuse healthy ones).
            stats.pausesDetected += 1
            shiftDeadlines(by: lateness)
            adjustHealth(+1)
        }
        if !seeds.isEmpty && now >= nextJoinAttempt {
            nextJoinAttempt = now + settings.joinRetryInterval
            for seed in seeds.keys.sorted() { out.append(send(.sync(isResponse: false, claims: fullState()), to: seed, address: seeds[seed]!)) }
        }
        if !isLeaving { out += runProbe(now: now, rng: &rng) }
        if now >= timersDeadline ?? earliestTimer() {  // something is due: only then sort both tables
            for seq in relays.keys.sorted() where now >= relays[seq]!.deadline {
                let relay = relays.removeValue(forKey: seq)!
                out.append(send(.nack(sequence: relay.originSequence, claims: takeClaims(budget: budget(for: .nack(sequence: 0, claims: [])))),
                                to: relay.origin, address: relay.originAddress))
            }
            for peer in suspicions.keys.sorted() {
                guard let s = suspicions[peer], !s.verifying,
                      now >= s.startedAt + suspicionTimeout(confirmations: s.accusers.count - 1, for: peer) else { continue }
                lastTimerExpiry = TimerExpiry(subject: peer, startedAt: s.startedAt, confirmedAt: s.confirmedAt, expiredAt: now, accusers: s.accusers.count, clusterSize: clusterSize)
                timerExpiries += 1
                if s.accusers.contains(me) && !s.secondHand && s.accusers.count > 1 {
                    out += declareFailed(peer, incarnation: s.incarnation, now: now, rng: &rng)
                } else {
                    // Only ever declare what we saw ourselves: a refutation that missed us must not
                    // become a false failure. A real crash fails that probe and runProbe declares it.
                    // A lone accusation of our own is verified the same way: its gossip may all have
                    // gone into a partition, so the suspect never heard it and could not refute, and
                    // the verifying ping carries the accusation to it (fuzz seed 1252 of version 4).
                    suspicions[peer]!.verifying = true
                    verifyNext.append(peer)
                }
            }
        }
        if now >= nextGossipAt {
            passGossipRounds(upTo: now)
            if !queue.isEmpty {
                for target in randomLiveMembers(count: settings.gossipFanout, excluding: [], rng: &rng) {
                    let claims = takeClaims(budget: settings.maxMessageBytes - 3)
                    if claims.isEmpty { break }
                    out.append(send(.gossip(claims: claims), to: target.id, address: target.address))
                }
            }
        }
        if now >= nextSyncAt {
            nextSyncAt = now + settings.syncInterval * Double.random(in: 0.8...1.2, using: &rng)
            if let target = syncTarget(rng: &rng) {
                // A digest first: equal views (the usual case) cost one datagram, not a whole view.
                out.append(sendDigest(to: target))
            }
        }
        if !tombstones.isEmpty && now >= nextReconnectAt {
            let interval = max(settings.reconnectInterval, Double(clusterSize) / 8)
            nextReconnectAt = now + interval * Double.random(in: 0.8...1.2, using: &rng)
            let failed = failedMembers
            if !isLeaving && !failed.isEmpty {
                out.append(sendDigest(to: Contact(failed[Int.random(in: 0..<failed.count, using: &rng)])))
            }
        }
        if !tombstones.isEmpty && now >= timersDeadline ?? earliestTimer() {
            for peer in tombstones.keys.sorted() where tombstones[peer]! + settings.tombstoneTimeout <= now {  // as in earliestTimer
                forget(peer)
                queue[peer] = nil
                out.append(.event(.removed(peer)))
            }
        }
        return out
    }

    private mutating func runProbe(now: Double, rng: inout some RandomNumberGenerator) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        if var p = probe {
            guard advance(&p, now: now, rng: &rng, into: &out) else {
                probe = p
                return out
            }
            probe = nil
            out += probeEnded(p, now: now, rng: &rng)
        }
        guard now >= nextProbeAt, let (id, member) = nextProbeTarget(rng: &rng) else {
            if now >= nextProbeAt { nextProbeAt = now + scaled(settings.probeInterval) }
            return out
        }
        let (target, buddies) = pingTarget(id, member)
        sequence &+= 1
        let period = scaled(settings.probeInterval)
        probe = Probe(target: target.id, sequence: sequence, indirectAt: now + scaled(settings.probeTimeout), endAt: now + period)
        nextProbeAt = now + period
        stats.probes += 1
        out.append(send(withClaims(.ping(sequence: sequence, claims: buddies)), to: target.id, address: target.address))
        return out
    }

    /// Moves a probe on: indirect requests once its timeout passed, direct retries spread over
    /// what is left of the period. Returns whether its period is over.
    private mutating func advance(_ p: inout Probe, now: Double, rng: inout some RandomNumberGenerator,
                                  into out: inout [MembershipDirective]) -> Bool {
        if !p.acked && !p.indirectSent && now >= p.indirectAt {
            p.indirectSent = true
            p.nextRetryAt = settings.directRetries > 0 ? now : .infinity
            if let target = members[p.target] {
                let relays = randomRelays(for: p.target, rng: &rng)
                p.nacksExpected = relays.count
                p.relaysAsked = Set(relays.map(\.id))
                stats.indirectProbes += 1
                for relay in relays {
                    let message = MembershipMessage.pingRequest(sequence: p.sequence, target: p.target, address: target.address, claims: [])
                    out.append(send(withClaims(message), to: relay.id, address: relay.address))
                }
            }
        }
        if !p.acked && p.indirectSent && now >= p.nextRetryAt && now < p.endAt {
            p.retriesSent += 1
            stats.directRetries += 1
            // The first retry goes with the indirect requests; the rest split what is left of the period.
            let spacing = (p.endAt - p.indirectAt) / Double(settings.directRetries)
            p.nextRetryAt = p.retriesSent < settings.directRetries ? p.indirectAt + Double(p.retriesSent) * spacing : .infinity
            if let member = members[p.target] {
                let (target, buddies) = pingTarget(p.target, member)
                out.append(send(withClaims(.ping(sequence: p.sequence, claims: buddies)), to: target.id, address: target.address))
            }
        }
        return now >= p.endAt
    }

    /// A probe's period is over: unanswered, the target is suspected (and declared, when this
    /// probe was verifying a suspicion whose timer ran out).
    private mutating func probeEnded(_ p: Probe, now: Double, rng: inout some RandomNumberGenerator) -> [MembershipDirective] {
        guard !p.acked else { return [] }
        stats.failedProbes += 1
        // Lifeguard: a failed probe, and every nack that did not come, count against our own
        // health. A failed probe of a member someone else already suspects (or another view
        // holds failed) is corroborated, not a hint that we are slow, and is not charged: after
        // a mass crash, charging it stretched every prober's period just when the crashed
        // members needed probing. (memberlist charges only missing nacks; that shortened the
        // crash tail but raised false failures under 20–30 % loss.)
        let corroborated = suspicions[p.target].map { s in s.secondHand || s.accusers.contains { $0 != me } } ?? false
        adjustHealth((corroborated ? 0 : 1) + max(0, p.nacksExpected - p.nacksReceived))
        guard let target = members[p.target], target.isLive else { return [] }
        var out = suspect(p.target, incarnation: target.incarnation, now: now)
        suspicions[p.target]?.secondHand = false  // now we saw it fail ourselves
        if let s = suspicions[p.target], s.verifying {
            out += declareFailed(p.target, incarnation: s.incarnation, now: now, rng: &rng)
        }
        return out
    }

    /// Where to ping a member and the claims to put on the ping.
    private func pingTarget(_ id: PeerID, _ member: Member) -> (Contact, [Claim]) {
        (Contact(id: id, address: member.address), Self.buddyClaims(for: member))
    }

    /// Buddy system: a suspect hears about its suspicion first, so it can refute at once.
    private static func buddyClaims(for target: Member) -> [Claim] {
        if target.status == .suspect, let claim = target.statusClaim { return [claim] }
        return []
    }

    /// The next member to probe, with its entry.
    private mutating func nextProbeTarget(rng: inout some RandomNumberGenerator) -> (PeerID, Member)? {
        while !verifyNext.isEmpty {
            let id = verifyNext.removeFirst()
            if let m = members[id], m.status == .suspect { return (id, m) }
        }
        for _ in 0..<2 {
            while probeIndex < probeOrder.count {
                let id = probeID(at: probeIndex)
                probeIndex += 1
                if let m = members[id], m.isLive { return (id, m) }
            }
            // One pass done: reshuffle, so every member is probed once per round in random order.
            (probeSnapshot, probeNewcomers) = (liveIDs, [])
            probeOrder = Array(0..<UInt32(liveIDs.count))
            probeOrder.shuffle(using: &rng)
            probeIndex = firstRound && !probeOrder.isEmpty ? Int.random(in: 0..<probeOrder.count, using: &rng) : 0
            firstRound = false
            if probeOrder.isEmpty { return nil }
        }
        return nil
    }

    private mutating func shiftDeadlines(by gap: Double) {
        probe?.shift(by: gap)
        nextProbeAt += gap
        for seq in relays.keys { relays[seq]!.deadline += gap }
        for peer in suspicions.keys { suspicions[peer]!.startedAt += gap }
    }

    private mutating func adjustHealth(_ delta: Int) {
        localHealth = min(settings.maxLocalHealth, max(0, localHealth + delta))
    }

    private func scaled(_ seconds: Double) -> Double { seconds * Double(1 + localHealth) }

    /// Lifeguard's dynamic suspicion timeout: starts at the maximum and falls towards the minimum
    /// as independent accusers confirm (memberlist's formula):
    /// max − (max − min) · ln(c + 1) / ln(k + 1), never below min.
    func suspicionTimeout(confirmations c: Int, for peer: PeerID) -> Double {
        let n = Double(clusterSize)
        let minimum = settings.suspicionMultiplier * max(1, log10(max(n, 1))) * settings.probeInterval
        let maximum = settings.suspicionMaxMultiplier * minimum
        var k = settings.expectedConfirmations
        if clusterSize - 2 < k { k = 0 }
        guard k > 0 else { return minimum }
        let fraction = log(Double(max(0, c) + 1)) / log(Double(k + 1))
        return max(minimum, maximum - (maximum - minimum) * fraction)
    }

    // MARK: Messages

    public mutating func receive(_ message: MembershipMessage, from sender: PeerID, address source: String,
                                 now: Double, rng: inout some RandomNumberGenerator) -> [MembershipDirective] {
        defer { cacheTimers(now: now) }
        if queue.isEmpty { passGossipRounds(upTo: now) }
        var out: [MembershipDirective] = []
        let stranger = sender != me && members[sender] == nil
        if message.isBulk {
            out += merge(view: message.claims, now: now)
        } else {
            for claim in message.claims { out += apply(claim, now: now) }
        }
        if let accuser = refutedAccuser {
            refutedAccuser = nil
            informed = [accuser, sender]
            out += announceRefutation(accuser: accuser, messenger: sender, rng: &rng)
        }
        // The sender's entry after the claims, looked up once: nothing below changes `members`.
        let senderEntry = members[sender]
        let failedVerdict = senderEntry.flatMap { m in m.status == .failed ? m.statusClaim.map { (claim: $0, address: m.address) } : nil }
        if let failedVerdict, !isLeaving, now - (lastStrangerSync[sender] ?? -.infinity) >= settings.strangerSyncInterval {
            // A member we hold failed talks to us (a healed partition, a peer that was paused):
            // tell it, so it refutes with a higher incarnation, which is what revives it here.
            lastStrangerSync[sender] = now
            let address = failedVerdict.address
            out.append(send(.gossip(claims: [failedVerdict.claim]), to: sender, address: address.isEmpty ? source : address))
        }
        if !staleAccusers.isEmpty {
            for peer in staleAccusers.union([sender]).sorted() where !informed.contains(peer) {
                guard let m = members[peer], m.isLive else { continue }
                informed.insert(peer)
                out.append(send(.gossip(claims: [myAliveClaim]), to: peer, address: m.address))
            }
            staleAccusers = []
        }
        let replyAddress = senderEntry?.address ?? source
        // Someone talks to us whom our view does not hold (gossip about it missed us): exchange
        // views with it now rather than at the next anti-entropy round. At most every strangerSyncInterval per peer.
        var answeredStranger = false
        if stranger && senderEntry == nil && !isLeaving && !message.isBulk,
           now - (lastStrangerSync[sender] ?? -.infinity) >= settings.strangerSyncInterval {
            answeredStranger = true
            lastStrangerSync[sender] = now
            if lastStrangerSync.count > settings.strangersRemembered { lastStrangerSync.removeAll() }
            out.append(send(.sync(isResponse: false, claims: fullState()), to: sender, address: source))
        }
        switch message {
        case let .ping(seq, _):
            out.append(send(withClaims(.ack(sequence: seq, claims: [])), to: sender, address: replyAddress))
        case let .ack(seq, _):
            if var p = probe, p.sequence == seq, !p.acked {
                p.acked = true
                probe = p
                adjustHealth(-1)
                if suspicions[p.target]?.verifying == true {
                    // Alive after all: give its refutation (already on its way) a fresh timeout.
                    suspicions[p.target]!.verifying = false
                    suspicions[p.target]!.startedAt = now
                }
            } else if let relay = relays.removeValue(forKey: seq) {
                out.append(send(withClaims(.ack(sequence: relay.originSequence, claims: [])), to: relay.origin, address: relay.originAddress))
            }
        case let .pingRequest(seq, target, targetAddress, _):
            guard target != me else {
                out.append(send(withClaims(.ack(sequence: seq, claims: [])), to: sender, address: replyAddress))
                break
            }
            sequence &+= 1
            // Nack a little before our own probe timeout: the asker sent its request at its probe
            // timeout and closes the period at the probe interval, so a full timeout here would
            // always land too late to count (memberlist has the same trap).
            relays[sequence] = Relay(origin: sender, originAddress: replyAddress, originSequence: seq, deadline: now + settings.relayNackFraction * settings.probeTimeout)
            let (contact, first) = members[target].map { pingTarget(target, $0) } ?? (Contact(id: target, address: targetAddress), [])
            out.append(send(withClaims(.ping(sequence: sequence, claims: first)), to: target, address: contact.address))
        case let .nack(seq, _):
            // One nack per relay we asked: duplicates or strangers cannot hide a missing one.
            if var p = probe, p.sequence == seq, p.relaysAsked.contains(sender) {
                p.relaysNacked.insert(sender)
                probe = p
            }
        case .gossip:
            break
        case let .digest(theirs, _):
            if theirs != digest && !isLeaving && !answeredStranger {
                out.append(send(.sync(isResponse: false, claims: fullState()), to: sender, address: replyAddress))
            }
        case let .sync(isResponse, _):
            // An answer to a sync we sent means we are connected. A request does not: a newcomer
            // joining through us knows no more than we do, and taking its request for an answer
            // stopped our own join, leaving newcomers that joined through each other an island
            // (fuzz seed 1005 of generator version 6).
            if isResponse { seeds = [:] }
            if !isResponse {
                out.append(send(.sync(isResponse: true, claims: fullState()), to: sender, address: replyAddress))
            }
        }
        return out
    }

    // MARK: Claims

    /// Applies one claim (from any message or sync) and returns the resulting events.
    mutating func apply(_ claim: Claim, now: Double) -> [MembershipDirective] {
        let ceiling = (UInt64(max(0, unixTimeAtZero + now + settings.maxIncarnationLeadSeconds)) << 16) | 0xFFFF
        guard claim.incarnation <= ceiling else { return reject(.absurdIncarnation) }
        if claim.subject == me { return applyAboutMe(claim, now: now) }
        let existing = members[claim.subject]
        if let existing {
            // Cheap staleness check before any signature work.
            if claim.incarnation < existing.incarnation { return [] }
            if claim.incarnation == existing.incarnation && claim.status <= existing.status && !(claim.status == .suspect && existing.status == .suspect) {
                return []
            }
        }
        guard verifier.isValid(claim) else { return reject(.badSignature) }

        switch claim.status {
        case .alive:
            if let m = existing, claim.incarnation <= m.incarnation { return [] }
            let wasLive = existing?.isLive ?? false
            let wasSuspect = existing?.status == .suspect
            let rebooted = existing.map { claim.incarnation >> 16 > $0.incarnation >> 16 } ?? false
            if let m = existing, !rebooted {
                // Alive again in the same boot: whoever held it suspect or failed was wrong.
                var wrong = suspicions[claim.subject]?.accusers ?? []
                if m.status == .failed, let accuser = m.statusClaim?.accuser { wrong.insert(accuser) }
                for accuser in wrong where accuser != me { chargeFalseAccusation(by: accuser, about: claim.subject, now: now) }
            }
            store(Member(incarnation: claim.incarnation, status: .alive, aliveClaim: claim, statusClaim: nil), as: claim.subject, now: now)
            suspicions[claim.subject] = nil
            enqueue(claim)
            var out: [MembershipDirective] = rebooted ? [.event(.rebooted(claim.subject, epoch: claim.incarnation >> 16))] : []
            if !wasLive {
                if !bulkLoading { insertIntoProbeOrder(claim.subject) }  // preload resets the order
                return out + [.event(.joined(claim.subject, address: claim.address))]
            }
            if wasSuspect { out.append(.event(.refuted(claim.subject))) }
            if existing?.address != claim.address { out.append(.event(.addressChanged(claim.subject, address: claim.address))) }
            return out
        case .left:
            if var m = existing {
                guard m.status != .left || claim.incarnation > m.incarnation else { return [] }
                m.status = .left
                m.incarnation = claim.incarnation
                m.statusClaim = claim
                store(m, as: claim.subject, now: now)
            } else {
                // A tombstone, so an older alive claim arriving late cannot bring it back.
                store(Member(incarnation: claim.incarnation, status: .left, aliveClaim: nil, statusClaim: claim), as: claim.subject, now: now)
            }
            suspicions[claim.subject] = nil
            enqueue(claim)
            return existing.map { $0.status == .left ? [] : [.event(.left(claim.subject))] } ?? []
        case .suspect, .failed:
            guard var m = existing else { return reject(.unknownSubject) }
            guard claim.incarnation == m.incarnation else { return reject(.unannouncedIncarnation) }
            guard m.isLive else { return [] }
            if let until = distrusted[claim.accuser!] {
                if now < until { return reject(.distrustedAccuser) }
                distrusted[claim.accuser!] = nil
            }
            if claim.status == .failed {
                m.status = .failed
                m.statusClaim = claim
                store(m, as: claim.subject, now: now)
                suspicions[claim.subject] = nil
                enqueue(claim)
                return [.event(.failed(claim.subject))]
            }
            let accuser = claim.accuser!
            if m.status == .suspect {
                // An independent confirmation shortens the timeout; pass it on.
                guard var s = suspicions[claim.subject], !s.accusers.contains(accuser) else { return [] }
                s.accusers.insert(accuser)
                s.confirmedAt = now
                suspicions[claim.subject] = s
                enqueue(claim)
                return []
            }
            m.status = .suspect
            m.statusClaim = claim
            store(m, as: claim.subject, now: now)
            suspicions[claim.subject] = Suspicion(startedAt: now, incarnation: claim.incarnation, accusers: [accuser], confirmedAt: now)
            enqueue(claim)
            if accuser != me && probesSuspectAtOnce(claim.subject, incarnation: claim.incarnation) { verifyNext.append(claim.subject) }
            return [.event(.suspected(claim.subject, by: accuser))]
        }
    }

    /// Records that `accuser` accused `subject`, which proved alive; past the limit about one
    /// subject within the window, its accusations are ignored for `distrustSeconds`.
    private mutating func chargeFalseAccusation(by accuser: PeerID, about subject: PeerID, now: Double) {
        let window = settings.falseAccusationWindow
        var recent = (falseAccusations[accuser] ?? []).filter { now - $0.at < window }
        recent.append((subject, now))
        if recent.filter({ $0.subject == subject }).count >= settings.falseAccusationLimit {
            distrusted[accuser] = now + settings.distrustSeconds
            recent = []
        }
        falseAccusations[accuser] = recent.isEmpty ? nil : recent
        // Keep the tables to members that accused lately.
        if falseAccusations.count > 1024 { falseAccusations = falseAccusations.filter { $0.value.contains { now - $0.at < window } } }
        if distrusted.count > 1024 { distrusted = distrusted.filter { $0.value > now } }
    }

    /// Applies another member's whole view (a sync). A failed verdict about a member this view
    /// held live (before this message: a view also carries the alive claim a failure follows)
    /// becomes our own suspicion, verified by our own probe, as memberlist's push-pull merge
    /// does: the member hears of it and can refute, and stays live to us (and our gossip)
    /// meanwhile. After a partition heals, taking the other side's verdicts would mark our own
    /// side failed and leave us nobody to gossip to.
    private mutating func merge(view claims: [Claim], now: Double) -> [MembershipDirective] {
        let heldLive = Set(claims.filter { $0.status == .failed && members[$0.subject]?.isLive == true }.map(\.subject))
        var out: [MembershipDirective] = []
        for claim in claims {
            guard claim.status == .failed, heldLive.contains(claim.subject), let m = members[claim.subject], m.isLive,
                  m.incarnation == claim.incarnation else {
                out += apply(claim, now: now)
                continue
            }
            if m.status == .alive {
                out += suspect(claim.subject, incarnation: claim.incarnation, now: now)
                suspicions[claim.subject]?.secondHand = true
            }
        }
        return out
    }

    private mutating func applyAboutMe(_ claim: Claim, now: Double) -> [MembershipDirective] {
        switch claim.status {
        case .alive, .left:
            // Our own statements from an earlier boot or round: nothing to do. One above our own
            // incarnation was signed with our key by a later boot: another process has our identity.
            if claim.incarnation > incarnation && verifier.isValid(claim) {
                return [.event(.laterSelf(address: claim.address, incarnation: claim.incarnation))]
            }
            return []
        case .suspect, .failed:
            guard !isLeaving else { return [] }
            guard claim.incarnation >= incarnation else {
                // Already refuted, but the sender and the accuser still hold it.
                if let accuser = claim.accuser { staleAccusers.insert(accuser) }
                return []
            }
            guard verifier.isValid(claim) else { return reject(.badSignature) }
            guard claim.incarnation == incarnation else { return reject(.unannouncedIncarnation) }
            // Refute: only we can raise our incarnation, and we sign the new alive claim.
            incarnation += 1
            myAliveClaim = Claim.make(.alive, subject: me, incarnation: incarnation, address: address, key: key)
            enqueue(myAliveClaim)
            stats.refutations += 1
            adjustHealth(+1)  // Lifeguard: being suspected hints that we are the slow one
            refutedAccuser = claim.accuser
            return [.event(.refutedAccusation(incarnation: incarnation, by: claim.accuser!))]
        }
    }

    /// A refutation races the accusation's timers: the accuser's runs out first, and the others
    /// start soon after. Tell the accuser and `announceFanout` random members at once, so the
    /// epidemic starts several rounds ahead instead of from this peer alone.
    ///
    /// The accuser is told even when this peer holds it failed: it is the one member known to
    /// hold us failed, and after a partition heals each side holds the other failed, so this is
    /// how the refutation crosses over (gossip only goes to members we hold live).
    /// The messenger that brought the accusation holds it too, so it is told as well.
    private mutating func announceRefutation(accuser: PeerID, messenger: PeerID, rng: inout some RandomNumberGenerator) -> [MembershipDirective] {
        var targets = randomLiveMembers(count: settings.announceFanout, excluding: [accuser, messenger], rng: &rng)
        for peer in [messenger, accuser] where peer != me {
            if let m = members[peer], m.isLive || m.status == .failed, !m.address.isEmpty, !targets.contains(where: { $0.id == peer }) {
                targets.insert(Contact(id: peer, address: m.address), at: 0)
            }
        }
        return targets.map { send(.gossip(claims: [myAliveClaim]), to: $0.id, address: $0.address) }
    }

    /// Whether this member probes a new suspect next rather than when its round comes: true for
    /// about `suspicionProbes` of the members who hear the accusation (a hash of both ids and
    /// the incarnation, so the choice needs no randomness and differs between suspicions).
    /// Their probes are the independent confirmations Lifeguard's timeout waits for; left to
    /// the round-robin order they came about one every 1.3 s at 64 members, and a crash took
    /// most of its detection time waiting for the second and third.
    private func probesSuspectAtOnce(_ peer: PeerID, incarnation: UInt64) -> Bool {
        guard settings.suspicionProbes > 0 else { return false }
        let share = Double(settings.suspicionProbes) / Double(max(1, clusterSize - 2))
        if share >= 1 { return true }
        let draw = Self.mix(me.leadingWord ^ Self.mix(peer.leadingWord ^ Self.mix(incarnation)))
        return Double(draw >> 11) / Double(1 << 53) < share
    }

    private mutating func suspect(_ peer: PeerID, incarnation: UInt64, now: Double) -> [MembershipDirective] {
        stats.suspicionsRaised += 1
        let claim = Claim.make(.suspect, subject: peer, incarnation: incarnation, key: key)
        return apply(claim, now: now)
    }

    /// Declares a suspect failed and, like a refutation, tells `announceFanout` random members at
    /// once besides gossip: a member that missed every gossiped copy otherwise held the dead
    /// member live until its own verification or probe (the last seconds of the detection tail).
    private mutating func declareFailed(_ peer: PeerID, incarnation: UInt64, now: Double,
                                        rng: inout some RandomNumberGenerator) -> [MembershipDirective] {
        suspicions[peer] = nil
        guard let m = members[peer], m.status == .suspect, m.incarnation == incarnation else { return [] }
        stats.failuresDeclared += 1
        let claim = Claim.make(.failed, subject: peer, incarnation: incarnation, key: key)
        var out = apply(claim, now: now)
        for target in randomLiveMembers(count: settings.announceFanout, excluding: [], rng: &rng) {
            out.append(send(.gossip(claims: [claim]), to: target.id, address: target.address))
        }
        return out
    }

    private mutating func reject(_ reason: ClaimRejection) -> [MembershipDirective] {
        rejections[reason, default: 0] += 1
        return []
    }

    // MARK: Dissemination

    private mutating func enqueue(_ claim: Claim) {
        queueOrder += 1
        queue[claim.subject] = Queued(claim: claim, transmits: 0, order: queueOrder)
        ranking.push(.init(transmits: 0, order: queueOrder, subject: claim.subject))
        if ranking.count > 2 * queue.count + 64 {
            // Mostly replaced or finished entries: rebuild from the queue.
            ranking.removeAll()
            for q in queue.values { ranking.push(.init(transmits: q.transmits, order: q.order, subject: q.claim.subject)) }
        }
    }

    /// How many times each claim is sent: λ · ⌈log10(n + 1)⌉.
    var retransmitLimit: Int { settings.retransmitMultiplier * max(1, Int(log10(Double(clusterSize + 1)).rounded(.up))) }

    /// Least-sent claims first (newest first among equals) that fit in `budget` bytes.
    private mutating func takeClaims(budget: Int) -> [Claim] {
        guard !queue.isEmpty, budget > 0 else { return [] }
        var remaining = budget
        var taken: [Claim] = []
        var putBack: [ClaimRanking.Entry] = []  // not taken again in this message
        let limit = retransmitLimit
        while let entry = ranking.pop() {
            // Skip entries whose claim was replaced, finished or dropped since they were ranked.
            guard let queued = queue[entry.subject], queued.order == entry.order, queued.transmits == entry.transmits else { continue }
            let size = queued.claim.encodedSize
            guard size <= remaining else {
                putBack.append(entry)
                continue
            }
            remaining -= size
            taken.append(queued.claim)
            let transmits = queued.transmits + 1
            if transmits >= limit {
                queue[entry.subject] = nil
            } else {
                queue[entry.subject]!.transmits = transmits
                putBack.append(.init(transmits: transmits, order: entry.order, subject: entry.subject))
            }
            if remaining < 120 { break }
        }
        for entry in putBack { ranking.push(entry) }
        return taken
    }

    private func budget(for message: MembershipMessage) -> Int {
        settings.maxMessageBytes - message.headerSize - message.claims.reduce(0) { $0 + $1.encodedSize }
    }

    private mutating func withClaims(_ message: MembershipMessage) -> MembershipMessage {
        let extra = takeClaims(budget: budget(for: message))
        switch message {
        case let .ping(seq, c): return .ping(sequence: seq, claims: c + extra)
        case let .ack(seq, c): return .ack(sequence: seq, claims: c + extra)
        case let .pingRequest(seq, t, a, c): return .pingRequest(sequence: seq, target: t, address: a, claims: c + extra)
        case let .nack(seq, c): return .nack(sequence: seq, claims: c + extra)
        case let .gossip(c): return .gossip(claims: c + extra)
        case .sync: return message
        case let .digest(d, c): return .digest(d, claims: c + extra)
        }
    }

    /// Our whole view for anti-entropy: alive claims first (so accusations that follow name a
    /// known incarnation), then suspicions, failures and departures.
    public func fullState() -> [Claim] {
        var alive: [Claim] = [isLeaving ? Claim.make(.left, subject: me, incarnation: incarnation, key: key) : myAliveClaim]
        var others: [Claim] = []
        for m in members.values.sorted(by: { $0.id < $1.id }) {
            if let a = m.aliveClaim { alive.append(a) }
            if m.status != .alive, let s = m.statusClaim { others.append(s) }
        }
        return alive + others
    }

    private mutating func insertIntoProbeOrder(_ peer: PeerID) {
        // Somewhere in the rest of this round (as memberlist does), so a newcomer is probed soon.
        // The position mixes both ids: every observer puts it somewhere else, so probes of one
        // member stay spread out in time.
        var mix = peer.leadingWord ^ me.leadingWord
        mix = (mix ^ (mix >> 31)) &* 0x9E37_79B9_7F4A_7C15
        let start = min(probeIndex, probeOrder.count)
        if (start..<probeOrder.count).contains(where: { probeID(at: $0) == peer }) { return }  // still due this round
        let remaining = probeOrder.count - probeIndex + 1
        probeNewcomers.append(peer)
        probeOrder.insert(UInt32(probeSnapshot.count + probeNewcomers.count - 1), at: probeIndex + Int(mix % UInt64(max(1, remaining))))
    }

    private func probeID(at position: Int) -> PeerID {
        let i = Int(probeOrder[position])
        return i < probeSnapshot.count ? probeSnapshot[i] : probeNewcomers[i - probeSnapshot.count]
    }

    // MARK: The member indexes

    /// The anti-entropy digest: of the live members (alive and suspect, this peer included) with
    /// the boot epoch of each (its incarnation's upper bits), order-independent and kept up to
    /// date: two peers that agree on who is live, and since which boot, have the same digest,
    /// whatever order they learned it in. A restart changes it, so a peer that missed a
    /// restarted member's new alive claim is repaired by the next sync: with ids alone it kept
    /// the old incarnation for good, and refused every later claim about the new one (found by
    /// `chorus simulate fuzz --seeds 73`). Refutation counts (the lower 16 bits), suspicions and
    /// tombstones are left out on purpose: they change all the time in a large lossy network
    /// and gossip repairs them; a digest over them would make nearly every sync a full one.
    public var digest: UInt64 { isLeaving ? othersSyncDigest : othersSyncDigest ^ Self.syncHash(me, incarnation: incarnation) }

    /// One member's part of `digest`: its id's hash mixed with its boot epoch.
    static func syncHash(_ id: PeerID, incarnation: UInt64) -> UInt64 { mix(entryHash(id) ^ (incarnation >> 16)) }

    /// The digest of `liveMembers` (this peer included even while it leaves): equal to
    /// `setDigest` of a set exactly when the view is that set, but for a 2⁻⁶⁴ accident. A
    /// simulator compares every view with the truth this way in O(1) instead of O(n).
    public var liveMembersDigest: UInt64 { othersDigest ^ Self.entryHash(me) }

    /// The order-independent digest of a set of ids, as `digest` and `liveMembersDigest` keep it.
    public static func setDigest(_ ids: some Sequence<PeerID>) -> UInt64 { ids.reduce(0) { $0 ^ entryHash($1) } }

    static func entryHash(_ id: PeerID) -> UInt64 {
        var h: UInt64 = 0x243F_6A88_85A3_08D3
        id.withUnsafeBytes { raw in
            for word in 0..<4 { h = mix(h ^ raw.loadUnaligned(fromByteOffset: 8 * word, as: UInt64.self)) }
        }
        return h
    }

    private static func mix(_ x: UInt64) -> UInt64 {  // SplitMix64's finaliser
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Stores `member`, whose status changed (or was learnt) at `now`.
    private mutating func store(_ member: Member, as id: PeerID, now: Double) {
        memberChanges &+= 1
        let old = members[id]
        let wasLive = old?.isLive ?? false
        if let old, wasLive { othersSyncDigest ^= Self.syncHash(id, incarnation: old.incarnation) }
        if member.isLive { othersSyncDigest ^= Self.syncHash(id, incarnation: member.incarnation) }
        members[id] = member
        let tombstone = member.isLive ? nil : now
        if tombstones[id] != tombstone { tombstones[id] = tombstone }  // unchanged: keep timersDeadline
        if wasLive != member.isLive { liveness(of: id, changedTo: member.isLive) }
    }

    private mutating func forget(_ peer: PeerID) {
        guard let member = members.removeValue(forKey: peer) else { return }
        memberChanges &+= 1
        if member.isLive { othersSyncDigest ^= Self.syncHash(peer, incarnation: member.incarnation) }
        tombstones[peer] = nil
        if member.isLive { liveness(of: peer, changedTo: false) }
    }

    /// Keeps the digest and the sorted live index in step with one member's liveness.
    private mutating func liveness(of peer: PeerID, changedTo live: Bool) {
        othersDigest ^= Self.entryHash(peer)
        guard !bulkLoading else { return }  // preload rebuilds the index once
        let i = liveIndex(of: peer)
        if live {
            liveIDs.insert(peer, at: i)
        } else if i < liveIDs.count && liveIDs[i] == peer {
            liveIDs.remove(at: i)
        }
    }

    /// Where `peer` is or would go in the sorted `liveIDs` (binary search).
    private func liveIndex(of peer: PeerID) -> Int {
        var low = 0, high = liveIDs.count
        while low < high {
            let mid = (low + high) / 2
            if liveIDs[mid] < peer { low = mid + 1 } else { high = mid }
        }
        return low
    }

    private func isLiveOther(_ peer: PeerID) -> Bool {
        let i = liveIndex(of: peer)
        return i < liveIDs.count && liveIDs[i] == peer
    }

    /// Where to send to a member: all that gossip, relays and syncs need of it.
    struct Contact {
        var id: PeerID
        var address: String
        init(_ member: Member) { (id, address) = (member.id, member.address) }
        init(id: PeerID, address: String) { (self.id, self.address) = (id, address) }
    }

    /// The contact of a member we hold.
    private func contact(of id: PeerID) -> Contact {
        Contact(id: id, address: members[id]!.address)
    }

    private mutating func randomLiveMembers(count: Int, excluding: Set<PeerID>, rng: inout some RandomNumberGenerator) -> [Contact] {
        let available = liveIDs.count - excluding.reduce(0) { $0 + (isLiveOther($1) ? 1 : 0) }
        if available <= count {
            return liveIDs.filter { !excluding.contains($0) }.map { contact(of: $0) }
        }
        var chosen: [Int] = []
        while chosen.count < count {
            let i = Int.random(in: 0..<liveIDs.count, using: &rng)
            if !chosen.contains(i) && !excluding.contains(liveIDs[i]) { chosen.append(i) }
        }
        return chosen.map { contact(of: liveIDs[$0]) }
    }

    /// Relays for an indirect probe of `target`: live members not under suspicion, as
    /// memberlist picks them. A suspect is likely gone; its missing nack would count against
    /// our own health, and after a mass crash (a quarter of the members) that stretched most
    /// probers' periods two- or threefold just when the crashed members needed probing.
    private mutating func randomRelays(for target: PeerID, rng: inout some RandomNumberGenerator) -> [Contact] {
        guard suspicions.keys.contains(where: { $0 != target }) else {
            return randomLiveMembers(count: settings.indirectChecks, excluding: [target], rng: &rng)
        }
        var candidates = liveIDs.filter { $0 != target && members[$0]?.status == .alive }
        if candidates.count > settings.indirectChecks {
            for i in 0..<settings.indirectChecks { candidates.swapAt(i, Int.random(in: i..<candidates.count, using: &rng)) }
            candidates.removeLast(candidates.count - settings.indirectChecks)
        }
        return candidates.map { contact(of: $0) }
    }

    /// Failed members that have an address, in id order.
    private var failedMembers: [Member] {
        tombstones.keys.compactMap { members[$0] }.filter { $0.status == .failed && !$0.address.isEmpty }.sorted { $0.id < $1.id }
    }

    /// Our view's digest (and pending claims): the start of an anti-entropy exchange.
    private mutating func sendDigest(to target: Contact) -> MembershipDirective {
        send(withClaims(.digest(digest, claims: [])), to: target.id, address: target.address)
    }

    /// Usually a random live member; a `failedSyncFraction` of the time a failed one (not left), so a partition
    /// whose sides declared each other failed heals by itself.
    private mutating func syncTarget(rng: inout some RandomNumberGenerator) -> Contact? {
        let failed = failedMembers
        if !failed.isEmpty && Double.random(in: 0..<1, using: &rng) < settings.failedSyncFraction {
            return Contact(failed[Int.random(in: 0..<failed.count, using: &rng)])
        }
        return randomLiveMembers(count: 1, excluding: [], rng: &rng).first
    }

    private mutating func send(_ message: MembershipMessage, to peer: PeerID, address: String) -> MembershipDirective {
        stats.messagesSent += 1
        return .send(message, to: peer, address: address)
    }
}

/// Claims waiting to be disseminated, least-sent first and newest first among equals. Entries
/// are never updated in place; stale ones (the claim was replaced or has been sent often enough)
/// are skipped when popped.
struct ClaimRanking {
    struct Entry: Comparable {
        var transmits: Int
        var order: Int
        var subject: PeerID

        /// "Comes first": fewer transmissions, then newer (higher order).
        static func < (a: Entry, b: Entry) -> Bool { (a.transmits, -a.order) < (b.transmits, -b.order) }
        static func == (a: Entry, b: Entry) -> Bool { a.order == b.order && a.transmits == b.transmits }
    }

    private var heap = Heap<Entry>()
    var count: Int { heap.count }

    mutating func removeAll() { heap = Heap() }
    mutating func push(_ entry: Entry) { heap.insert(entry) }
    mutating func pop() -> Entry? { heap.popMin() }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
