import ChorusCrypto
import Testing
@testable import ChorusMembership

@Suite("Probing")
struct ProbeTests {
    @Test("every live member is pinged exactly once per round, and rounds are reshuffled", arguments: [3, 8, 17])
    func everyMemberOncePerRound(n: Int) {
        let others = (2...UInt8(n + 1)).map { $0 }
        var d = Driver(Fixture.instance(1, knowing: others), seed: UInt64(n))
        d.responsive = Set(others.map(Fixture.id))
        let rounds = 4
        while d.pings.count < rounds * n { d.step() }
        let pings = Array(d.pings.prefix(rounds * n))
        let expected = Set(others.map(Fixture.id))
        var orders: [[PeerID]] = []
        for r in 0..<rounds {
            let round = pings[r * n..<(r + 1) * n].map(\.to)
            #expect(round.count == n)
            #expect(Set(round) == expected, "round \(r) must ping each member once")
            orders.append(round)
        }
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
            guard first.to != Fixture.id(returning) else { continue }  // must still be ahead in this round
            d.receive(.gossip(claims: [Fixture.failed(returning, by: 2)]), from: Fixture.id(2), at: first.time + 0.1)
            d.receive(.gossip(claims: [Fixture.alive(returning, incarnation: Fixture.base + 1)]), from: Fixture.id(returning),
                      at: first.time + 0.2)
            #expect(d.instance.status(of: Fixture.id(returning)) == .alive)
            while d.pings.count < others.count { d.step() }
            let round = d.pings.prefix(others.count).map(\.to)
            if Set(round).count != others.count { duplicated.append(returning) }
        }
        #expect(duplicated.isEmpty, "peers probed twice in one round after coming back: \(duplicated)")
    }

    @Test("two observers probe the same members in different orders")
    func observersDiffer() {
        let everyone = (1...13).map { UInt8($0) }
        func firstRound(of k: UInt8) -> [PeerID] {
            var d = Driver(Fixture.instance(k, knowing: everyone), seed: UInt64(k) * 7919)
            d.responsive = Set(everyone.filter { $0 != k }.map(Fixture.id))
            while d.pings.count < everyone.count - 1 { d.step() }
            return d.pings.map(\.to)
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
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5], settings: Fixture.withoutDirectRetry))
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
