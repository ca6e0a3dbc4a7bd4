import ChorusCrypto
import ChorusWire
import HashTreeCollections

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
///
/// The parts, each in its own file: `MemberTable` (who is known, with its indexes and
/// digests), `DisseminationQueue` (claims waiting to be sent), `ProbeSchedule` and `Probing`
/// (whom to probe and how), `LocalHealth` (Lifeguard's multiplier), `Suspicion` (timers,
/// confirmations, verdicts, false accusations) and `Claims` (the state rules). This file holds
/// the state, the deadlines and the three entry points: `tick`, `receive`, joining and leaving.
public struct MembershipInstance: Sendable {
    public let settings: MembershipSettings
    public let me: PeerID
    public internal(set) var address: String
    public internal(set) var incarnation: UInt64
    /// Every member this peer knows, with its indexes. Written only through `store` and
    /// `forget`, which keep `timersDeadline` in step.
    private(set) var table = MemberTable()
    public internal(set) var isLeaving = false
    public internal(set) var rejections: [ClaimRejection: Int] = [:]
    public internal(set) var stats = Stats()

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

    let key: SigningKey
    let verifier: ClaimVerifier
    /// The network authority whose revocations this peer obeys (nil: none are accepted).
    public let authority: PeerID?
    /// Unix time (seconds) when `now` was 0: bounds incarnations against the wall clock.
    let unixTimeAtZero: Double
    var myAliveClaim: Claim

    /// The last suspicion timer that ran out, and how many have (so a checker knows a new one).
    public internal(set) var lastTimerExpiry: TimerExpiry?
    public internal(set) var timerExpiries = 0

    var health: LocalHealth
    var schedule = ProbeSchedule()
    var probe: Probe?
    /// The member probed now and the probe's sequence number, nil between probes (for a shell's
    /// debug log: the core itself logs nothing).
    public var currentProbe: (target: PeerID, sequence: UInt32)? { probe.map { ($0.target, $0.sequence) } }
    var nextProbeAt: Double
    var relays: [UInt32: Relay] = [:] { didSet { timersDeadline = nil } }
    var sequence: UInt32 = 0
    var suspicions: [PeerID: Suspicion] = [:] { didSet { timersDeadline = nil } }
    /// New suspects this peer probes before the round-robin order continues (for confirmations:
    /// `probesSuspectAtOnce`).
    var verifyNext: [PeerID] = []
    /// Suspects whose timer ran out here before this peer saw them fail: each is probed once
    /// more, beside the round-robin probe, before it is declared (`runVerifications`).
    var verifications: [Probe] = []
    var waitingVerifications: [PeerID] = []
    var accusations = AccusationRecord()
    /// The earliest relay, suspicion or tombstone deadline, nil when it must be recomputed (any
    /// change to those tables, or to the live count that scales suspicion timeouts). `nextDeadline` is read
    /// after every event a peer handles; walking both tables each time was a cache miss or two
    /// per event in a large simulation.
    private var timersDeadline: Double?
    var queue = DisseminationQueue()
    /// The next gossip round. Rounds fall on a fixed grid (every `gossipInterval` from a phase
    /// set by the id); a round with nothing to send passes without a tick (`passGossipRounds`).
    private var nextGossipAt: Double
    private var nextSyncAt: Double
    private var nextReconnectAt: Double
    /// The deadline the shell was given at the end of the last call: a tick much later than it
    /// means this peer was paused or starved (see `tick`).
    private var promisedTick = Double.infinity
    var seeds: [PeerID: String] = [:]
    /// Members whose tombstones expired, with their last incarnation, kept two tombstone timeouts
    /// more (40 bytes each): a view still settling their failure does not bring them back (`merge`).
    var forgotten: [PeerID: (incarnation: UInt64, at: Double)] = [:]
    private var nextJoinAttempt: Double = 0
    /// When we last answered an unknown sender with a sync (rate limit).
    private var lastStrangerSync: [PeerID: Double] = [:]
    /// `MembershipSettings.strangerSyncsPerSecond`.
    private var strangerSyncs: TokenBucket
    /// Set when a claim made us refute; `receive` then announces the new incarnation.
    var refutedAccuser: PeerID?
    /// Members still spreading an accusation we already refuted, told our alive claim (once per
    /// incarnation each; a missed refutation would otherwise let their timers run out).
    var staleAccusers: Set<PeerID> = []
    private var informed: Set<PeerID> = []

    public init(key: SigningKey, address: String, incarnation: UInt64, settings: MembershipSettings,
                now: Double, unixTimeAtZero: Double, verifier: ClaimVerifier = ClaimVerifier(), authority: PeerID? = nil) {
        precondition(settings.problems().isEmpty, "invalid MembershipSettings: \(settings.problems())")
        self.settings = settings
        self.key = key
        self.me = key.peerID
        self.address = address
        self.incarnation = incarnation
        self.verifier = verifier
        self.authority = authority
        self.unixTimeAtZero = unixTimeAtZero
        self.strangerSyncs = TokenBucket(rate: settings.strangerSyncsPerSecond)
        self.health = LocalHealth(maximum: settings.maxLocalHealth)
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
    @_spi(Simulation) public func memoryHints(_ body: (UnsafeRawPointer, Int) -> Void) {
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
    /// Every member this peer knows, by id (a hash tree: copies share their nodes).
    public var members: TreeDictionary<PeerID, Member> { table.members }
    /// Counts every change to `members`: a checker re-reads the view only when it moved.
    public var memberChanges: UInt64 { table.changes }
    /// Failed and left members, with when they became so.
    var tombstones: [PeerID: Double] { table.tombstones }
    /// Live members other than this peer, sorted.
    var liveIDs: [PeerID] { table.liveIDs }
    /// Lifeguard's local health multiplier: 0 (healthy) … settings.maxLocalHealth.
    public var localHealth: Int { health.score }
    /// Probes left in this round, and whether `peer` is among them (tests).
    var probesLeftInRound: Int { schedule.probesLeftInRound }
    func isDueThisRound(_ peer: PeerID) -> Bool { schedule.isDueThisRound(peer) }
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
        for v in verifications { t = min(t, v.nextStepAt) }
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
        for (peer, s) in suspicions where !s.verifying { t = min(t, timerEnd(of: s, for: peer)) }
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
    @_spi(Simulation) public mutating func preload(_ claims: [Claim], now: Double) {
        defer { cacheTimers(now: now) }
        table.beginBulkLoad()
        for claim in claims { _ = apply(claim, now: now) }
        table.endBulkLoad()
        timersDeadline = nil
        endPreload()
    }

    /// The same start as `preload` with `other`'s view (and `other` itself), sharing its tree of
    /// members: a simulation's peers all start from one view, and a shared tree keeps n views in
    /// little more than the memory of one (a change copies only the path to the member changed).
    @_spi(Simulation) public mutating func preload(sharing other: MembershipInstance, now: Double) {
        defer { cacheTimers(now: now) }
        table.share(other.table)
        timersDeadline = nil
        // Two changes, kept in step with the indexes as any other; endPreload then drops what
        // they queued for gossip and for the probe order.
        _ = apply(other.myAliveClaim, now: now)
        forget(me)
        endPreload()
    }

    private mutating func endPreload() {
        queue.removeAll()
        schedule.reset()  // reshuffled (with the caller's randomness) at the first probe
    }

    /// Contacts a seed (its id learned from the datagram layer's hello): sends our view and asks
    /// for theirs. Repeated every second until some sync answer arrives.
    public mutating func join(seed: PeerID, address seedAddress: String, now: Double) -> [MembershipDirective] {
        defer { cacheTimers(now: now) }
        if queue.isEmpty { passGossipRounds(upTo: now) }
        guard seed != me, seeds[seed] != nil || seeds.count < settings.maxJoinSeeds else { return [] }
        seeds[seed] = seedAddress
        nextJoinAttempt = now + settings.joinRetryInterval
        // Announce ourselves on every message we send from now on, not only through the seed.
        if !queue.contains(me) { queue.enqueue(myAliveClaim) }
        return [send(.sync(isResponse: false, claims: fullState()), to: seed, address: seedAddress)]
    }

    /// Applies one claim that came from outside the protocol (a revocation the operator hands
    /// over, or one kept from an earlier run) as if gossip had brought it.
    public mutating func learn(_ claim: Claim, now: Double) -> [MembershipDirective] {
        defer { cacheTimers(now: now) }
        if queue.isEmpty { passGossipRounds(upTo: now) }
        return apply(claim, now: now)
    }

    /// The revocations this peer holds (to keep across restarts), in subject order.
    public var revocations: [Claim] {
        members.values.compactMap { $0.status == .revoked ? $0.statusClaim : nil }.sorted { $0.subject < $1.subject }
    }

    /// A stranger said hello (a newcomer, a member we forgot): tell it our view's digest, one
    /// small datagram, so that a peer with news answers with its view at once (a newcomer's
    /// neighbours learn of it this way before gossip reaches them). Not a join: nothing is
    /// retried, no view goes to an address that has not answered, and a hello in a fresh name
    /// costs one datagram of about its own size (issue 21).
    public mutating func greet(_ peer: PeerID, address: String, now: Double) -> [MembershipDirective] {
        defer { cacheTimers(now: now) }
        if queue.isEmpty { passGossipRounds(upTo: now) }
        guard peer != me, !isLeaving else { return [] }
        return [send(.digest(digest, claims: []), to: peer, address: address)]
    }

    /// Graceful leave: announce a signed "left" claim directly to up to `announceFanout` members and
    /// by gossip; probing stops. The shell keeps the instance running briefly to spread it.
    public mutating func leave(now: Double, rng: inout some RandomNumberGenerator) -> [MembershipDirective] {
        defer { cacheTimers(now: now) }
        if queue.isEmpty { passGossipRounds(upTo: now) }
        guard !isLeaving else { return [] }
        isLeaving = true
        probe = nil
        (verifications, waitingVerifications) = ([], [])
        let claim = Claim.make(.left, subject: me, incarnation: incarnation, key: key)
        queue.enqueue(claim)
        var out: [MembershipDirective] = []
        for target in table.randomLiveMembers(count: settings.announceFanout, excluding: [], rng: &rng) {
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
            health.adjust(+1)
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
            out += expireSuspicions(now: now, rng: &rng)
        }
        if !isLeaving && !(verifications.isEmpty && waitingVerifications.isEmpty) { out += runVerifications(now: now, rng: &rng) }
        if now >= nextGossipAt {
            passGossipRounds(upTo: now)
            if !queue.isEmpty {
                for target in table.randomLiveMembers(count: settings.gossipFanout, excluding: [], rng: &rng) {
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
            let failed = table.failedMembers
            if !isLeaving && !failed.isEmpty {
                out.append(sendDigest(to: Contact(failed[Int.random(in: 0..<failed.count, using: &rng)])))
            }
        }
        if !tombstones.isEmpty && now >= timersDeadline ?? earliestTimer() {
            forgotten = forgotten.filter { now - $0.value.at < 2 * settings.tombstoneTimeout }
            for peer in tombstones.keys.sorted() where tombstones[peer]! + settings.tombstoneTimeout <= now {  // as in earliestTimer
                forgotten[peer] = (members[peer]!.incarnation, now)
                forget(peer)
                queue.remove(peer)
                out.append(.event(.removed(peer)))
            }
        }
        return out
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
           now - (lastStrangerSync[sender] ?? -.infinity) >= settings.strangerSyncInterval, strangerSyncs.take(now: now) {
            answeredStranger = true
            lastStrangerSync[sender] = now
            if lastStrangerSync.count > settings.strangersRemembered { lastStrangerSync.removeAll() }
            out.append(send(.sync(isResponse: false, claims: fullState()), to: sender, address: source))
        }
        switch message {
        case let .ping(seq, _):
            out.append(send(withClaims(.ack(sequence: seq, claims: [])), to: sender, address: replyAddress))
        case let .ack(seq, _):
            if !probeAcked(seq, now: now), let relay = relays.removeValue(forKey: seq) {
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
            let (contact, ping) = members[target].map { pingMessage(target, $0, sequence: sequence) }
                ?? (Contact(id: target, address: targetAddress), withClaims(.ping(sequence: sequence, claims: [])))
            out.append(send(ping, to: target, address: contact.address))
        case let .nack(seq, _):
            probeNacked(seq, by: sender)
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

    // MARK: The member table

    /// The anti-entropy digest: of the live members (alive and suspect, this peer included) with
    /// the boot epoch of each (its incarnation's upper bits), order-independent and kept up to
    /// date: two peers that agree on who is live, and since which boot, have the same digest,
    /// whatever order they learned it in. A restart changes it, so a peer that missed a
    /// restarted member's new alive claim is repaired by the next sync: with ids alone it kept
    /// the old incarnation for good, and refused every later claim about the new one (found by
    /// `chorus simulate fuzz --seeds 73`). Refutation counts (the lower 16 bits), suspicions and
    /// tombstones are left out on purpose: they change all the time in a large lossy network
    /// and gossip repairs them; a digest over them would make nearly every sync a full one.
    public var digest: UInt64 { isLeaving ? table.othersSyncDigest : table.othersSyncDigest ^ Self.syncHash(me, incarnation: incarnation) }

    /// One member's part of `digest`: its id's hash mixed with its boot epoch.
    static func syncHash(_ id: PeerID, incarnation: UInt64) -> UInt64 { MemberTable.syncHash(id, incarnation: incarnation) }

    /// The digest of `liveMembers` (this peer included even while it leaves): equal to
    /// `setDigest` of a set exactly when the view is that set, but for a 2⁻⁶⁴ accident. A
    /// simulator compares every view with the truth this way in O(1) instead of O(n).
    public var liveMembersDigest: UInt64 { table.othersDigest ^ MemberTable.entryHash(me) }

    /// The order-independent digest of a set of ids, as `digest` and `liveMembersDigest` keep it.
    public static func setDigest(_ ids: some Sequence<PeerID>) -> UInt64 { ids.reduce(0) { $0 ^ MemberTable.entryHash($1) } }

    /// Stores `member`, whose status changed (or was learnt) at `now`.
    mutating func store(_ member: Member, as id: PeerID, now: Double) {
        if table.store(member, as: id, now: now) { timersDeadline = nil }
    }

    mutating func forget(_ peer: PeerID) {
        if table.forget(peer) { timersDeadline = nil }
    }

    /// Our view's digest (and pending claims): the start of an anti-entropy exchange.
    private mutating func sendDigest(to target: Contact) -> MembershipDirective {
        send(withClaims(.digest(digest, claims: [])), to: target.id, address: target.address)
    }

    /// Usually a random live member; a `failedSyncFraction` of the time a failed one (not left), so a partition
    /// whose sides declared each other failed heals by itself.
    private mutating func syncTarget(rng: inout some RandomNumberGenerator) -> Contact? {
        let failed = table.failedMembers
        if !failed.isEmpty && Double.random(in: 0..<1, using: &rng) < settings.failedSyncFraction {
            return Contact(failed[Int.random(in: 0..<failed.count, using: &rng)])
        }
        return table.randomLiveMembers(count: 1, excluding: [], rng: &rng).first
    }

    mutating func send(_ message: MembershipMessage, to peer: PeerID, address: String) -> MembershipDirective {
        stats.messagesSent += 1
        return .send(message, to: peer, address: address)
    }
}
