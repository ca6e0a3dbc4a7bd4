import ChorusCrypto
import ChorusLearning
import ChorusMembership

/// The membership experiments behind docs/membership.md; `chorus simulate membership` runs them.
public enum MembershipExperiments {
    public struct Distribution: Sendable, CustomStringConvertible {
        public var values: [Double]
        public var count: Int { values.count }
        public func quantile(_ q: Double) -> Double {
            guard !values.isEmpty else { return .nan }
            let sorted = values.sorted()
            return sorted[min(sorted.count - 1, Int((q * Double(sorted.count - 1)).rounded()))]
        }
        public var median: Double { quantile(0.5) }
        public var description: String {
            String(format: "n=%d median %.2f s, p99 %.2f s, max %.2f s", count, median, quantile(0.99), values.max() ?? .nan)
        }
    }

    /// `members` that all know each other, recording only the events the experiments count.
    private static func steadyNetwork(members: Int, settings: MembershipSettings, network: NetworkModel,
                                      seed: UInt64) -> MembershipSimulation {
        let sim = MembershipSimulation(settings: settings, network: network, seed: seed)
        sim.recordAllObservations = false
        sim.bootstrap(count: members)
        return sim
    }

    /// Crash one member per trial; the time until each live member marks it failed.
    /// Missing observers (never noticed) are reported separately.
    public static func detection(members: Int, settings: MembershipSettings, trials: Int, seed: UInt64,
                                 network: NetworkModel = .init()) -> (times: Distribution, missed: Int) {
        var times: [Double] = []
        var missed = 0
        for trial in 0..<trials {
            let sim = steadyNetwork(members: members, settings: settings, network: network, seed: seed &+ UInt64(trial))
            let victim = sim.order[trial % members]
            let crashAt = 20.0
            sim.crash(victim, at: crashAt)
            sim.run(until: crashAt + 40)
            let seen = sim.firstTimes(of: victim, after: crashAt) { if case .failed(victim) = $0 { return true }; return false }
            times += seen.values.map { $0 - crashAt }
            missed += (members - 1) - seen.count
        }
        return (Distribution(values: times), missed)
    }

    public struct FalsePositiveReport: Sendable {
        public var simulatedSeconds: Double
        public var falseFailures: Int
        public var suspicions: Int
        public var refutations: Int
        public var pauses: Int
        public var messagesLost: Int
        public var messagesDelivered: Int
        /// One entry per member that was declared failed, to see why.
        public var details: [FalseFailure]
    }

    public struct FalseFailure: Sendable, CustomStringConvertible {
        public var subject: PeerID
        /// When the first member declared it failed, and how many did.
        public var firstDeclared: Double
        public var declaredBy: Int
        /// When the suspicion that led to it was first raised, and by how many distinct accusers.
        public var suspectedAt: Double?
        public var accusers: Int
        /// The subject's last pause that began before the declaration, if any.
        public var lastPause: (start: Double, end: Double)?

        public var description: String {
            var s = String(format: "%@ declared failed at %.2f s by %d member(s)", subject.short, firstDeclared, declaredBy)
            if let suspectedAt { s += String(format: "; suspected from %.2f s by %d accuser(s)", suspectedAt, accusers) }
            if let p = lastPause { s += String(format: "; last paused %.2f–%.2f s", p.start, p.end) } else { s += "; never paused" }
            return s
        }
    }

    /// No crashes at all: every failure declaration is false. `pausedFraction` of the members
    /// stop for `pauseLength` seconds at random moments (on average every `pauseEvery` seconds).
    public static func falsePositives(members: Int, settings: MembershipSettings, seconds: Double, loss: Double,
                                      pausedFraction: Double, pauseLength: Double, pauseEvery: Double, seed: UInt64,
                                      progress: ((Double) -> Void)? = nil) -> FalsePositiveReport {
        let sim = steadyNetwork(members: members, settings: settings, network: NetworkModel(loss: loss), seed: seed)
        var rng = SplitMix64(seed: seed ^ 0x5eed)  // scenario randomness, apart from the network's
        let pausing = Array(sim.order.prefix(Int((Double(members) * pausedFraction).rounded())))
        var pauses = 0
        var pauseWindows: [PeerID: [(start: Double, end: Double)]] = [:]
        for id in pausing {
            var t = Double.random(in: 0..<pauseEvery, using: &rng)
            while t < seconds {
                sim.pause(id, at: t, for: pauseLength)
                pauses += 1
                pauseWindows[id, default: []].append((t, t + pauseLength))
                t += pauseLength + Double.random(in: 0.5...1.5, using: &rng) * pauseEvery
            }
        }
        var t = 0.0
        while t < seconds {
            t = min(seconds, t + 60)
            sim.run(until: t)
            progress?(t)
        }
        var failures: [PeerID: [Double]] = [:]
        for o in sim.observations { if case let .failed(subject) = o.event { failures[subject, default: []].append(o.time) } }
        let details = failures.map { subject, times in
            let first = times.min()!
            // The suspicion episode behind it: suspect events in the half minute before.
            let suspicions = sim.observations.compactMap { o -> (Double, PeerID)? in
                if case let .suspected(s, by) = o.event, s == subject, o.time <= first, o.time > first - 30 { return (o.time, by) }
                return nil
            }
            return FalseFailure(subject: subject, firstDeclared: first, declaredBy: times.count,
                                suspectedAt: suspicions.map(\.0).min(), accusers: Set(suspicions.map(\.1)).count,
                                lastPause: pauseWindows[subject]?.last { $0.start <= first })
        }.sorted { $0.firstDeclared < $1.firstDeclared }
        let falseFailures = failures.values.reduce(0) { $0 + $1.count }
        let stats = sim.order.map { sim.nodes[$0]!.instance.stats }
        return FalsePositiveReport(
            simulatedSeconds: seconds, falseFailures: falseFailures,
            suspicions: stats.reduce(0) { $0 + $1.suspicionsRaised }, refutations: stats.reduce(0) { $0 + $1.refutations },
            pauses: pauses, messagesLost: sim.messagesLost, messagesDelivered: sim.messagesDelivered, details: details)
    }

    /// One member leaves gracefully per trial; when each other member records it as "left".
    public static func leave(members: Int, settings: MembershipSettings, trials: Int, seed: UInt64,
                             network: NetworkModel = .init()) -> (times: Distribution, missed: Int, recordedAsFailed: Int) {
        var times: [Double] = []
        var missed = 0
        var asFailed = 0
        for trial in 0..<trials {
            let sim = steadyNetwork(members: members, settings: settings, network: network, seed: seed &+ UInt64(trial))
            let leaver = sim.order[trial % members]
            sim.leave(leaver, at: 20)
            sim.run(until: 40)
            let seen = sim.firstTimes(of: leaver, after: 20) { if case .left(leaver) = $0 { return true }; return false }
            asFailed += sim.firstTimes(of: leaver, after: 20) { if case .failed(leaver) = $0 { return true }; return false }.count
            times += seen.values.map { $0 - 20 }
            missed += (members - 1) - seen.count
        }
        return (Distribution(values: times), missed, asFailed)
    }

    /// The authority revokes one member per trial, through another member; when each other
    /// member holds it revoked (the spread time docs/security.md states).
    public static func revocation(members: Int, settings: MembershipSettings, trials: Int, seed: UInt64,
                                  network: NetworkModel = .init()) -> (times: Distribution, missed: Int) {
        var times: [Double] = []
        var missed = 0
        for trial in 0..<trials {
            let sim = steadyNetwork(members: members, settings: settings, network: network, seed: seed &+ UInt64(trial))
            let revoked = sim.order[trial % members]
            sim.revoke(revoked, through: sim.order[(trial * 7 + 1) % members], at: 20)
            sim.run(until: 40)
            let seen = sim.firstTimes(of: revoked, after: 20) { if case .revoked(revoked) = $0 { return true }; return false }
            times += seen.values.map { $0 - 20 }
            missed += (members - 1) - seen.count
        }
        return (Distribution(values: times), missed)
    }

    /// A new member joins through a random member per trial; when each member first lists it.
    public static func join(members: Int, settings: MembershipSettings, trials: Int, seed: UInt64,
                            network: NetworkModel = .init()) -> (times: Distribution, missed: Int) {
        var times: [Double] = []
        var missed = 0
        for trial in 0..<trials {
            let sim = steadyNetwork(members: members, settings: settings, network: network, seed: seed &+ UInt64(trial))
            let newcomer = sim.addNode()
            let seedMember = sim.order[(trial * 7) % members]
            sim.join(newcomer, through: seedMember, at: 20)
            sim.run(until: 40)
            let seen = sim.firstTimes(of: newcomer, after: 20) { if case .joined(newcomer, _) = $0 { return true }; return false }
            times += seen.values.map { $0 - 20 }
            missed += members - seen.count
        }
        return (Distribution(values: times), missed)
    }
}
