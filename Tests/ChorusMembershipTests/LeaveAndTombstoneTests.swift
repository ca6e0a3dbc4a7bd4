import ChorusCrypto
import Testing
@testable import ChorusMembership
@testable import ChorusSimulation

@Suite("Leaving and tombstones")
struct LeaveAndTombstoneTests {
    @Test("leave sends signed left claims; receivers record left, never failed; the leaver stops probing")
    func leaveIsNotFailure() throws {
        let b = Fixture.id(2)
        var alice = Driver(Fixture.instance(1, knowing: [1, 2, 3]))
        alice.responsive = [Fixture.id(3)]
        var bob = Driver(Fixture.instance(2, knowing: [1, 2, 3]), seed: 2)
        alice.run(until: 0.5)
        bob.run(until: 0.5)

        let out = bob.leave(at: 0.5)
        #expect(bob.instance.isLeaving)
        #expect(bob.instance.status(of: b) == .left)
        #expect(Set(out.sends.map(\.to)) == [Fixture.id(1), Fixture.id(3)])
        for send in out.sends {
            guard case let .gossip(claims) = send.message else { Issue.record("leave sends gossip, got \(send.message)"); continue }
            let left = try #require(claims.first)
            #expect(left.status == .left && left.subject == b && left.incarnation == Fixture.base)
            #expect(left.signer == b && left.signatureIsValid())
        }
        #expect(bob.leave(at: 0.6).isEmpty, "leaving twice does nothing")

        let message = try #require(out.sends.first { $0.to == alice.me }).message
        #expect(alice.receive(message, from: b, at: 0.51).events == [.left(b)])
        #expect(alice.instance.status(of: b) == .left)
        #expect(!alice.instance.liveMembers.contains(b))

        // An accusation arriving later (same incarnation) cannot turn "left" into "failed".
        #expect(alice.receive(.gossip(claims: [Fixture.failed(2, by: 3), Fixture.suspect(2, by: 3)]), from: Fixture.id(3), at: 0.6).events.isEmpty)
        #expect(alice.instance.status(of: b) == .left)

        alice.run(until: 25)
        bob.run(until: 10)
        #expect(!alice.events.contains { $0.event == .failed(b) || $0.event == .suspected(b, by: alice.me) })
        #expect(!alice.pings.contains { $0.time > 0.51 && $0.to == b }, "nobody probes a member that left")
        #expect(!bob.pings.contains { $0.time >= 0.5 }, "the leaver stops probing")
        #expect(bob.instance.nextDeadline > 0.5)
    }

    @Test("a left claim cancels a running suspicion, so the member is never declared failed")
    func leaveCancelsSuspicion() {
        let b = Fixture.id(2)
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5]))
        d.responsive = Set([3, 4, 5].map(Fixture.id))
        d.receive(.gossip(claims: [Fixture.suspect(2, by: 3)]), from: Fixture.id(3), at: 0.1)
        #expect(d.instance.status(of: b) == .suspect)
        #expect(d.receive(.gossip(claims: [Fixture.left(2)]), from: Fixture.id(3), at: 1).events == [.left(b)])
        d.run(until: 20)
        #expect(d.firstTime(of: .failed(b)) == nil)
        #expect(d.instance.status(of: b) == .left)
    }

    /// Regression: `leave` sends `[claim] + takeClaims(...)`, and `takeClaims` used to pick the freshly queued
    /// copy too, so every leave message carried the left claim twice.
    @Test("the leave messages carry the left claim once, not twice")
    func leaveClaimNotDuplicated() {
        var bob = Fixture.instance(2, knowing: [1, 2, 3])
        var rng = SplitMix(seed: 1)
        let out = bob.leave(now: 0.5, rng: &rng)
        #expect(out.sends.count == 2)
        let copies = out.sends.map { $0.message.claims.filter { $0.status == .left && $0.subject == Fixture.id(2) }.count }
        #expect(copies.allSatisfy { $0 == 1 }, "copies of the left claim per message: \(copies)")
    }

    @Test("in a simulation every member records a graceful leave as left and none as failed")
    func leaveInSimulation() {
        let result = MembershipExperiments.leave(members: 8, settings: .fast, trials: 2, seed: 4)
        #expect(result.missed == 0)
        #expect(result.recordedAsFailed == 0)
        #expect(result.times.values.allSatisfy { $0 < 1 })
    }

    enum Ending: String, CaseIterable { case failed, left }

    @Test("a failed or left member is removed when tombstoneTimeout runs out, not before", arguments: Ending.allCases)
    func tombstoneExpires(ending: Ending) throws {
        let b = Fixture.id(2)
        var d = Driver(Fixture.instance(1, knowing: [2, 3]))
        d.responsive = [Fixture.id(3)]
        d.run(until: 1)
        let claim = ending == .failed ? Fixture.failed(2, by: 3) : Fixture.left(2)
        let events = d.receive(.gossip(claims: [claim]), from: Fixture.id(3), at: 1).events
        #expect(events == [ending == .failed ? .failed(b) : .left(b)])

        d.run(until: 1 + 30 - 1e-6)
        #expect(d.firstTime(of: .removed(b)) == nil, "not before tombstoneTimeout")
        #expect(d.instance.status(of: b) == (ending == .failed ? .failed : .left))
        d.run(until: 1 + 30 + 0.5)
        // The expiry is a deadline of its own: removed at 31 s exactly, not at some later tick.
        let removedAt = try #require(d.firstTime(of: .removed(b)))
        #expect(abs(removedAt - 31) < 1e-9)
        #expect(d.instance.status(of: b) == nil)
        #expect(d.events.filter { $0.event == .removed(b) }.count == 1)
    }

    @Test("an old alive claim arriving while the tombstone exists does not resurrect the member", arguments: Ending.allCases)
    func tombstoneBlocksStaleAlive(ending: Ending) {
        let b = Fixture.id(2)
        var d = Driver(Fixture.instance(1, knowing: [2, 3]))
        d.responsive = [Fixture.id(3)]
        let claim = ending == .failed ? Fixture.failed(2, by: 3) : Fixture.left(2)
        d.receive(.gossip(claims: [claim]), from: Fixture.id(3), at: 0.5)
        d.run(until: 10)
        let stale = [Fixture.alive(2), Fixture.alive(2, incarnation: Fixture.base - 1)]
        let out = d.receive(.gossip(claims: stale), from: Fixture.id(3), at: 10)
        #expect(out.events.isEmpty)
        #expect(d.instance.status(of: b) == (ending == .failed ? .failed : .left))
        // The same holds in a full-state sync.
        d.receive(.sync(isResponse: true, claims: stale), from: Fixture.id(3), at: 10.1)
        #expect(d.instance.status(of: b) == (ending == .failed ? .failed : .left))
        d.run(until: 20)
        #expect(!d.events.contains { $0.event == .joined(b, address: Fixture.address(2)) })
    }

    /// Fuzz seed 1916 of generator version 8: a peer cut off during a mass crash, still
    /// verifying a crashed member when the others' tombstones of it expired, brought it back to
    /// all of them through its syncs, to be detected again.
    @Test("after its tombstone expires, a member is not brought back by a view that doubts it; a view that holds it alive brings it back (a long partition healing)",
          arguments: Ending.allCases)
    func forgottenStaysForgotten(ending: Ending) {
        let b = Fixture.id(2)
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4]))
        d.responsive = [Fixture.id(3), Fixture.id(4)]
        let claim = ending == .failed ? Fixture.failed(2, by: 3) : Fixture.left(2)
        d.receive(.gossip(claims: [claim]), from: Fixture.id(3), at: 1)
        d.run(until: 40)
        #expect(d.firstTime(of: .removed(b)) != nil && d.instance.status(of: b) == nil, "the tombstone expired at 31")
        // Member 4 missed the verdict and is still settling it: its view holds 2 suspect.
        let doubting = [Fixture.alive(4), Fixture.alive(2), Fixture.suspect(2, by: 4)]
        d.receive(.sync(isResponse: true, claims: doubting), from: Fixture.id(4), at: 40)
        #expect(d.instance.status(of: b) == nil, "brought back from the dead")
        #expect(d.instance.rejections.isEmpty, "nothing wrong was sent")
        // A view that holds 2 plainly alive (the other side of a partition longer than the tombstones).
        let out = d.receive(.sync(isResponse: true, claims: [Fixture.alive(2), Fixture.alive(4)]), from: Fixture.id(4), at: 41)
        #expect(out.events == [.joined(b, address: Fixture.address(2))])
        #expect(d.instance.status(of: b) == .alive)
    }

    @Test("a departure heard before the member itself leaves a tombstone that blocks its older alive claim")
    func tombstoneForStranger() {
        let z = Fixture.id(9)
        var d = Driver(Fixture.instance(1, knowing: [2]))
        #expect(d.receive(.gossip(claims: [Fixture.left(9)]), from: Fixture.id(2), at: 0.5).events.isEmpty)
        #expect(d.instance.status(of: z) == .left)
        #expect(d.receive(.gossip(claims: [Fixture.alive(9)]), from: Fixture.id(2), at: 0.6).events.isEmpty)
        #expect(d.instance.status(of: z) == .left)
    }

    @Test("a higher incarnation brings a failed member back as joined")
    func rejoinWithHigherIncarnation() {
        let b = Fixture.id(2)
        var d = Driver(Fixture.instance(1, knowing: [2, 3]))
        d.receive(.gossip(claims: [Fixture.failed(2, by: 3)]), from: Fixture.id(3), at: 0.5)
        let out = d.receive(.gossip(claims: [Fixture.alive(2, incarnation: Fixture.base + 1)]), from: Fixture.id(2), at: 0.6)
        #expect(out.events == [.joined(b, address: Fixture.address(2))])
        #expect(d.instance.status(of: b) == .alive)
        #expect(d.instance.members[b]?.incarnation == Fixture.base + 1)
    }
}
