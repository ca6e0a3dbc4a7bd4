import ChorusCrypto

/// One member this peer holds suspect: Lifeguard's suspicion with independent confirmations
/// (memberlist's `suspicion.go`), and how this peer will settle it.
struct Suspicion: Sendable {
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

/// Members whose accusations were proved false lately, and those distrusted for it: three false
/// accusations about one subject within the window, and the accuser's accusations are ignored
/// for a while (`MembershipSettings.falseAccusationLimit`, docs/membership.md). Both tables are
/// pruned as they age.
struct AccusationRecord: Sendable {
    private var falseAccusations: [PeerID: [(subject: PeerID, at: Double)]] = [:]
    private var distrusted: [PeerID: Double] = [:]

    /// Whether `accuser`'s accusations are ignored at `now` (forgetting a distrust that ended).
    mutating func distrusts(_ accuser: PeerID, now: Double) -> Bool {
        guard let until = distrusted[accuser] else { return false }
        if now < until { return true }
        distrusted[accuser] = nil
        return false
    }

    /// Records that `accuser` accused `subject`, which proved alive; past the limit about one
    /// subject within the window, its accusations are ignored for `distrustSeconds`.
    mutating func charge(_ accuser: PeerID, about subject: PeerID, now: Double, settings: MembershipSettings) {
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
}

extension MembershipInstance {
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

    /// Whether this peer's suspicion timer for `peer` ran out and it is probing it before declaring.
    func isVerifying(_ peer: PeerID) -> Bool { suspicions[peer]?.verifying ?? false }
    func isVerifyingNext(_ peer: PeerID) -> Bool { verifyNext.contains(peer) }

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

    /// When a suspicion's timer runs out.
    func timerEnd(of s: Suspicion, for peer: PeerID) -> Double {
        s.startedAt + suspicionTimeout(confirmations: s.accusers.count - 1, for: peer)
    }

    /// Settles the suspicions whose timers ran out by `now`: declared failed when this peer saw
    /// the suspect fail a probe and someone else confirmed it, otherwise verified by one more
    /// probe first.
    mutating func expireSuspicions(now: Double, rng: inout some RandomNumberGenerator) -> [MembershipDirective] {
        var out: [MembershipDirective] = []
        for peer in suspicions.keys.sorted() {
            guard let s = suspicions[peer], !s.verifying, now >= timerEnd(of: s, for: peer) else { continue }
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
                waitingVerifications.append(peer)
            }
        }
        return out
    }

    /// Whether this member probes a new suspect next rather than when its round comes: true for
    /// about `suspicionProbes` of the members who hear the accusation (a hash of both ids and
    /// the incarnation, so the choice needs no randomness and differs between suspicions).
    /// Their probes are the independent confirmations Lifeguard's timeout waits for; left to
    /// the round-robin order they came about one every 1.3 s at 64 members, and a crash took
    /// most of its detection time waiting for the second and third.
    func probesSuspectAtOnce(_ peer: PeerID, incarnation: UInt64) -> Bool {
        guard settings.suspicionProbes > 0 else { return false }
        let share = Double(settings.suspicionProbes) / Double(max(1, clusterSize - 2))
        if share >= 1 { return true }
        let mix = MemberTable.mix
        let draw = mix(me.leadingWord ^ mix(peer.leadingWord ^ mix(incarnation)))
        return Double(draw >> 11) / Double(1 << 53) < share
    }

    /// Raises our own suspicion of `peer` (a failed probe, or another view's verdict).
    mutating func suspect(_ peer: PeerID, incarnation: UInt64, now: Double) -> [MembershipDirective] {
        stats.suspicionsRaised += 1
        let claim = Claim.make(.suspect, subject: peer, incarnation: incarnation, key: key)
        return apply(claim, now: now)
    }

    /// Declares a suspect failed and, like a refutation, tells `announceFanout` random members at
    /// once besides gossip: a member that missed every gossiped copy otherwise held the dead
    /// member live until its own verification or probe (the last seconds of the detection tail).
    mutating func declareFailed(_ peer: PeerID, incarnation: UInt64, now: Double,
                                rng: inout some RandomNumberGenerator) -> [MembershipDirective] {
        suspicions[peer] = nil
        guard let m = members[peer], m.status == .suspect, m.incarnation == incarnation else { return [] }
        stats.failuresDeclared += 1
        let claim = Claim.make(.failed, subject: peer, incarnation: incarnation, key: key)
        var out = apply(claim, now: now)
        for target in table.randomLiveMembers(count: settings.announceFanout, excluding: [], rng: &rng) {
            out.append(send(.gossip(claims: [claim]), to: target.id, address: target.address))
        }
        return out
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
