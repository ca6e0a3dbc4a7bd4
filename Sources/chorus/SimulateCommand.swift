import ArgumentParser
import ChorusMembership
import ChorusSimulation
import Foundation

struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Run experiments on many simulated peers in one process (virtual time, seeded network).",
        subcommands: [SimulateRun.self, SimulateMembership.self, SimulateFuzz.self],
        defaultSubcommand: SimulateRun.self
    )
}

struct SimulateMembership: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "membership",
        abstract: "Measure failure detection, leave and join propagation, and false failures of the membership protocol.",
        discussion: """
            Runs the real membership state machine (SWIM + Lifeguard, signed claims) \
            for every member on a virtual clock; the network delivers each message \
            after 0.5–2 ms, loses a fraction of them, and reproduces from --seed.

              detection        a member crashes: when does each other member
                               mark it failed?
              leave            a member leaves gracefully: when is it "left"
                               everywhere?
              join             a new member joins through a random one: when
                               does everyone list it?
              false-positives  nobody crashes; --loss of the messages are lost
                               and --paused of the members stop for
                               --pause-seconds at random moments. Every failure
                               declared is false; each is listed with its
                               suspicion and the subject's last pause.
              revocation       the network authority revokes a member through
                               another (not run by default); --loss of the
                               messages are lost: when does every other member
                               hold it revoked?

            The figures in docs/membership.md come from a release build; that page lists \
            the exact commands, for example:
              chorus simulate membership --members 256 --seconds 3600
            (the simulated hour takes about 2.5 minutes on one core).
            """
    )

    @Option(help: "Members in the simulated network.")
    var members = 256

    @Option(help: "Settings profile: lan | fast | memberlist-lan (hashicorp/memberlist's LAN defaults, for comparison).")
    var profile = "lan"

    @Option(help: "Trials (crashes, leaves, joins) per experiment.")
    var trials = 5

    @Option(help: "Experiments to run, comma-separated: detection,leave,join,false-positives,revocation.")
    var experiments = "detection,leave,join,false-positives"

    @Option(parsing: .unconditional, help: "Simulated seconds for false-positives.")
    var seconds: Double = 600

    @Option(parsing: .unconditional, help: "Fraction of messages lost in false-positives and revocation.")
    var loss = 0.05

    @Option(parsing: .unconditional, help: "Fraction of members that pause in false-positives.")
    var paused = 0.1

    @Option(parsing: .unconditional, help: "Length of each pause (seconds).")
    var pauseSeconds: Double = 2

    @Option(parsing: .unconditional, help: "Mean seconds between two pauses of one pausing member.")
    var pauseEvery: Double = 30

    @Option(help: "Seed of the simulated network.")
    var seed: UInt64 = 1

    func validate() throws {
        guard members >= 3 else { throw ValidationError("--members must be at least 3, got \(members)") }
        guard trials >= 1 else { throw ValidationError("--trials must be at least 1") }
        guard (0..<1).contains(loss) else { throw ValidationError("--loss must be a probability in [0, 1), got \(loss)") }
        try checkNumber(paused, option: "--paused", in: 0...1, unit: "members (a fraction)")
        try checkNumber(seconds, option: "--seconds", in: 0...maxRunSeconds, excludingLower: true, unit: "seconds")
        try checkNumber(pauseSeconds, option: "--pause-seconds", in: 0...3600, excludingLower: true, unit: "seconds")
        try checkNumber(pauseEvery, option: "--pause-every", in: 0...maxRunSeconds, excludingLower: true, unit: "seconds")
        guard settings != nil else { throw ValidationError("--profile: expected lan, fast or memberlist-lan, got \"\(profile)\"") }
        let known: Set<String> = ["detection", "leave", "join", "false-positives", "revocation"]
        for e in experimentList where !known.contains(e) {
            throw ValidationError("--experiments: unknown experiment \"\(e)\" (known: \(known.sorted().joined(separator: ", ")))")
        }
    }

    var settings: MembershipSettings? {
        ["lan": MembershipSettings.lan, "fast": .fast, "memberlist-lan": .memberlistLAN][profile]
    }

    var experimentList: [String] { experiments.split(separator: ",").map { String($0).trimmingCharacters(in: .whitespaces) } }

    func run() throws {
        let settings = settings!
        print("membership simulation: \(members) members, profile \(profile) (probe \(settings.probeInterval) s, timeout \(settings.probeTimeout) s), seed \(seed)")
        for experiment in experimentList {
            let start = Date()
            switch experiment {
            case "detection":
                let r = MembershipExperiments.detection(members: members, settings: settings, trials: trials, seed: seed)
                print(String(format: "detection        crash → marked failed by each live member: median %.2f s, p99 %.2f s, max %.2f s; never: %d of %d",
                             r.times.median, r.times.quantile(0.99), r.times.values.max() ?? .nan, r.missed, r.missed + r.times.count))
            case "leave":
                let r = MembershipExperiments.leave(members: members, settings: settings, trials: trials, seed: seed)
                let within2 = Double(r.times.values.filter { $0 <= 2 }.count) / Double(max(1, r.times.count + r.missed))
                print(String(format: "leave            recorded as left: median %.2f s, p99 %.2f s, max %.2f s; within 2 s: %.2f %%; recorded as failed: %d",
                             r.times.median, r.times.quantile(0.99), r.times.values.max() ?? .nan, within2 * 100, r.recordedAsFailed))
            case "join":
                let r = MembershipExperiments.join(members: members, settings: settings, trials: trials, seed: seed)
                print(String(format: "join             listed by each member: median %.2f s, p99 %.2f s, max %.2f s; never: %d",
                             r.times.median, r.times.quantile(0.99), r.times.values.max() ?? .nan, r.missed))
            case "revocation":
                let r = MembershipExperiments.revocation(members: members, settings: settings, trials: trials, seed: seed,
                                                         network: NetworkModel(loss: loss))
                print(String(format: "revocation       held revoked by each other member (%.0f %% loss): median %.2f s, p99 %.2f s, max %.2f s; never: %d of %d",
                             loss * 100, r.times.median, r.times.quantile(0.99), r.times.values.max() ?? .nan, r.missed, r.missed + r.times.count))
            case "false-positives":
                let r = MembershipExperiments.falsePositives(
                    members: members, settings: settings, seconds: seconds, loss: loss, pausedFraction: paused,
                    pauseLength: pauseSeconds, pauseEvery: pauseEvery, seed: seed
                ) { t in
                    Progress.line(String(format: "  false-positives: %.0f of %.0f simulated seconds", t, seconds), transient: true)
                }
                Progress.finish()
                print(String(format: "false-positives  %.0f s simulated, %.0f %% loss, %.0f %% of members paused %.1f s every ~%.0f s (%d pauses): %d false failure declarations, %d suspicions, %d refutations",
                             r.simulatedSeconds, loss * 100, paused * 100, pauseSeconds, pauseEvery, r.pauses, r.falseFailures, r.suspicions, r.refutations))
                for detail in r.details { print("                 \(detail)") }
            default:
                break
            }
            FileHandle.standardError.write(Data(String(format: "  (%@ took %.0f s of wall time)\n", experiment, Date().timeIntervalSince(start)).utf8))
        }
    }
}
