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
        let (target, buddies) = pingTarget(id, member)
        sequence &+= 1
        let period = health.scaled(settings.probeInterval)
        probe = Probe(target: target.id, sequence: sequence, indirectAt: now + health.scaled(settings.probeTimeout), endAt: now + period)
        nextProbeAt = now + period
        stats.probes += 1
        out.append(send(withClaims(.ping(sequence: sequence, claims: buddies)), to: target.id, address: target.address))
        return out
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
            if let member = members[p.target] {
                let (target, buddies) = pingTarget(p.target, member)
                out.append(send(withClaims(.ping(sequence: p.sequence, claims: buddies)), to: target.id, address: target.address))
            }
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
        health.adjust((corroborated ? 0 : 1) + max(0, p.nacksExpected - p.nacksReceived))
        guard let target = members[p.target], target.isLive else { return [] }
        var out = suspect(p.target, incarnation: target.incarnation, now: now)
        suspicions[p.target]?.secondHand = false  // now we saw it fail ourselves
        if let s = suspicions[p.target], s.verifying {
            out += declareFailed(p.target, incarnation: s.incarnation, now: now, rng: &rng)
        }
        return out
    }

    /// Where to ping a member and the claims to put on the ping.
    func pingTarget(_ id: PeerID, _ member: Member) -> (Contact, [Claim]) {
        (Contact(id: id, address: member.address), Self.buddyClaims(for: member))
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
