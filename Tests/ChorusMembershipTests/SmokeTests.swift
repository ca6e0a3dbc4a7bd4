import ChorusCrypto
import Foundation
import Testing
@testable import ChorusMembership
@testable import ChorusSimulation

@Test("smoke: experiments at 256", .enabled(if: ProcessInfo.processInfo.environment["CHORUS_SMOKE"] != nil))
func smoke() {
    let t0 = Date()
    let d = MembershipExperiments.detection(members: 256, settings: .lan, trials: 4, seed: 1)
    print("detection", d.times, "missed", d.missed, Date().timeIntervalSince(t0))
    let m = MembershipExperiments.detection(members: 256, settings: .memberlistLAN, trials: 2, seed: 1)
    print("detection memberlist", m.times, "missed", m.missed, Date().timeIntervalSince(t0))
    let l = MembershipExperiments.leave(members: 256, settings: .lan, trials: 2, seed: 1)
    print("leave", l.times, "missed", l.missed, "asFailed", l.recordedAsFailed, Date().timeIntervalSince(t0))
    let j = MembershipExperiments.join(members: 256, settings: .lan, trials: 2, seed: 1)
    print("join", j.times, "missed", j.missed, Date().timeIntervalSince(t0))
    let f = MembershipExperiments.falsePositives(members: 256, settings: .lan, seconds: 120, loss: 0.05, pausedFraction: 0.1, pauseLength: 2, pauseEvery: 20, seed: 1)
    print("fp", f, Date().timeIntervalSince(t0))
}
