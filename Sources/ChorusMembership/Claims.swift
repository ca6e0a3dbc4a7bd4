import ChorusCrypto

/// Applying signed claims (from piggybacked gossip, syncs and our own verdicts) to the member
/// table: staleness first, then the signature, then the SWIM state rules (docs/membership.md).
extension MembershipInstance {
    /// Applies one claim (from any message or sync) and returns the resulting events.
    mutating func apply(_ claim: Claim, now: Double) -> [MembershipDirective] {
        if claim.status == .revoked { return applyRevocation(claim, now: now) }
        let ceiling = (UInt64(max(0, unixTimeAtZero + now + settings.maxIncarnationLeadSeconds)) << 16) | 0xFFFF
        guard claim.incarnation <= ceiling else { return reject(.absurdIncarnation) }
        if claim.subject == me { return applyAboutMe(claim, now: now) }
        let existing = members[claim.subject]
        if let existing {
            if existing.status == .revoked { return [] }  // final: nothing brings it back
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
                for accuser in wrong where accuser != me { accusations.charge(accuser, about: claim.subject, now: now, settings: settings) }
            }
            store(Member(incarnation: claim.incarnation, status: .alive, aliveClaim: claim, statusClaim: nil), as: claim.subject, now: now)
            suspicions[claim.subject] = nil
            queue.enqueue(claim)
            var out: [MembershipDirective] = rebooted ? [.event(.rebooted(claim.subject, epoch: claim.incarnation >> 16))] : []
            if !wasLive {
                if !table.bulkLoading { schedule.insert(claim.subject, observer: me) }  // preload resets the order
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
            queue.enqueue(claim)
            return existing.map { $0.status == .left ? [] : [.event(.left(claim.subject))] } ?? []
        case .suspect, .failed:
            guard var m = existing else { return reject(.unknownSubject) }
            guard claim.incarnation == m.incarnation else { return reject(.unannouncedIncarnation) }
            guard m.isLive else { return [] }
            if accusations.distrusts(claim.accuser!, now: now) { return reject(.distrustedAccuser) }
            if claim.status == .failed {
                m.status = .failed
                m.statusClaim = claim
                store(m, as: claim.subject, now: now)
                suspicions[claim.subject] = nil
                queue.enqueue(claim)
                return [.event(.failed(claim.subject))]
            }
            let accuser = claim.accuser!
            if m.status == .suspect {
                // An independent confirmation shortens the timeout; pass it on.
                guard var s = suspicions[claim.subject], !s.accusers.contains(accuser) else { return [] }
                s.accusers.insert(accuser)
                s.confirmedAt = now
                suspicions[claim.subject] = s
                queue.enqueue(claim)
                return []
            }
            m.status = .suspect
            m.statusClaim = claim
            store(m, as: claim.subject, now: now)
            suspicions[claim.subject] = Suspicion(startedAt: now, incarnation: claim.incarnation, accusers: [accuser], confirmedAt: now)
            queue.enqueue(claim)
            if accuser != me && probesSuspectAtOnce(claim.subject, incarnation: claim.incarnation) { verifyNext.append(claim.subject) }
            return [.event(.suspected(claim.subject, by: accuser))]
        case .revoked:
            preconditionFailure("revocations are applied by applyRevocation")
        }
    }

    /// A revocation, signed by the network authority: the member is out for good (its entry
    /// stays, without a tombstone, and travels in syncs), and the claim is gossiped on. One about
    /// this peer is reported, so the shell stops it.
    mutating func applyRevocation(_ claim: Claim, now: Double) -> [MembershipDirective] {
        guard let authority, claim.accuser == authority else { return reject(.notFromAuthority) }
        let existing = members[claim.subject]
        if existing?.status == .revoked { return [] }
        guard verifier.isValid(claim) else { return reject(.badSignature) }
        if claim.subject == me { return [.event(.revoked(me))] }
        store(Member(incarnation: existing?.incarnation ?? 0, status: .revoked, aliveClaim: existing?.aliveClaim, statusClaim: claim),
              as: claim.subject, now: now)
        suspicions[claim.subject] = nil
        queue.enqueue(claim)
        return [.event(.revoked(claim.subject))]
    }

    /// Applies another member's whole view (a sync). A failed verdict about a member this view
    /// held live (before this message: a view also carries the alive claim a failure follows)
    /// becomes our own suspicion, verified by our own probe, as memberlist's push-pull merge
    /// does: the member hears of it and can refute, and stays live to us (and our gossip)
    /// meanwhile. After a partition heals, taking the other side's verdicts would mark our own
    /// side failed and leave us nobody to gossip to.
    ///
    /// A view that doubts a member (holds it suspect or failed) whose tombstone expired here does
    /// not bring it back with an alive claim no newer than the one it had: the sender is still
    /// settling a failure we settled long ago. Without this, a peer cut off during a mass crash,
    /// still verifying the crashes when the others' tombstones expired, revived a crashed member
    /// everywhere through its syncs, and all had to detect it again (fuzz seed 1916 of generator
    /// version 8). A view that holds the member plainly alive still brings it back: that is how
    /// the two sides of a partition longer than the tombstones find each other again.
    mutating func merge(view claims: [Claim], now: Double) -> [MembershipDirective] {
        let heldLive = Set(claims.filter { $0.status == .failed && members[$0.subject]?.isLive == true }.map(\.subject))
        let settled = forgotten.isEmpty ? [] : Set(claims.filter { ($0.status == .suspect || $0.status == .failed) && forgotten[$0.subject] != nil }.map(\.subject))
        var out: [MembershipDirective] = []
        for claim in claims {
            if settled.contains(claim.subject), members[claim.subject] == nil, claim.incarnation <= forgotten[claim.subject]!.incarnation { continue }
            guard claim.status == .failed, heldLive.contains(claim.subject), let m = members[claim.subject], m.isLive,
                  m.incarnation == claim.incarnation else {
                out += apply(claim, now: now)
                continue
            }
            if m.status == .alive {
                out += suspect(claim.subject, incarnation: claim.incarnation, now: now)
                suspicions[claim.subject]?.secondHand = true
            }
            // The verdict's author saw the member fail: a confirmation, which shortens the timer
            // (a second-hand suspicion is still declared only after a probe of our own fails).
            if let accuser = claim.accuser, accuser != me, var s = suspicions[claim.subject], !s.accusers.contains(accuser),
               !accusations.distrusts(accuser, now: now) {
                s.accusers.insert(accuser)
                s.confirmedAt = now
                suspicions[claim.subject] = s
            }
        }
        return out
    }

    mutating func applyAboutMe(_ claim: Claim, now: Double) -> [MembershipDirective] {
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
            queue.enqueue(myAliveClaim)
            stats.refutations += 1
            health.adjust(+1)  // Lifeguard: being suspected hints that we are the slow one
            refutedAccuser = claim.accuser
            return [.event(.refutedAccusation(incarnation: incarnation, by: claim.accuser!))]
        case .revoked:
            preconditionFailure("revocations are applied by applyRevocation")
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
    mutating func announceRefutation(accuser: PeerID, messenger: PeerID, rng: inout some RandomNumberGenerator) -> [MembershipDirective] {
        var targets = table.randomLiveMembers(count: settings.announceFanout, excluding: [accuser, messenger], rng: &rng)
        for peer in [messenger, accuser] where peer != me {
            if let m = members[peer], m.isLive || m.status == .failed, !m.address.isEmpty, !targets.contains(where: { $0.id == peer }) {
                targets.insert(Contact(id: peer, address: m.address), at: 0)
            }
        }
        return targets.map { send(.gossip(claims: [myAliveClaim]), to: $0.id, address: $0.address) }
    }

    mutating func reject(_ reason: ClaimRejection) -> [MembershipDirective] {
        rejections[reason, default: 0] += 1
        return []
    }
}
