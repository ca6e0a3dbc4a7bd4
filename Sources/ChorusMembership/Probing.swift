import ChorusCrypto

/// Probing (SWIM's failure detector): one member a period in the `ProbeSchedule`'s order, a
/// ping, then ping requests through relays and direct retries; a probe whose period ends
/// unanswered raises a suspicion. Relays answer others' ping requests with an ack or a nack.
extension MembershipInstance {
    struct Probe {
        var target: PeerID
        var sequence: UInt32
        var indirectAt: Double
        var endAt: Double
        var acked = false
        /// A verification (`runVerifications`): its failure does not count against local health
        /// (it is what others reported already).
        var isVerification = false
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

    mutating func runProbe(now: Double, rng: inout some RandomNumberGenerator) -> [MembershipDirective] {
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
            if now >= nextProbeAt { nextProbeAt = now + health.scaled(settings.probeInterval) }
            return out
        }
        let (p, first) = startProbe(of: id, member, now: now)
        probe = p
        nextProbeAt = p.endAt
        out.append(first)
        return out
    }

    /// A probe of `id` from `now`, one period long (stretched by local health), and its first ping.
    mutating func startProbe(of id: PeerID, _ member: Member, now: Double, verification: Bool = false) -> (Probe, MembershipDirective) {
        sequence &+= 1
        let p = Probe(target: id, sequence: sequence, indirectAt: now + health.scaled(settings.probeTimeout),
                      endAt: now + health.scaled(settings.probeInterval), isVerification: verification)
        stats.probes += 1
        return (p, ping(p, member))
    }

    /// A ping of `p`'s target (the first or a direct retry).
    mutating func ping(_ p: Probe, _ member: Member) -> MembershipDirective {
        let (target, message) = pingMessage(p.target, member, sequence: p.sequence)
        return send(message, to: target.id, address: target.address)
    }

    /// A ping of a member: with the buddy claim first, then queued gossip, except to a suspect.
    /// A suspect is most likely dead and each claim is sent only so many times: with verifications
    /// side by side, their pings and their relays' spent the gossip of a mass crash's verdicts on
    /// the dead (the replace-quarter detection tail, 64 peers, seeds 1–8: worst 11.1 s on average
    /// with that gossip, 9.9 s without, 10.0 s with verifications in the probe slot).
    mutating func pingMessage(_ id: PeerID, _ member: Member, sequence: UInt32) -> (Contact, MembershipMessage) {
        let message = MembershipMessage.ping(sequence: sequence, claims: Self.buddyClaims(for: member))
        return (Contact(id: id, address: member.address), member.status == .suspect ? message : withClaims(message))
    }

    /// How many suspects are verified at once (`verifications`).
    static let verificationsAtOnce = 4

    /// Moves the verifications on, and starts waiting ones while fewer than
    /// `verificationsAtOnce` run. A suspect whose timer ran out before this peer saw it fail a
    /// probe is declared only after a probe of its own fails, and that probe runs now, beside
    /// the round-robin one: in the probe slot, each waited a whole (health-stretched) period
    /// for the one before, and a peer cut off during a mass crash verified the eight members it
    /// learnt had failed one at a time, ten seconds each, the last 130 s after the crash (fuzz
    /// seed 1916 of generator version 8).
    mutating func runVerifications(now: Double, rng: inout some RandomNumberGenerator) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        var running: [Probe] = []
        for var p in verifications {
            if advance(&p, now: now, rng: &rng, into: &out) {
                out += probeEnded(p, now: now, rng: &rng)
            } else {
                running.append(p)
            }
        }
        verifications = running
        while verifications.count < Self.verificationsAtOnce, !waitingVerifications.isEmpty {
            let id = waitingVerifications.removeFirst()
            // Not twice at once, nor beside an unanswered round-robin probe of it (whose end declares).
            guard let m = members[id], m.status == .suspect, suspicions[id]?.verifying == true,
                  !verifications.contains(where: { $0.target == id }), !(probe?.target == id && probe?.acked == false) else { continue }
            let (p, first) = startProbe(of: id, m, now: now, verification: true)
            verifications.append(p)
            out.append(first)
        }
        return out
    }

    /// An ack with `seq`: for the round-robin probe or a verification, it settles that probe.
    /// Returns false when neither was waiting for it.
    mutating func probeAcked(_ seq: UInt32, now: Double) -> Bool {
        let target: PeerID
        if var p = probe, p.sequence == seq {
            guard !p.acked else { return true }
            p.acked = true
            probe = p
            target = p.target
        } else if let i = verifications.firstIndex(where: { $0.sequence == seq }) {
            target = verifications.remove(at: i).target  // settled: its place goes to the next suspect
        } else {
            return false
        }
        health.adjust(-1)
        if suspicions[target]?.verifying == true {
            // Alive after all: give its refutation (already on its way) a fresh timeout.
            suspicions[target]!.verifying = false
            suspicions[target]!.startedAt = now
        }
        return true
    }

    /// A nack from a relay we asked, for the round-robin probe or a verification. One per
    /// relay: duplicates or strangers cannot hide a missing one.
    mutating func probeNacked(_ seq: UInt32, by relay: PeerID) {
        if var p = probe, p.sequence == seq, p.relaysAsked.contains(relay) {
            p.relaysNacked.insert(relay)
            probe = p
        } else if let i = verifications.firstIndex(where: { $0.sequence == seq && $0.relaysAsked.contains(relay) }) {
            verifications[i].relaysNacked.insert(relay)
        }
    }

    /// Moves a probe on: indirect requests once its timeout passed, direct retries spread over
    /// what is left of the period. Returns whether its period is over.
    mutating func advance(_ p: inout Probe, now: Double, rng: inout some RandomNumberGenerator,
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
            if let member = members[p.target] { out.append(ping(p, member)) }
        }
        return now >= p.endAt
    }

    /// A probe's period is over: unanswered, the target is suspected (and declared, when this
    /// probe was verifying a suspicion whose timer ran out).
    mutating func probeEnded(_ p: Probe, now: Double, rng: inout some RandomNumberGenerator) -> [MembershipDirective] {
        guard !p.acked else { return [] }
        stats.failedProbes += 1
        // Lifeguard: a failed probe, and every nack that did not come, count against our own
        // health. A failed probe of a member someone else already suspects (or another view
        // holds failed) is corroborated, not a hint that we are slow, and is not charged: after
        // a mass crash, charging it stretched every prober's period just when the crashed
        // members needed probing. (memberlist charges only missing nacks; that shortened the
        // crash tail but raised false failures under 20–30 % loss.)
        let corroborated = suspicions[p.target].map { s in s.secondHand || s.accusers.contains { $0 != me } } ?? false
        if !p.isVerification { health.adjust((corroborated ? 0 : 1) + max(0, p.nacksExpected - p.nacksReceived)) }
        guard let target = members[p.target], target.isLive else { return [] }
        var out = suspect(p.target, incarnation: target.incarnation, now: now)
        suspicions[p.target]?.secondHand = false  // now we saw it fail ourselves
        if let s = suspicions[p.target], s.verifying {
            out += declareFailed(p.target, incarnation: s.incarnation, now: now, rng: &rng)
        }
        return out
    }

    /// Buddy system: a suspect hears about its suspicion first, so it can refute at once.
    static func buddyClaims(for target: Member) -> [Claim] {
        if target.status == .suspect, let claim = target.statusClaim { return [claim] }
        return []
    }

    /// The next member to probe, with its entry.
    mutating func nextProbeTarget(rng: inout some RandomNumberGenerator) -> (PeerID, Member)? {
        while !verifyNext.isEmpty {
            let id = verifyNext.removeFirst()
            if let m = members[id], m.status == .suspect { return (id, m) }
        }
        let table = table
        return schedule.next(liveIDs: table.liveIDs, rng: &rng) { table[$0] }
    }

    mutating func shiftDeadlines(by gap: Double) {
        probe?.shift(by: gap)
        for i in verifications.indices { verifications[i].shift(by: gap) }
        nextProbeAt += gap
        for seq in relays.keys { relays[seq]!.deadline += gap }
        for peer in suspicions.keys { suspicions[peer]!.startedAt += gap }
    }

    /// Relays for an indirect probe of `target`: live members not under suspicion, as
    /// memberlist picks them. A suspect is likely gone; its missing nack would count against
    /// our own health, and after a mass crash (a quarter of the members) that stretched most
    /// probers' periods two- or threefold just when the crashed members needed probing.
    mutating func randomRelays(for target: PeerID, rng: inout some RandomNumberGenerator) -> [Contact] {
        guard suspicions.keys.contains(where: { $0 != target }) else {
            return table.randomLiveMembers(count: settings.indirectChecks, excluding: [target], rng: &rng)
        }
        var candidates = table.liveIDs.filter { $0 != target && members[$0]?.status == .alive }
        if candidates.count > settings.indirectChecks {
            for i in 0..<settings.indirectChecks { candidates.swapAt(i, Int.random(in: i..<candidates.count, using: &rng)) }
            candidates.removeLast(candidates.count - settings.indirectChecks)
        }
        return candidates.map { table.contact(of: $0) }
    }

}
