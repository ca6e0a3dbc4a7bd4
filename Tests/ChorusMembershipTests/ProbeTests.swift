import ChorusCrypto
import Testing
@testable import ChorusMembership

@Suite("Probing")
struct ProbeTests {
    @Test("every live member is pinged exactly once per round, and rounds are reshuffled", arguments: [3, 8, 17])
    func everyMemberOncePerRound(n: Int) throws {
        let others = (2...UInt8(n + 1)).map { $0 }
        var d = Driver(Fixture.instance(1, knowing: others), seed: UInt64(n))
        d.responsive = Set(others.map(Fixture.id))
        let rounds = 4
        while d.pings.count < (rounds + 1) * n { d.step() }
        let pings = Array(d.pings.prefix((rounds + 1) * n))
        let expected = Set(others.map(Fixture.id))
        // The first round is the tail of a shuffled order (k pings, 1 ≤ k ≤ n, all different), so
        // that peers started together do not run their rounds in step; full rounds follow.
        func fullRounds(after k: Int) -> Bool {
            (0..<rounds).allSatisfy { r in Set(pings[k + r * n..<k + (r + 1) * n].map(\.to)) == expected }
        }
        let k = try #require((1...n).first { Set(pings[0..<$0].map(\.to)).count == $0 && fullRounds(after: $0) },
                             "a partial first round, then every member once per round")
        let orders = (0..<rounds).map { r in pings[k + r * n..<k + (r + 1) * n].map(\.to) }
        #expect(Set(orders).count > 1, "the order must be reshuffled between rounds")
        // Healthy and always acked: one ping per probe interval, exactly.
        for (a, b) in zip(pings, pings.dropFirst()) { #expect((b.time - a.time).isClose(to: 1)) }
        #expect(d.instance.localHealth == 0)
    }

    /// Regression: a member that became live again used to be inserted into `probeOrder` although its old
    /// entry was still due in the round, so it was pinged twice in that round.
    @Test("a member that fails and comes back within a round is still probed once in that round")
    func rejoinDoesNotDuplicateProbes() throws {
        let others = (2...9).map { UInt8($0) }
        var duplicated: [UInt8] = []
        for returning in others where returning != 2 {
            var d = Driver(Fixture.instance(1, knowing: others), seed: 4)
            d.responsive = Set(others.map(Fixture.id))
            let first = d.stepUntilPing()
            guard d.instance.isDueThisRound(Fixture.id(returning)) else { continue }  // must still be ahead in this round
            d.receive(.gossip(claims: [Fixture.failed(returning, by: 2)]), from: Fixture.id(2), at: first.time + 0.1)
            d.receive(.gossip(claims: [Fixture.alive(returning, incarnation: Fixture.base + 1)]), from: Fixture.id(returning),
                      at: first.time + 0.2)
            #expect(d.instance.status(of: Fixture.id(returning)) == .alive)
            let roundLength = 1 + d.instance.probesLeftInRound  // the first round is a partial one
            while d.pings.count < roundLength { d.step() }
            let round = d.pings.prefix(roundLength).map(\.to)
            if Set(round).count != roundLength { duplicated.append(returning) }
        }
        #expect(duplicated.isEmpty, "peers probed twice in one round after coming back: \(duplicated)")
    }

    @Test("two observers probe the same members in different orders")
    func observersDiffer() {
        let everyone = (1...13).map { UInt8($0) }
        func firstRound(of k: UInt8) -> [PeerID] {
            var d = Driver(Fixture.instance(k, knowing: everyone), seed: UInt64(k) * 7919)
            d.responsive = Set(everyone.filter { $0 != k }.map(Fixture.id))
            _ = d.stepUntilPing()
            let start = 1 + d.instance.probesLeftInRound  // after the partial first round
            while d.pings.count < start + everyone.count - 1 { d.step() }
            return d.pings.dropFirst(start).map(\.to)
        }
        let common = Set(everyone.filter { $0 != 1 && $0 != 2 }.map(Fixture.id))
        let one = firstRound(of: 1).filter(common.contains)
        let two = firstRound(of: 2).filter(common.contains)
        #expect(Set(one) == common && Set(two) == common)
        #expect(one != two)
        #expect(one != one.sorted() || two != two.sorted(), "orders are shuffled, not sorted")
    }

    @Test("a ping is answered by an ack with the same sequence number", arguments: [UInt32(0), 1, 77, .max])
    func pingIsAcked(sequence: UInt32) {
        var rng = SplitMix(seed: 1)
        var b = Fixture.instance(2, knowing: [1])
        let out = b.receive(.ping(sequence: sequence, claims: []), from: Fixture.id(1), address: "ignored:1", now: 0.5, rng: &rng)
        #expect(out == [.send(.ack(sequence: sequence, claims: []), to: Fixture.id(1), address: Fixture.address(1))])
        // From a stranger, the ack goes to the datagram's source address, after a sync request that
        // brings it into our view (at most one per 5 s per stranger).
        let reply = b.receive(.ping(sequence: sequence, claims: []), from: Fixture.id(9), address: "192.0.2.9:1", now: 0.6, rng: &rng)
        #expect(reply.last == .send(.ack(sequence: sequence, claims: []), to: Fixture.id(9), address: "192.0.2.9:1"))
        #expect(reply.count == 2)
        if case let .send(.sync(isResponse, claims), to, address) = reply.first {
            #expect(!isResponse && to == Fixture.id(9) && address == "192.0.2.9:1")
            #expect(claims.first?.subject == b.me)
        } else {
            Issue.record("expected a sync request to the stranger first, got \(reply)")
        }
        let again = b.receive(.ping(sequence: sequence, claims: []), from: Fixture.id(9), address: "192.0.2.9:1", now: 1.0, rng: &rng)
        #expect(again == [.send(.ack(sequence: sequence, claims: []), to: Fixture.id(9), address: "192.0.2.9:1")])
    }

    @Test("strangers get syncs within strangerSyncsPerSecond in all (bursts of twice as many), then acks only (issue 21)")
    func strangerSyncBudget() {
        var rng = SplitMix(seed: 1)
        var settings = Fixture.hand
        settings.strangerSyncsPerSecond = 5
        var b = Fixture.instance(2, knowing: [1], settings: settings)
        func syncs(from strangers: ClosedRange<UInt8>, at now: Double) -> Int {
            var count = 0
            for k in strangers {
                let out = b.receive(.ping(sequence: 1, claims: []), from: Fixture.id(k), address: "192.0.2.\(k):1", now: now, rng: &rng)
                count += out.filter { if case .send(.sync, _, _) = $0 { true } else { false } }.count
                #expect(out.last == .send(.ack(sequence: 1, claims: []), to: Fixture.id(k), address: "192.0.2.\(k):1"), "every ping is acked")
            }
            return count
        }
        #expect(syncs(from: 10...39, at: 1) == 10)
        #expect(syncs(from: 40...59, at: 2) == 5, "five more a second later")
    }

    @Test("an ack to the current probe is a success: no indirect probe, no suspicion, and local health falls")
    func ackedProbe() throws {
        var d = Driver(Fixture.instance(1, knowing: [2, 3]))
        // Being accused (and refuting) raises our own local health to 1.
        d.receive(.gossip(claims: [Fixture.suspect(1, by: 2)]), from: Fixture.id(2), at: 0.1)
        #expect(d.instance.localHealth == 1)
        let ping = d.stepUntilPing()
        d.receive(.ack(sequence: ping.sequence, claims: []), from: ping.to, at: ping.time + 0.01)
        #expect(d.instance.localHealth == 0)
        // The period was stretched to 2 s by health 1; run to just before the next probe.
        d.run(until: ping.time + 1.99)
        #expect(d.log.filter { $0.time > ping.time }.map(\.directive).pingRequests.isEmpty)
        #expect(d.events.allSatisfy { if case .suspected = $0.event { false } else { true } })
        #expect(d.instance.status(of: ping.to) == .alive)
        #expect(d.instance.stats.failedProbes == 0)
        #expect(d.instance.localHealth == 0, "health never goes below 0")
    }

    @Test("an ack with another sequence number does not count as an answer")
    func staleAckIgnored() {
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4]))
        let ping = d.stepUntilPing()
        d.receive(.ack(sequence: ping.sequence &+ 1000, claims: []), from: ping.to, at: ping.time + 0.01)
        d.run(until: ping.time + 1)
        #expect(d.log.map(\.directive).pingRequests.count == 2)
        #expect(d.events.contains { $0.event == .suspected(ping.to, by: d.me) })
        #expect(d.instance.stats.failedProbes == 1)
    }

    @Test("after the direct timeout, ping requests go to indirectChecks other members with the probe's sequence")
    func indirectRequests() throws {
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5, 6]))
        let ping = d.stepUntilPing()
        d.run(until: ping.time + 0.4 - 1e-6)
        #expect(d.log.map(\.directive).pingRequests.isEmpty, "not before probeTimeout")
        let out = d.step()
        #expect(d.now.isClose(to: ping.time + 0.4))
        let requests = out.pingRequests
        #expect(requests.count == Fixture.hand.indirectChecks)
        #expect(Set(requests.map(\.to)).count == requests.count)
        for r in requests {
            #expect(r.sequence == ping.sequence)
            #expect(r.target == ping.to)
            #expect(r.to != ping.to && r.to != d.me)
            let k = (1...6).map { UInt8($0) }.first { Fixture.id($0) == ping.to }!
            #expect(r.address == Fixture.address(k))
        }
        #expect(d.instance.stats.indirectProbes == 1)
    }

    @Test("at the indirect stage the target is pinged directly once more, with the probe's sequence; its ack ends the probe")
    func directRetry() throws {
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5, 6]))
        let ping = d.stepUntilPing()
        d.run(until: ping.time + 0.4 - 1e-6)
        #expect(d.pings.count == 1, "no second ping before probeTimeout")
        let out = d.step()
        let retries = out.pings
        try #require(retries.count == 1)
        #expect(retries[0].to == ping.to && retries[0].sequence == ping.sequence)
        // Only the retry's ack comes back (the first ping was lost): the probe succeeds, no suspicion.
        d.receive(.ack(sequence: ping.sequence, claims: []), from: ping.to, at: d.now + 0.01)
        d.run(until: ping.time + 1 - 1e-6)
        #expect(d.pings.count == 2, "no further retry once acked")
        d.run(until: ping.time + 1)
        #expect(d.instance.stats.failedProbes == 0)
        #expect(d.instance.status(of: ping.to) == .alive)
        #expect(d.events.allSatisfy { if case .suspected = $0.event { false } else { true } })
    }

    @Test("an unanswered target gets directRetries pings spread over the rest of the period, then is suspected",
          arguments: [(1, [0, 400]), (2, [0, 400, 700]), (3, [0, 400, 600, 800])])
    func directRetriesSpread(retries: Int, milliseconds: [Double]) throws {
        var settings = Fixture.hand
        settings.directRetries = retries
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5, 6], settings: settings))
        let ping = d.stepUntilPing()
        d.run(until: ping.time + 1 - 1e-6)
        let toTarget = d.pings.filter { $0.to == ping.to }
        // 0.4 s: with the ping requests; the others split the 0.6 s left of the period evenly.
        #expect(toTarget.map { (($0.time - ping.time) * 1000).rounded() } == milliseconds)
        #expect(toTarget.allSatisfy { $0.sequence == ping.sequence })
        #expect(d.instance.stats.directRetries == retries)
        d.run(until: ping.time + 1)
        #expect(d.instance.stats.failedProbes == 1)
        #expect(d.instance.status(of: ping.to) == .suspect)
    }

    @Test("with directRetries 0, the indirect stage sends ping requests only")
    func noDirectRetry() throws {
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5, 6], settings: Fixture.withoutDirectRetry))
        let ping = d.stepUntilPing()
        d.run(until: ping.time + 0.4)
        #expect(d.pings.count == 1)
        #expect(d.log.map(\.directive).pingRequests.count == Fixture.hand.indirectChecks)
    }

    enum TargetBehaviour: String, CaseIterable { case answers, silent }

    @Test("a relay forwards the target's ack with the origin's sequence, or sends a nack at 0.8 × probeTimeout",
          arguments: TargetBehaviour.allCases)
    func relay(target behaviour: TargetBehaviour) throws {
        let everyone: [UInt8] = [1, 2, 3, 4]
        var origin = Driver(Fixture.instance(1, knowing: everyone))
        let ping = origin.stepUntilPing()
        let targetK = everyone.first { Fixture.id($0) == ping.to }!
        origin.run(until: ping.time + 0.4)
        let requests = origin.log.map(\.directive).pingRequests
        try #require(requests.count == 2)

        var rng = SplitMix(seed: 9)
        let t = ping.time + 0.401
        var relays: [(k: UInt8, instance: MembershipInstance, relayPing: (sequence: UInt32, to: PeerID, claims: [Claim]))] = []
        for request in requests {
            let k = everyone.first { Fixture.id($0) == request.to }!
            var relay = Fixture.instance(k, knowing: everyone, now: t)
            let out = relay.receive(.pingRequest(sequence: request.sequence, target: request.target, address: request.address, claims: []),
                                    from: origin.me, address: "", now: t, rng: &rng)
            try #require(out.pings.count == 1)
            #expect(out.pings[0].to == ping.to)
            #expect(out.sends.count == 1)
            relays.append((k, relay, out.pings[0]))
        }

        switch behaviour {
        case .answers:
            var target = Fixture.instance(targetK, knowing: everyone, now: t)
            let (k, relayInstance, relayPing) = relays[0]
            var relay = relayInstance
            let ack = target.receive(.ping(sequence: relayPing.sequence, claims: relayPing.claims), from: Fixture.id(k), address: "",
                                     now: t + 0.001, rng: &rng).acks
            try #require(ack.count == 1)
            let forwarded = relay.receive(.ack(sequence: ack[0].sequence, claims: ack[0].claims), from: ping.to, address: "",
                                          now: t + 0.002, rng: &rng)
            #expect(forwarded.acks.map(\.sequence) == [ping.sequence])
            #expect(forwarded.acks.map(\.to) == [origin.me])
            // The relay's job is done: no nack later.
            #expect(relay.tick(now: t + 0.5, rng: &rng).nacks.isEmpty)
            // The origin takes the relayed ack as success.
            origin.receive(.ack(sequence: ping.sequence, claims: []), from: Fixture.id(k), at: t + 0.003)
            origin.run(until: ping.time + 1.5)
            #expect(!origin.events.contains { $0.event == .suspected(ping.to, by: origin.me) })
            #expect(origin.instance.status(of: ping.to) == .alive)
            #expect(origin.instance.stats.failedProbes == 0)
        case .silent:
            for (k, relayInstance, _) in relays {
                var relay = relayInstance
                // The relay nacks at 0.8 × probeTimeout, so the nack reaches the origin inside its period.
                #expect(relay.tick(now: t + 0.32 - 1e-6, rng: &rng).nacks.isEmpty, "no nack before 0.8 × probeTimeout")
                let nacks = relay.tick(now: t + 0.32, rng: &rng).nacks
                #expect(nacks.count == 1)
                #expect(nacks.first?.sequence == ping.sequence)
                #expect(nacks.first?.to == origin.me)
                origin.receive(.nack(sequence: ping.sequence, claims: []), from: Fixture.id(k), at: t + 0.321)
            }
            origin.run(until: ping.time + 1)
            #expect(origin.events.contains { $0.event == .suspected(ping.to, by: origin.me) })
            // Both relays answered, so only the failed probe itself counts against our health.
            #expect(origin.instance.localHealth == 1)
        }
    }
}

@Suite("Probing after churn")
struct ProbeScheduleTests {
    @Test("peers started together with the same view begin their rounds at different places")
    func firstRoundsAreOutOfStep() {
        let others = (2...17).map { UInt8($0) }
        let firstRoundLengths = (1...6).map { seed -> Int in
            var d = Driver(Fixture.instance(1, knowing: others), seed: UInt64(seed))
            d.responsive = Set(others.map(Fixture.id))
            while d.pings.count < 2 * others.count { d.step() }
            // The first repeated target ends the first round.
            var seen: Set<PeerID> = []
            return d.pings.firstIndex { !seen.insert($0.to).inserted } ?? 0
        }
        #expect(Set(firstRoundLengths).count > 1, "first rounds of \(firstRoundLengths) pings: all alike")
    }

    @Test("liveness bound: every live member is probed within two rounds, whatever left, failed or joined")
    func everyMemberProbedWithinTwoRounds() {
        let others = (2...10).map { UInt8($0) }
        var d = Driver(Fixture.instance(1, knowing: others), seed: 7)
        d.responsive = Set((2...12).map { Fixture.id(UInt8($0)) })
        let messenger = Fixture.id(2)
        // Quiet for most of a minute, then leaves, a failure and joins: the pattern that hid
        // crashed members for up to a minute (issue 19).
        d.run(until: 50)
        d.receive(.gossip(claims: [Fixture.left(3)]), from: messenger, at: 50.1)
        d.run(until: 51)
        d.receive(.gossip(claims: [Fixture.alive(11)]), from: messenger, at: 51.2)
        d.run(until: 70)
        d.receive(.gossip(claims: [Fixture.failed(5, by: 4)]), from: messenger, at: 70.3)
        d.receive(.gossip(claims: [Fixture.alive(12)]), from: messenger, at: 70.4)
        d.receive(.gossip(claims: [Fixture.alive(3, incarnation: Fixture.base + 1)]), from: messenger, at: 75)
        d.run(until: 160)
        #expect(d.instance.stats.pausesDetected == 0)
        // Each member with the time it was last seen to become live.
        let live: [(UInt8, Double)] = [(2, 0), (3, 75), (4, 0), (6, 0), (7, 0), (8, 0), (9, 0), (10, 0), (11, 51.2), (12, 70.4)]
        // Seconds: two rounds of one probe a second, each lengthened by the members that joined
        // during it (at most 3 here), and one period.
        let bound = 2.0 * Double(live.count + 3) + 1
        for (k, since) in live {
            let member = Fixture.id(k)
            let times = [since] + d.pings.filter { $0.to == member && $0.time >= since }.map(\.time) + [160]
            let gap = zip(times, times.dropFirst()).map { $1 - $0 }.max() ?? .infinity
            #expect(gap <= bound, "member \(k) went \(gap) s without a probe (bound \(bound) s)")
        }
    }

    @Test("a member that hears an accusation probes the suspect next when it is one of the few chosen")
    func suspicionProbedAtOnce() throws {
        let others = (2...9).map { UInt8($0) }
        func nextPing(suspicionProbes: Int, seed: UInt64) -> PeerID {
            var settings = Fixture.hand
            settings.suspicionProbes = suspicionProbes
            var d = Driver(Fixture.instance(1, knowing: others, settings: settings), seed: seed)
            d.responsive = Set(others.map(Fixture.id))  // 4 too: the accusation is the news here
            d.run(until: 10)
            d.receive(.gossip(claims: [Fixture.suspect(4, by: 2)]), from: Fixture.id(2), at: 10.1)
            return d.stepUntilPing().to
        }
        // A seed whose round-robin order would not reach 4 next anyway.
        let seed = try #require((1...20).map(UInt64.init).first { nextPing(suspicionProbes: 0, seed: $0) != Fixture.id(4) })
        #expect(nextPing(suspicionProbes: 100, seed: seed) == Fixture.id(4))
    }

    @Test("about suspicionProbes of the members who hear an accusation probe the suspect at once")
    func suspicionProbesAreFew() {
        let n = 64
        var settings = Fixture.hand
        settings.suspicionProbes = 6
        var chosen = 0
        for k in 1...UInt8(n) where k != 4 && k != 2 {
            var instance = Fixture.instance(k, knowing: (1...UInt8(n)).map { $0 }, settings: settings)
            var rng = SplitMix(seed: 1)
            _ = instance.receive(.gossip(claims: [Fixture.suspect(4, by: 2)]), from: Fixture.id(2), address: "", now: 1, rng: &rng)
            if instance.isVerifyingNext(Fixture.id(4)) { chosen += 1 }
        }
        #expect((2...12).contains(chosen), "\(chosen) of \(n - 2) hearers probe the suspect at once; 6 expected")
    }

    @Test("a failure this member declares is sent at once to announceFanout members, besides gossip")
    func declarationAnnounced() throws {
        let others = (2...12).map { UInt8($0) }
        var d = Driver(Fixture.instance(1, knowing: others), seed: 2)
        d.responsive = Set((3...12).map { Fixture.id(UInt8($0)) })  // 2 has crashed
        d.run(until: 60)
        let declared = try #require(d.firstTime(of: .failed(Fixture.id(2))), "2 is declared failed")
        let told = d.log.filter { $0.time == declared }.compactMap { entry -> PeerID? in
            guard case let .send(.gossip(claims), to, _) = entry.directive,
                  claims.contains(where: { $0.status == .failed && $0.subject == Fixture.id(2) }) else { return nil }
            return to
        }
        #expect(Set(told).count >= Fixture.hand.announceFanout, "told at once: \(told.count)")
        #expect(!told.contains(Fixture.id(2)))
    }

    @Test("relays for an indirect probe are never members under suspicion")
    func relaysAreNotSuspects() {
        let others = (2...12).map { UInt8($0) }
        var d = Driver(Fixture.instance(1, knowing: others), seed: 5)
        d.responsive = Set((5...12).map { Fixture.id(UInt8($0)) })  // 2, 3 and 4 are gone
        d.receive(.gossip(claims: [Fixture.suspect(2, by: 9), Fixture.suspect(3, by: 9), Fixture.suspect(4, by: 9)]),
                  from: Fixture.id(9), at: 0.5)
        d.run(until: 30)
        let requests = d.log.map(\.directive).pingRequests
        #expect(requests.count >= 4)
        let suspects = Set([2, 3, 4].map { Fixture.id(UInt8($0)) })
        #expect(!requests.contains { suspects.contains($0.to) }, "a suspect was asked to relay")
    }
}

@Suite("Lifeguard local health")
struct LocalHealthTests {
    @Test("a failed probe costs 1 plus every nack that did not come", arguments: [(0, 3), (1, 2), (2, 1)])
    func failedProbeCost(nacks: Int, expectedHealth: Int) {
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5]))
        let ping = d.stepUntilPing()
        d.run(until: ping.time + 0.4)
        let relays = d.log.map(\.directive).pingRequests.map(\.to)
        #expect(relays.count == 2)
        for relay in relays.prefix(nacks) {
            d.receive(.nack(sequence: ping.sequence, claims: []), from: relay, at: ping.time + 0.9)
        }
        d.run(until: ping.time + 1)
        #expect(d.instance.stats.failedProbes == 1)
        #expect(d.instance.localHealth == expectedHealth)
    }

    @Test("a failed probe of a member someone else already suspects costs only the missing nacks")
    func corroboratedFailureIsFree() {
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5]))
        d.receive(.gossip(claims: [Fixture.suspect(2, by: 3), Fixture.suspect(4, by: 3), Fixture.suspect(5, by: 3)]),
                  from: Fixture.id(3), at: 0.1)
        d.responsive = [Fixture.id(3)]
        // A probe of a suspect: its only relay is the live member not under suspicion (3), which nacks.
        var ping = d.stepUntilPing()
        while ping.to == Fixture.id(3) { d.run(until: ping.time + 1); ping = d.stepUntilPing() }
        d.run(until: ping.time + 0.5)
        d.receive(.nack(sequence: ping.sequence, claims: []), from: Fixture.id(3), at: ping.time + 0.5)
        d.run(until: ping.time + 1)
        #expect(d.instance.stats.failedProbes == 1)
        #expect(d.instance.localHealth == 0)
    }

    @Test("a failed probe with nobody to ask costs 1")
    func failedProbeWithoutRelays() {
        var d = Driver(Fixture.instance(1, knowing: [2]))
        let ping = d.stepUntilPing()
        d.run(until: ping.time + 1)
        #expect(d.log.map(\.directive).pingRequests.isEmpty)
        #expect(d.instance.stats.failedProbes == 1)
        #expect(d.instance.localHealth == 1)
    }

    @Test("a tombstone after a quiet minute is no pause: probes go on every period (issue 19's detection tail)")
    func firstTombstoneIsNoPause() {
        // Idle timers (the reconnect attempt, due only once a tombstone exists) fall behind while
        // nothing is failed. The first tombstone made that stale time the deadline promised,
        // the next tick looked a minute late, and every deadline, probes included, moved a minute ahead.
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5, 6]))
        d.responsive = Set([2, 3, 4, 5, 6].map(Fixture.id))
        d.run(until: 60)
        d.receive(.gossip(claims: [Fixture.left(6)]), from: Fixture.id(2), at: 60.05)
        d.run(until: 70)
        #expect(d.instance.stats.pausesDetected == 0)
        #expect(d.instance.localHealth == 0)
        #expect(d.pings.filter { $0.time > 60.05 }.count >= 9, "one probe a second after the leave")
    }

    @Test("a tick more than a probe interval later than the deadline given is a pause: +1 health, and the probe's deadlines move by the lateness")
    func pauseByLateness() {
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5]))  // nobody answers
        let ping = d.stepUntilPing()
        #expect(d.instance.nextDeadline.isClose(to: ping.time + 0.4), "the indirect stage is due next")
        // Stopped for 2.5 s past that deadline: without the shift the probe would end (and fail) at
        // once; shifted, it is at its indirect stage and nobody is suspected.
        d.tick(at: ping.time + 0.4 + 2.5)
        #expect(d.instance.stats.pausesDetected == 1)
        #expect(d.instance.localHealth == 1)
        #expect(d.instance.stats.failedProbes == 0)
        #expect(d.instance.stats.indirectProbes == 1)
    }

    @Test("a tick up to a probe interval late, or after a long idle stretch, is no pause")
    func noPauseWhenOnTime() {
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5]))
        d.responsive = Set([2, 3, 4, 5].map(Fixture.id))
        d.run(until: 30)
        d.tick(at: d.instance.nextDeadline + 0.9)
        d.run(until: 60)
        #expect(d.instance.stats.pausesDetected == 0)
        #expect(d.instance.localHealth == 0)
    }

    @Test("idle gossip rounds need no tick: with nothing queued the next deadline is the probe's, and a queued claim waits for the next round on the grid")
    func idleRoundsSkipped() {
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5]))
        d.responsive = Set([2, 3, 4, 5].map(Fixture.id))
        d.run(until: 30)  // every join claim has been sent its retransmit limit: the queue is empty
        #expect(d.instance.pendingClaims == 0)
        let ticksBefore = d.ticks
        d.run(until: 40)
        // Only probe steps tick: about one per second, not four gossip rounds a second.
        #expect(d.ticks - ticksBefore <= 11, "\(d.ticks - ticksBefore) ticks in 10 s")
        // A claim arriving between rounds goes out at the next grid point, not at once.
        let gossipGrid = d.instance.nextGossipRound
        d.receive(.gossip(claims: [Fixture.alive(6)]), from: Fixture.id(2), at: 40.01)
        #expect(d.instance.pendingClaims == 1)
        let round = d.instance.nextGossipRound
        #expect(round > 40.01 && round <= 40.01 + Fixture.hand.gossipInterval + 1e-9)
        #expect(abs((round - gossipGrid).remainder(dividingBy: Fixture.hand.gossipInterval)) < 1e-9, "on the same grid")
        #expect(d.instance.nextDeadline <= round)
    }

    @Test("local health is capped at maxLocalHealth")
    func capped() {
        var settings = Fixture.hand
        settings.maxLocalHealth = 4
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5], settings: settings))
        let first = d.stepUntilPing()
        d.run(until: first.time + 1)
        #expect(d.instance.localHealth == 3)
        // The second probe started at first + 1 with a 4 s period; it fails too (+3, capped).
        d.run(until: first.time + 5 + 0.01)
        #expect(d.instance.stats.failedProbes == 2)
        #expect(d.instance.localHealth == 4)
        d.run(until: first.time + 5 + 5 + 0.01)
        #expect(d.instance.stats.failedProbes == 3)
        #expect(d.instance.localHealth == 4)
    }

    @Test("health stretches the probe interval by (1 + health) and acks bring it back down")
    func stretchesInterval() {
        // The failed probe's suspicion must not run out within the window: its verification's
        // ack would lower health outside the probe slot.
        var settings = Fixture.withoutDirectRetry
        settings.suspicionMultiplier = 10
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5], settings: settings))
        let first = d.stepUntilPing()
        // The first probe gets no answer at all (no nacks either): health 1 + 2 = 3. Everyone answers afterwards.
        d.responsive = Set([2, 3, 4, 5].map(Fixture.id))
        d.run(until: first.time + 1)
        // 1 + 2 missed nacks = 3, then 1 less for the next probe, acked at once in the same tick.
        #expect(d.instance.localHealth == 2)
        #expect(d.instance.stats.failedProbes == 1)
        d.run(until: first.time + 12)
        let times = d.pings.map(\.time)
        let gaps = zip(times, times.dropFirst()).map { $1 - $0 }
        // Each period was fixed when its ping went out: health 0, 3, 2, 1, 0 (each ack lowers it by one).
        let expected: [Double] = [1, 4, 3, 2, 1]
        #expect(gaps.count >= expected.count)
        for (gap, want) in zip(gaps, expected) { #expect(gap.isClose(to: want), "gaps \(gaps)") }
        #expect(d.instance.localHealth == 0)
    }

    @Test("the direct probe timeout stretches with health too")
    func stretchesTimeout() {
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5], settings: Fixture.withoutDirectRetry))
        let first = d.stepUntilPing()
        d.run(until: first.time + 1)  // fails: health 3; the next ping went out at first + 1
        let second = d.pings[1]
        #expect(second.time.isClose(to: first.time + 1))
        d.run(until: second.time + 4 * 0.4 - 1e-6)
        let before = d.log.filter { $0.time > second.time }.map(\.directive).pingRequests
        #expect(before.isEmpty)
        d.run(until: second.time + 4 * 0.4)
        let after = d.log.filter { $0.time > second.time }.map(\.directive).pingRequests
        #expect(after.count == 2)
    }

    /// Regression: nacks used to be counted per message, so a duplicate (or a stranger's) nack could hide a
    /// relay's missing one; now each relay asked counts once.
    @Test("a duplicated nack from one relay does not stand in for the other relay's missing nack")
    func duplicatedNackCountsOnce() throws {
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5]))
        let ping = d.stepUntilPing()
        d.run(until: ping.time + 0.4)
        let relays = d.log.map(\.directive).pingRequests.map(\.to)
        try #require(relays.count == 2)
        d.receive(.nack(sequence: ping.sequence, claims: []), from: relays[0], at: ping.time + 0.85)
        d.receive(.nack(sequence: ping.sequence, claims: []), from: relays[0], at: ping.time + 0.86)  // the network duplicated it
        let bystander = try #require([2, 3, 4, 5].map(Fixture.id).first { $0 != ping.to && !relays.contains($0) })
        d.receive(.nack(sequence: ping.sequence, claims: []), from: bystander, at: ping.time + 0.87)  // never asked
        d.run(until: ping.time + 1)
        #expect(d.instance.localHealth == 2, "1 for the failed probe + 1 for the relay that never answered")
    }

    /// With the shipped settings (probeTimeout = probeInterval / 2) a relay asked at probeTimeout that waited a
    /// full probeTimeout would nack just after the period ended, and a healthy origin whose relays all answered
    /// would be charged 1 + k instead of 1; relays therefore nack at 0.8 × probeTimeout.
    @Test("nacks from relays that answered in time are counted with the .lan settings")
    func nacksArriveInTimeWithLanSettings() throws {
        let settings = MembershipSettings.lan
        let everyone: [UInt8] = [1, 2, 3, 4]
        var origin = Driver(Fixture.instance(1, knowing: everyone, settings: settings))
        let ping = origin.stepUntilPing()
        origin.run(until: ping.time + settings.probeTimeout)
        let requests = origin.log.map(\.directive).pingRequests
        try #require(requests.count == 2)
        let latency = 0.001
        var rng = SplitMix(seed: 3)
        var nackTimes: [(Double, PeerID)] = []
        for request in requests {
            let k = everyone.first { Fixture.id($0) == request.to }!
            let t = origin.now + latency
            var relay = Fixture.instance(k, knowing: everyone, settings: settings, now: t)
            _ = relay.receive(.pingRequest(sequence: request.sequence, target: request.target, address: request.address, claims: []),
                              from: origin.me, address: "", now: t, rng: &rng)
            let nackAt = t + 0.8 * settings.probeTimeout
            #expect(!relay.tick(now: nackAt, rng: &rng).nacks.isEmpty)
            nackTimes.append((nackAt + latency, request.to))
        }
        for (time, relay) in nackTimes.sorted(by: { $0.0 < $1.0 }) {
            origin.run(until: time)
            origin.receive(.nack(sequence: ping.sequence, claims: []), from: relay, at: time)
        }
        origin.run(until: ping.time + settings.probeInterval + 0.01)
        #expect(origin.instance.stats.failedProbes == 1)
        #expect(origin.instance.localHealth == 1)
    }
}
