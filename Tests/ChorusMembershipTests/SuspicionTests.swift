import ChorusCrypto
import Foundation
import Testing
@_spi(Simulation) @testable import ChorusMembership

@Suite("Suspicion, refutation and failure")
struct SuspicionTests {
    @Test("a suspect hears of its suspicion first (buddy system), refutes with a higher incarnation, and the accuser accepts it")
    func refutation() throws {
        let a = Fixture.id(1), b = Fixture.id(2)
        var d = Driver(Fixture.instance(1, knowing: [2]))
        var bob = Fixture.instance(2, knowing: [1])
        var rng = SplitMix(seed: 5)

        let first = d.stepUntilPing()
        #expect(first.to == b)
        #expect(first.claims.isEmpty)
        d.run(until: first.time + 1)  // no ack, no relays available
        #expect(d.firstTime(of: .suspected(b, by: a))?.isClose(to: first.time + 1) == true)
        #expect(d.instance.status(of: b) == .suspect)

        // The next ping goes out in the same tick and carries the accusation first.
        let second = try #require(d.pings.last)
        #expect(second.time.isClose(to: first.time + 1))
        let secondClaims = try #require(d.log.last { if case .send(.ping, _, _) = $0.directive { true } else { false } }?
            .directive).pingClaims
        let buddy = try #require(secondClaims.first)
        #expect(buddy.status == .suspect && buddy.subject == b && buddy.accuser == a && buddy.incarnation == Fixture.base)

        let answer = bob.receive(.ping(sequence: second.sequence, claims: secondClaims), from: a, address: "", now: second.time + 0.001, rng: &rng)
        #expect(answer.events == [.refutedAccusation(incarnation: Fixture.base + 1, by: a)])
        #expect(bob.incarnation == Fixture.base + 1)
        #expect(bob.localHealth == 1, "being accused hints that we are the slow one")
        let ack = try #require(answer.acks.first)
        #expect(ack.sequence == second.sequence)
        let refutation = try #require(ack.claims.first { $0.subject == b })
        #expect(refutation.status == .alive && refutation.incarnation == Fixture.base + 1)
        #expect(refutation.signer == b && refutation.signatureIsValid())

        let events = d.receive(.ack(sequence: ack.sequence, claims: ack.claims), from: b, at: second.time + 0.002).events
        #expect(events == [.refuted(b)])
        #expect(d.instance.status(of: b) == .alive)
        #expect(d.instance.members[b]?.incarnation == Fixture.base + 1)
        // The suspicion is gone: no failure, ever.
        d.responsive = [b]
        d.run(until: first.time + 30)
        #expect(!d.events.contains { $0.event == .failed(b) })
    }

    /// A lone accusation (no confirmation) is verified before it is declared: its gossip may all
    /// have gone where the suspect could not hear it (fuzz seed 1252 of version 4), and the
    /// verifying ping carries it to the suspect.
    @Test("without a refutation a lone suspicion runs suspicionTimeout(confirmations: 0), then one verifying probe fails and it is declared",
          arguments: [1, 2, 4, 9])
    func failureAfterTimeout(others: Int) throws {
        let ks = (2...UInt8(others + 1)).map { $0 }
        var d = Driver(Fixture.instance(1, knowing: ks), seed: UInt64(others))
        let first = d.stepUntilPing()
        let victim = first.to
        d.responsive = Set(ks.map(Fixture.id)).subtracting([victim])
        d.run(until: first.time + 1)
        let started = try #require(d.firstTime(of: .suspected(victim, by: d.me)))
        #expect(started.isClose(to: first.time + 1))

        // The formula, by hand: n = others + 1; min = 1 · max(1, log10 n) · 1 s; max = 6 · min; a lone
        // accusation waits max unless the group is too small for confirmations (n − 2 < 2), then min.
        let n = Double(others + 1)
        let minimum = max(1, log10(n))
        let expected = others + 1 - 2 < 2 ? minimum : 6 * minimum
        let timeout = d.instance.suspicionTimeout(confirmations: 0, for: victim)
        #expect(timeout.isClose(to: expected))

        d.run(until: started + timeout - 1e-6)
        #expect(!d.events.contains { $0.event == .failed(victim) }, "not before the timeout")
        if others >= 4 {
            // With four others or more the round-robin order does not come back to the victim
            // within the timeout: a ping to it before then would be a verification started early.
            let early = d.log.contains { entry in
                guard entry.time > started + 1e-6, case let .send(.ping, to, _) = entry.directive else { return false }
                return to == victim
            }
            #expect(!early, "no verifying probe before the timeout")
        }
        #expect(d.instance.status(of: victim) == .suspect)
        d.run(until: started + timeout + 5)
        let failedAt = try #require(d.firstTime(of: .failed(victim)))
        // The verifying probe starts at the next probe slot and fails at its end: at most two
        // probe periods (stretched by local health 1 here: 2 s each) after the timeout.
        #expect(failedAt > started + timeout && failedAt <= started + timeout + 4 + 1e-6, "\(failedAt - started - timeout) s after the timeout")
        let verifying = d.log.contains { entry in
            guard entry.time >= started + timeout, case let .send(.ping(_, claims), to, _) = entry.directive else { return false }
            return to == victim && claims.contains { $0.status == .suspect && $0.subject == victim }
        }
        #expect(verifying, "the verifying ping carries the accusation to the suspect")
        #expect(d.instance.status(of: victim) == .failed)
        #expect(d.instance.stats.failuresDeclared == 1)
        #expect(d.instance.liveMembers.count == others, "the failed member leaves the live set")
    }

    @Test("suspicion timeout formula: min = mult · max(1, log10 n) · interval, max = maxMult · min, shrinking with confirmations",
          arguments: [
              // n, confirmations, expected seconds (Fixture.hand: interval 1 s, mult 1, maxMult 6, k = 2)
              (2, 0, 1.0), (3, 0, 1.0), (3, 5, 1.0),
              (4, 0, 6.0), (4, 1, 6 - 5 * log(2) / log(3)), (4, 2, 1.0), (4, 9, 1.0),
              (10, 0, 6.0), (100, 0, 12.0), (100, 1, 12 - 10 * log(2) / log(3)), (100, 2, 2.0),
          ] as [(Int, Int, Double)])
    func suspicionFormula(n: Int, confirmations: Int, expected: Double) {
        let instance = Fixture.instance(1, knowing: (2...UInt8(n)).map { $0 })
        #expect(instance.liveMembers.count == n)
        #expect(instance.suspicionTimeout(confirmations: confirmations, for: Fixture.id(2)).isClose(to: expected))
    }

    @Test("the formula scales with the settings", arguments: [(MembershipSettings.lan, 256), (.fast, 16), (.memberlistLAN, 256)])
    func suspicionFormulaScales(settings: MembershipSettings, n: Int) {
        var instance = MembershipInstance(key: Fixture.key(1), address: "a:1", incarnation: Fixture.base, settings: settings, now: 0,
                                          unixTimeAtZero: Fixture.unixTimeAtZero)
        // n live members without n keys: one signature per claim is cheap enough here.
        instance.preload((0..<(n - 1)).map { i in
            let key = try! SigningKey(seed: [UInt8(i & 0xFF), UInt8(i >> 8)] + [UInt8](repeating: 0xAB, count: 30))
            return Claim.make(.alive, subject: key.peerID, incarnation: 1, address: "h:\(i)", key: key)
        }, now: 0)
        let minimum = settings.suspicionMultiplier * max(1, log10(Double(n))) * settings.probeInterval
        let peer = instance.liveMembers[1]
        #expect(instance.suspicionTimeout(confirmations: 0, for: peer).isClose(to: settings.suspicionMaxMultiplier * minimum))
        #expect(instance.suspicionTimeout(confirmations: settings.expectedConfirmations, for: peer).isClose(to: minimum))
    }

    enum SecondAccusation: String, CaseIterable {
        case none, sameAccuserAgain, anotherAccuser, twoOtherAccusers
    }

    @Test("independent accusers shorten the suspicion; the same accuser twice counts once", arguments: SecondAccusation.allCases)
    func confirmations(second: SecondAccusation) throws {
        // n = 5: min 1 s, max 6 s, k = 2. The observer's own probes all succeed, so it never accuses:
        // when its timer runs out it does not declare, it verifies (next test).
        let b = Fixture.id(2)
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5]))
        d.responsive = Set([2, 3, 4, 5].map(Fixture.id))
        d.run(until: 0.5)
        let events = d.receive(.gossip(claims: [Fixture.suspect(2, by: 3)]), from: Fixture.id(3), at: 0.5).events
        #expect(events == [.suspected(b, by: Fixture.id(3))])
        d.run(until: 1.0)
        let confirming: [Claim] = switch second {
        case .none: []
        case .sameAccuserAgain: [Fixture.suspect(2, by: 3)]
        case .anotherAccuser: [Fixture.suspect(2, by: 4)]
        case .twoOtherAccusers: [Fixture.suspect(2, by: 4), Fixture.suspect(2, by: 5)]
        }
        if !confirming.isEmpty {
            let out = d.receive(.gossip(claims: confirming), from: Fixture.id(4), at: 1.0)
            #expect(out.events.isEmpty, "confirmations are not new suspicions")
        }
        let expected: Double = switch second {
        case .none, .sameAccuserAgain: 0.5 + 6
        case .anotherAccuser: 0.5 + (6 - 5 * log(2) / log(3))
        case .twoOtherAccusers: 0.5 + 1  // two confirmations: the 1 s minimum
        }
        d.run(until: expected - 1e-6)
        #expect(d.instance.timerExpiries == 0 && d.instance.status(of: b) == .suspect)
        d.run(until: expected)
        let expiry = try #require(d.instance.lastTimerExpiry, "the timer ran out at \(expected)")
        #expect(expiry.subject == b && expiry.expiredAt.isClose(to: expected))
        // Verified at once, beside the probe slot (b answers: the suspicion waits for its refutation).
        #expect(d.pings.contains { $0.to == b && $0.time.isClose(to: expected) })
        #expect(d.firstTime(of: .failed(b)) == nil, "never declared on hearsay alone")
    }

    /// Fuzz seed 694 of generator version 8, with verifications run side by side (since
    /// reverted): a timer that ran out after the peer began to leave started a verification no
    /// tick moved on, and `nextDeadline` stayed due. Whatever verifies, a leaving peer must not.
    @Test("a suspicion timer that runs out while leaving starts no probe, and every tick moves the deadline")
    func noVerificationWhileLeaving() {
        var instance = Fixture.instance(1, knowing: [2, 3, 4, 5])
        var rng = SplitMix(seed: 1)
        _ = instance.receive(.gossip(claims: [Fixture.suspect(2, by: 3)]), from: Fixture.id(3), address: "", now: 0.5, rng: &rng)
        _ = instance.leave(now: 1, rng: &rng)
        var t = 1.0
        while true {
            t = instance.nextDeadline
            guard t < 20 else { break }
            let out = instance.tick(now: t, rng: &rng)
            #expect(!out.contains { if case .send(.ping, _, _) = $0 { true } else { false } }, "a ping at \(t) while leaving")
            guard instance.nextDeadline > t else {
                Issue.record("a tick at \(t) left the deadline due")
                break
            }
        }
        #expect(instance.lastTimerExpiry?.subject == Fixture.id(2), "the timer did run out while leaving")
    }

    /// Fuzz seed 1916 of generator version 8: a peer back from a partition verified the eight
    /// crashes it learnt of by sync one probe period at a time, ten seconds each at its local
    /// health, the last 130 s after the crash.
    @Test("suspects whose timers run out together are verified side by side, verificationsAtOnce at a time, each ping carrying only its accusation")
    func verificationsSideBySide() throws {
        let suspects: [UInt8] = [2, 3, 4, 5, 6, 7]
        let suspectIDs = Set(suspects.map(Fixture.id))
        var d = Driver(Fixture.instance(1, knowing: Array(2...9)))
        d.responsive = Set((2...9).map(Fixture.id))
        d.run(until: 0.5)
        d.receive(.gossip(claims: suspects.map { Fixture.suspect($0, by: 9) }), from: Fixture.id(9), at: 0.5)
        // n = 9, one accuser each, and every probe of ours answered: all six timers run out at 6.5.
        d.run(until: 6.4)
        #expect(d.instance.timerExpiries == 0 && suspects.allSatisfy { d.instance.status(of: Fixture.id($0)) == .suspect })
        d.responsive.subtract(suspectIDs)  // they crash
        d.receive(.gossip(claims: [Fixture.alive(10)]), from: Fixture.id(8), at: 6.4)  // news waiting to be piggybacked
        #expect(d.instance.pendingClaims > 0)
        let logged = d.log.count
        d.run(until: 6.5)
        let verifications = d.log.dropFirst(logged).compactMap { entry -> (to: PeerID, claims: [Claim])? in
            guard case let .send(.ping(_, claims), to, _) = entry.directive, suspectIDs.contains(to) else { return nil }
            return (to, claims)
        }
        #expect(Set(verifications.map(\.to)).count == MembershipInstance.verificationsAtOnce, "\(verifications.map(\.to))")
        for v in verifications { #expect(v.claims.map(\.subject) == [v.to], "the accusation only, no gossip to a member likely dead") }
        d.run(until: 20)
        let declared = try suspects.map { try #require(d.firstTime(of: .failed(Fixture.id($0)))) }
        // Four verifications end at 7.5; the other two start then. One at a time in the probe
        // slot, the sixth would not end before 12.5.
        #expect(declared.filter { $0.isClose(to: 7.5) }.count == MembershipInstance.verificationsAtOnce, "\(declared)")
        #expect(declared.max()! < 12, "\(declared)")
    }

    @Test("a failed verdict in a sync about a member held alive becomes our own suspicion, its author counted as a confirmation")
    func verdictInSyncConfirms() throws {
        let b = Fixture.id(2)
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5]))
        d.responsive = Set([2, 3, 4, 5].map(Fixture.id))
        d.run(until: 0.5)
        d.receive(.sync(isResponse: true, claims: [Fixture.alive(3), Fixture.alive(2), Fixture.failed(2, by: 3)]), from: Fixture.id(3), at: 0.5)
        #expect(d.instance.status(of: b) == .suspect && d.firstTime(of: .failed(b)) == nil)
        // n = 5 and one confirmation: 6 − 5 · ln 2 / ln 3 s, not a lone accusation's 6 s.
        let expected = 0.5 + (6 - 5 * log(2) / log(3))
        d.run(until: expected - 1e-6)
        #expect(d.instance.timerExpiries == 0)
        d.run(until: expected)
        let expiry = try #require(d.instance.lastTimerExpiry)
        #expect(expiry.subject == b && expiry.accusers == 2 && expiry.expiredAt.isClose(to: expected))
        #expect(d.firstTime(of: .failed(b)) == nil, "b answers its verification: never declared on another view's word")
    }

    enum Suspect: String, CaseIterable { case silent, answering }

    @Test("a member that only heard of a suspicion probes the suspect when its timer runs out, and declares only if that probe fails",
          arguments: Suspect.allCases)
    func verifyBeforeDeclaring(suspect: Suspect) throws {
        let a = Fixture.id(1), b = Fixture.id(2)
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5]))
        d.responsive = Set([2, 3, 4, 5].map(Fixture.id))
        d.run(until: 0.5)
        d.receive(.gossip(claims: [Fixture.suspect(2, by: 3)]), from: Fixture.id(3), at: 0.5)
        d.run(until: 6.5 - 1e-6)  // n = 5, one accuser: the 6 s maximum
        #expect(!d.instance.isVerifying(b))
        if suspect == .silent { d.responsive.remove(b) }
        let pingsBefore = d.pings.count
        d.run(until: 8.5)
        // The verifying probe goes out as the timer runs out, beside the round-robin probe,
        // carrying the accusation first.
        let verification = try #require(d.pings.dropFirst(pingsBefore).first { $0.to == b })
        #expect(verification.time.isClose(to: 6.5))
        let claims = try #require(d.log.last { $0.time == verification.time && $0.directive.pingClaims.first?.subject == b }).directive.pingClaims
        #expect(claims.first == Fixture.suspect(2, by: 3))
        switch suspect {
        case .silent:
            // Its own probe failed: now an accuser itself, it declares at the end of that probe.
            let failedAt = try #require(d.firstTime(of: .failed(b)))
            #expect(failedAt.isClose(to: verification.time + 1))
            let declaration = try #require(d.instance.members[b]?.statusClaim)
            #expect(declaration.status == .failed && declaration.accuser == a)
        case .answering:
            // Alive: no failure, and the refutation gets a fresh timeout to arrive.
            #expect(d.firstTime(of: .failed(b)) == nil)
            #expect(!d.instance.isVerifying(b) && d.instance.status(of: b) == .suspect)
            d.receive(.gossip(claims: [Fixture.alive(2, incarnation: Fixture.base + 1)]), from: b, at: 9)
            #expect(d.instance.status(of: b) == .alive)
            d.run(until: 30)
            #expect(d.firstTime(of: .failed(b)) == nil)
        }
    }

    @Test("a refutation goes straight to the accuser, the messenger and announceFanout others; later holders of the old accusation are told once")
    func refutationReachesAccusers() throws {
        var settings = Fixture.hand
        settings.announceFanout = 2
        let a = Fixture.id(1), b = Fixture.id(2)
        var bob = Fixture.instance(2, knowing: [1, 3, 4, 5, 6], settings: settings)
        var rng = SplitMix(seed: 3)
        let refuted = Fixture.alive(2, incarnation: Fixture.base + 1)

        let out = bob.receive(.gossip(claims: [Fixture.suspect(2, by: 1)]), from: Fixture.id(4), address: "", now: 1, rng: &rng)
        #expect(out.events == [.refutedAccusation(incarnation: Fixture.base + 1, by: a)])
        let announced = out.sends.filter { if case let .gossip(claims) = $0.message { claims == [refuted] } else { false } }.map(\.to)
        let messenger = Fixture.id(4)
        #expect(announced.count == 4 && announced.first == a && announced[1] == messenger && Set(announced).count == 4 && !announced.contains(b))

        // Member 6 still spreads the old accusation: it and the accuser learn the new incarnation,
        // the accuser only once (it was told already).
        let stale = bob.receive(.gossip(claims: [Fixture.suspect(2, by: 1)]), from: Fixture.id(6), address: "", now: 2, rng: &rng)
        #expect(stale.events.isEmpty && bob.incarnation == Fixture.base + 1, "no second refutation")
        #expect(stale.sends.map(\.to) == [Fixture.id(6)])
        #expect(stale.sends.first.map { if case let .gossip(claims) = $0.message { claims == [refuted] } else { false } } == true)
        let again = bob.receive(.gossip(claims: [Fixture.suspect(2, by: 1)]), from: Fixture.id(6), address: "", now: 3, rng: &rng)
        #expect(again.sends.isEmpty, "told once per incarnation")
    }

    @Test("the observer's own failed probe of a suspect confirms someone else's accusation")
    func ownProbeConfirms() throws {
        let a = Fixture.id(1)
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5]))
        let first = d.stepUntilPing()
        let victimK = try #require((2...5).map { UInt8($0) }.first { Fixture.id($0) == first.to })
        let accuserK: UInt8 = victimK == 3 ? 4 : 3
        d.receive(.gossip(claims: [Fixture.suspect(victimK, by: accuserK)]), from: Fixture.id(accuserK), at: first.time + 0.1)
        d.responsive = Set([2, 3, 4, 5].map(Fixture.id)).subtracting([first.to])
        d.run(until: first.time + 1)
        #expect(!d.events.contains { $0.event == .suspected(first.to, by: a) }, "already suspect: a confirmation, not a new event")
        d.run(until: first.time + 4)
        let failedAt = try #require(d.firstTime(of: .failed(first.to)))
        #expect(failedAt.isClose(to: first.time + 0.1 + (6 - 5 * log(2) / log(3))))
    }
}

extension MembershipDirective {
    var pingClaims: [Claim] {
        if case let .send(.ping(_, claims), _, _) = self { claims } else { [] }
    }
}

@Suite("accusations have a cost")
struct FalseAccusationTests {
    /// Member 3 accuses member 2 failed again and again; 2 refutes each time (alive, same boot, a
    /// higher incarnation). Member 4 once accuses 2 falsely, an honest mistake.
    @Test("an accuser proved wrong about one member falseAccusationLimit times is ignored for distrustSeconds; a single honest mistake is not")
    func repeatedFalseAccusationsIgnored() {
        var observer = Fixture.instance(1, knowing: [2, 3, 4])
        let limit = observer.settings.falseAccusationLimit
        var incarnation = Fixture.base
        var now = 1.0
        for _ in 0..<limit {
            #expect(observer.apply(Fixture.failed(2, by: 3, incarnation: incarnation), now: now).events == [.failed(Fixture.id(2))])
            incarnation += 1
            _ = observer.apply(Fixture.alive(2, incarnation: incarnation), now: now + 0.5)
            #expect(observer.status(of: Fixture.id(2)) == .alive)
            now += 2
        }
        // The next accusation by 3 is refused and counted; 2 stays alive.
        #expect(observer.apply(Fixture.failed(2, by: 3, incarnation: incarnation), now: now).isEmpty)
        #expect(observer.status(of: Fixture.id(2)) == .alive)
        #expect(observer.rejections[.distrustedAccuser] == 1)
        // Member 4 was wrong once: its accusation still counts.
        #expect(observer.apply(Fixture.suspect(2, by: 4, incarnation: incarnation), now: now + 1).events == [.suspected(Fixture.id(2), by: Fixture.id(4))])
        incarnation += 1
        _ = observer.apply(Fixture.alive(2, incarnation: incarnation), now: now + 1.5)
        #expect(observer.apply(Fixture.suspect(2, by: 4, incarnation: incarnation), now: now + 2).events == [.suspected(Fixture.id(2), by: Fixture.id(4))])
        // After distrustSeconds, 3 is heard again.
        incarnation += 1
        _ = observer.apply(Fixture.alive(2, incarnation: incarnation), now: now + 3)
        let later = now + observer.settings.distrustSeconds + 1
        #expect(observer.apply(Fixture.suspect(2, by: 3, incarnation: incarnation), now: later).events == [.suspected(Fixture.id(2), by: Fixture.id(3))])
    }

    @Test("a member that crashed and came back in a later boot proves nobody wrong")
    func rebootIsNotARefutation() {
        var observer = Fixture.instance(1, knowing: [2, 3])
        var now = 1.0
        for boot in 0..<UInt64(observer.settings.falseAccusationLimit + 1) {
            let incarnation = Fixture.base + (boot << 16)
            _ = observer.apply(Fixture.failed(2, by: 3, incarnation: incarnation), now: now)
            _ = observer.apply(Fixture.alive(2, incarnation: incarnation + (1 << 16)), now: now + 0.5)
            now += 2
        }
        #expect(observer.rejections[.distrustedAccuser] == nil)
    }
}
