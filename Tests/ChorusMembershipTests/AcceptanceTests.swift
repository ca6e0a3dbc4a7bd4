import Testing
@testable import ChorusMembership
@testable import ChorusSimulation

/// The membership targets, checked in virtual time at a size CI can afford (64 members;
/// docs/membership.md has the 256-member figures from `chorus simulate membership`). Virtual time
/// is exact and seeded, so these are deterministic, not wall-clock, assertions.
@Suite("membership acceptance in simulation")
struct MembershipAcceptanceTests {
    @Test("a crash is marked failed by every live member, median ≤ 6 s and p99 ≤ 10 s")
    func crashDetection() {
        let r = MembershipExperiments.detection(members: 64, settings: .lan, trials: 2, seed: 7)
        #expect(r.missed == 0)
        #expect(r.times.median <= 6, "\(r.times)")
        #expect(r.times.quantile(0.99) <= 10, "\(r.times)")
    }

    @Test("memberlist's LAN defaults are markedly slower at the same size (the baseline we improve on)")
    func memberlistBaseline() {
        let ours = MembershipExperiments.detection(members: 64, settings: .lan, trials: 1, seed: 3)
        let theirs = MembershipExperiments.detection(members: 64, settings: .memberlistLAN, trials: 1, seed: 3)
        #expect(theirs.times.median > 1.5 * ours.times.median, "ours \(ours.times), memberlist \(theirs.times)")
    }

    @Test("a graceful leave is seen as left (never failed) by every member within 2 s")
    func leave() {
        let r = MembershipExperiments.leave(members: 64, settings: .lan, trials: 2, seed: 7)
        #expect(r.missed == 0 && r.recordedAsFailed == 0)
        #expect(r.times.values.allSatisfy { $0 <= 2 }, "\(r.times)")
    }

    @Test("a revocation handed to one member is held by every other member within 2 s, also at 5 % loss")
    func revocation() {
        for loss in [0, 0.05] {
            let r = MembershipExperiments.revocation(members: 64, settings: .lan, trials: 2, seed: 7, network: NetworkModel(loss: loss))
            #expect(r.missed == 0, "loss \(loss)")
            #expect(r.times.values.allSatisfy { $0 <= 2 }, "loss \(loss): \(r.times)")
        }
    }

    @Test("a join reaches every member's view within 3 s")
    func join() {
        let r = MembershipExperiments.join(members: 64, settings: .lan, trials: 2, seed: 7)
        #expect(r.missed == 0)
        #expect(r.times.values.allSatisfy { $0 <= 3 }, "\(r.times)")
    }

    @Test("no false failure with 5 % loss while 10 % of members pause for 2 s")
    func noFalseFailures() {
        let r = MembershipExperiments.falsePositives(members: 64, settings: .lan, seconds: 300, loss: 0.05,
                                                     pausedFraction: 0.1, pauseLength: 2, pauseEvery: 20, seed: 7)
        #expect(r.falseFailures == 0, "\(r)")
        #expect(r.suspicions > 0, "the scenario must actually provoke suspicions")
        #expect(r.pauses > 50)
    }

    @Test("each false failure is reported with its suspicion and the subject's last pause")
    func falseFailureDetails() throws {
        // Pauses of 20 s outlast any suspicion timeout of .fast: the paused members are declared failed.
        let r = MembershipExperiments.falsePositives(members: 16, settings: .fast, seconds: 60, loss: 0,
                                                     pausedFraction: 0.25, pauseLength: 20, pauseEvery: 30, seed: 3)
        #expect(r.falseFailures > 0)
        #expect(r.details.reduce(0) { $0 + $1.declaredBy } == r.falseFailures)
        #expect(Set(r.details.map(\.subject)).count == r.details.count, "one entry per member")
        for detail in r.details {
            let pause = try #require(detail.lastPause, "\(detail)")
            #expect(pause.start < detail.firstDeclared && detail.firstDeclared < pause.end, "declared during its pause: \(detail)")
            let suspected = try #require(detail.suspectedAt, "\(detail)")
            #expect(suspected >= pause.start && suspected < detail.firstDeclared)
            #expect(detail.accusers >= 1)
            #expect(detail.description.contains(detail.subject.short) && detail.description.contains("last paused"))
        }
    }
}
