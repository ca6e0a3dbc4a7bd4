import ArgumentParser
import ChorusAveraging
import ChorusCore
import ChorusCrypto
import ChorusLearning
import ChorusMembership
import ChorusRuns
import ChorusSimulation
import Foundation
import NIOConcurrencyHelpers

struct SimulateRun: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run N whole simulated peers under a churn schedule and write series.csv, events.csv and summary.json.",
        discussion: """
            Every simulated peer runs the same PeerInstance as a real peer (datagram \
            layer, membership, averaging, training) on a virtual clock. The network \
            delays each datagram (0.5 ms plus an exponential tail), loses --loss of \
            them, and the schedule crashes, restarts, partitions and adds peers. The \
            same --seed gives byte-identical output.

            Examples:
              chorus simulate --peers 64 --duration 300 --out runs/steady
              chorus simulate --peers 64 --duration 300 \\
                  --schedule scripts/schedules/replace-quarter.toml --seed 1 --out runs/rq
              chorus simulate --peers 1024 --duration 3600 --task membership \\
                  --loss 0.05 --crypto simulated --out runs/m1024
              chorus simulate --peers 16 --duration 60 --task average --mixing push-sum \\
                  --loss 0.2 --peer-loss p3=0.3:in --crypto simulated --out runs/avg
              chorus simulate --peers 16 --duration 40 --cosine-decay 0.85 --baseline \\
                  --crypto simulated --out runs/train16

            With --task average every peer starts from its own random vector and only \
            averages; series.csv's average_error is the largest distance of a peer's \
            estimate from the true average of the starting vectors (docs/averaging.md, \
            docs/convergence.md).

            The schedule is checked against --peers and --duration first: an action \
            naming a peer that does not exist by then (or has left), a count above the \
            live peers, or a crash or leave of every live peer stops the command with \
            the file and entry named; an action at or after the end is left out with a \
            warning, printed and kept in summary.json's "warnings".

            Outputs (docs/experiments.md): DIR/series.csv (one row per --sample-interval), \
            DIR/events.csv (each schedule action and when every live peer saw it), \
            DIR/summary.json, and DIR/convergence.png when python3-matplotlib is \
            installed (--no-plot to skip). A violated invariant (NaN, a bad mixing row, a member \
            declared failed while it runs) stops the run and is printed with the seed \
            and time; the exit status is then 1. Ctrl-C ends the run early and still \
            writes what was measured (exit status 130).

            On Linux the command restarts itself once with malloc settings that give \
            its heap huge pages (faster at thousands of peers, same output); \
            CHORUS_HUGE_PAGES=0 keeps the process as started.
            """
    )

    @Option(help: "Peers at the start.")
    var peers = 64

    @Option(parsing: .unconditional, help: "Simulated seconds.")
    var duration: Double = 300

    @Option(help: "Seed of the whole run (keys, network, schedule targets, batch order).")
    var seed: UInt64 = 1

    @Option(help: "Directory for series.csv, events.csv and summary.json (created).")
    var out: String

    @Option(help: "Churn schedule (TOML; see scripts/schedules/ and docs/experiments.md). Default: steady.")
    var schedule: String?

    @Option(help: "train (learn and average) | average (average random vectors, no training) | membership (membership only).")
    var task = "train"

    @Option(help: "Model: softmax | mlp | mlp:HIDDEN[:relu|tanh].")
    var model = "softmax"

    @Option(help: "Data partition: iid | dirichlet:ALPHA.")
    var partition = "iid"

    @Option(parsing: .unconditional, help: "Probability that a datagram is lost.")
    var loss = 0.0

    @Option(help: "real (libsodium) | simulated (free stand-ins of the same sizes; simulations only).")
    var crypto = "real"

    @Flag(inversion: .prefixedNo,
          help: "Per-pair session keys (gossip.session_keys, on by default): hellos carry each boot's key, and the rest travels sealed with the pair's keys, 34 bytes of header and tag (docs/protocol.md). --no-session-keys: everything under the network key, signed.")
    var sessionKeys = true

    @Option(parsing: .unconditional, help: "Seconds between rows of series.csv.")
    var sampleInterval: Double = 5

    @Option(parsing: .unconditional, help: "Seconds between gossip rounds of each peer.")
    var gossipInterval: Double = 0.1

    @OptionGroup var averaging: AveragingOptions

    @Option(help: "Seed of the data: the train/test split, the partition into shards and the shared starting parameters (chorus baseline's --seed).")
    var dataSeed: UInt64 = 1

    @Flag(help: "Also train the same model on the same data in one process (chorus baseline: centralised and data-parallel) and print its accuracy beside the peers'.")
    var baseline = false

    @Option(parsing: .unconditional, help: "Base learning rate of every peer's SGD.")
    var learningRate = LearningSettings().learningRate

    @Option(parsing: .unconditional, help: ArgumentHelp("Decay the learning rate to zero by a cosine over this fraction of the run (0: constant).", valueName: "fraction"))
    var cosineDecay: Double = 0

    @Option(help: ArgumentHelp("Lose only the traffic of these channels, comma-separated: parameters, membership, membership_sync, model_request, model (default: every datagram).", valueName: "channels"))
    var lossOnly: String?

    @OptionGroup(title: "Faults from the start (on top of the schedule)") var faults: FaultOptions

    @OptionGroup(title: "Network, clocks, membership timing and checks") var simulated: SimulatedFaultOptions

    @Option(help: ArgumentHelp("Poisoning insiders: the last COUNT starting peers send 10^30 for every value (huge), values uniform in ±1000 (random), or train with learning rate 100 (lr100). series.csv then describes the honest peers. docs/security.md.", valueName: "count:kind"))
    var byzantine: String?

    @Flag(help: "Record invariant violations in summary.json and go on instead of stopping.")
    var keepGoing = false

    @Flag(help: "Do not draw DIR/convergence.png (drawn with scripts/plot.py when python3-matplotlib is there).")
    var noPlot = false

    @Option(help: ArgumentHelp("Run again the run whose summary.json this is, with the options and the schedule text it recorded (give only --out and --no-plot besides): the same series.csv and events.csv, byte for byte.", valueName: "summary.json"))
    var replay: String?

    func validate() throws {
        guard peers >= 1 && peers <= 100_000 else { throw ValidationError("--peers must be between 1 and 100000, got \(peers)") }
        try checkNumber(duration, option: "--duration", in: 0...maxRunSeconds, excludingLower: true, unit: "seconds")
        guard (0..<1).contains(loss) else { throw ValidationError("--loss must be a probability in [0, 1), got \(loss)") }
        guard SimulationTask(rawValue: task) != nil else { throw ValidationError("--task: expected train, average or membership, got \"\(task)\"") }
        guard CryptoMode(rawValue: crypto) != nil else { throw ValidationError("--crypto: expected real or simulated, got \"\(crypto)\"") }
        try checkNumber(sampleInterval, option: "--sample-interval", in: 0.01...maxRunSeconds, unit: "seconds")
        guard duration / sampleInterval <= 1_000_000 else {
            throw ValidationError("--sample-interval \(sampleInterval) gives more than 1000000 rows of series.csv over --duration \(duration); take a longer interval")
        }
        guard learningRate > 0 && learningRate <= 100 else { throw ValidationError("--learning-rate must be in (0, 100], got \(learningRate)") }
        guard (0...1).contains(cosineDecay) else { throw ValidationError("--cosine-decay must be a fraction in [0, 1], got \(cosineDecay)") }
        if let lossOnly { _ = try Self.channels(lossOnly) }
        if let byzantine { _ = try Self.byzantine(byzantine, peers: peers) }
        try checkNumber(gossipInterval, option: "--gossip-interval", in: 0.001...600, unit: "seconds")
        guard simulated.liveness < duration else {
            throw ValidationError("--liveness \(simulated.liveness) must be shorter than --duration \(duration): the faults and churn come before it")
        }
    }

    /// "parameters,membership" → their channel numbers.
    static func channels(_ text: String) throws -> Set<UInt8> {
        var out = Set<UInt8>()
        for name in text.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) {
            guard let channel = (UInt8(1)...5).first(where: { ChorusChannel.name($0) == name }) else {
                throw ValidationError("--loss-only: unknown channel \"\(name)\" (known: \((UInt8(1)...5).map(ChorusChannel.name).joined(separator: ", ")))")
            }
            out.insert(channel)
        }
        return out
    }

    /// "COUNT:KIND" of --byzantine.
    static func byzantine(_ text: String, peers: Int) throws -> (count: Int, kind: ByzantineKind) {
        let parts = text.split(separator: ":").map(String.init)
        guard parts.count == 2, let count = Int(parts[0]), (1..<peers).contains(count), let kind = ByzantineKind(rawValue: parts[1]) else {
            throw ValidationError("--byzantine: expected COUNT:KIND, COUNT from 1 to \(peers - 1) (fewer than --peers) and KIND \(ByzantineKind.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(text)\"")
        }
        return (count, kind)
    }

    /// Every option of this run spelled out, defaults included (so a later change of a default
    /// cannot change a replay), without --out, --no-plot and --replay. Doubles print in Swift's
    /// shortest round-tripping form, so they parse back to the same bits.
    var replayArguments: [String] {
        var a = ["--peers", "\(peers)", "--duration", "\(duration)", "--seed", "\(seed)", "--task", task, "--model", model,
                 "--partition", partition, "--loss", "\(loss)", "--crypto", crypto, "--sample-interval", "\(sampleInterval)",
                 "--gossip-interval", "\(gossipInterval)", "--topology", averaging.topology, "--mixing", averaging.mixing,
                 "--weights", averaging.weights, "--data-seed", "\(dataSeed)",
                 "--learning-rate", "\(learningRate)", "--cosine-decay", "\(cosineDecay)"]
        if let clip = averaging.clip { a += ["--clip", "\(clip)"] }
        if let schedule { a += ["--schedule", schedule] }
        if let lossOnly { a += ["--loss-only", lossOnly] }
        for (name, values) in [("--peer-loss", faults.peerLoss), ("--link-loss", faults.linkLoss),
                               ("--peer-delay", faults.peerDelay), ("--link-delay", faults.linkDelay)] {
            for value in values { a += [name, value] }
        }
        a += simulated.replayArguments
        if baseline { a.append("--baseline") }
        if keepGoing { a.append("--keep-going") }
        if let byzantine { a += ["--byzantine", byzantine] }
        return a
    }

    func run() throws {
        HugePages.restartWithTunables()
        guard let replay else {
            try execute(scheduleText: nil)
            return
        }
        // Only --out and --no-plot may come with --replay: anything else would not be a replay.
        guard try Self.parse(["--out", out]).replayArguments == replayArguments else {
            throw ValidationError("--replay takes every option from \(replay); give only --out (and --no-plot) besides")
        }
        struct Recorded: Decodable { var replay: RunOutput.Summary.Replay? }
        let recorded: RunOutput.Summary.Replay
        do {
            let data = try Data(contentsOf: URL(fileURLWithPath: replay))
            guard let r = try JSONDecoder().decode(Recorded.self, from: data).replay else {
                throw UserError("--replay \(replay): no \"replay\" record (written by chorus simulate run since 2026-12-04)")
            }
            recorded = r
        } catch let error as UserError { throw error } catch {
            throw UserError("--replay \(replay): cannot read it as a simulate summary.json: \(error)")
        }
        let again = try Self.parse(recorded.arguments + ["--out", out] + (noPlot ? ["--no-plot"] : []))
        FileHandle.standardError.write(Data("replaying: chorus simulate \(recorded.arguments.joined(separator: " "))\n".utf8))
        try again.execute(scheduleText: recorded.schedule)
    }

    /// The run itself. `scheduleText` (a replay, a fuzz scenario) stands in for the file
    /// --schedule names. `quiet` (the fuzzer): no progress or result lines, and a violation is
    /// returned instead of printed and turned into exit status 1.
    @discardableResult
    func execute(scheduleText: String?, quiet: Bool = false, interrupt: Interrupt? = nil) throws -> PeerSimulation.Violation? {
        var options = SimulationOptions()
        options.peers = peers
        options.duration = duration
        options.seed = seed
        options.task = SimulationTask(rawValue: task)!
        options.crypto = CryptoMode(rawValue: crypto)!
        options.settings.wire.sessionKeys = sessionKeys
        options.sampleInterval = sampleInterval
        options.stopOnViolation = !keepGoing
        options.link.loss = loss
        options.settings.gossipInterval = gossipInterval
        options.settings.topology = averaging.parsedTopology
        options.settings.averaging.mixing = averaging.settings.mixing
        options.settings.averaging.weights = averaging.settings.weights
        options.settings.averaging.clipFactor = averaging.clip
        if let byzantine { options.byzantine = try Self.byzantine(byzantine, peers: peers) }
        options.learning.learningRate = learningRate
        options.learning.initialSeed = dataSeed
        options.learning.cosineSteps = Int(duration * cosineDecay * Double(options.settings.stepsPerRound) / gossipInterval)
        do { options.model = try ModelSpec(parsing: model) } catch { throw UserError("--model: \(error)") }
        do { options.partition = try PartitionScheme(parsing: partition) } catch { throw UserError("--partition: \(error)") }
        var recordedSchedule: String?
        if let schedule {
            do {
                recordedSchedule = try scheduleText ?? String(contentsOfFile: schedule, encoding: .utf8)
                options.schedule = scheduleText != nil ? try Schedule.parse(recordedSchedule!, file: schedule) : try Schedule.load(path: schedule)
            } catch { throw UserError("\(error)") }
        }
        simulated.apply(to: &options)
        // With a liveness phase the schedule ends where it begins.
        let review = try FaultOptions.review(Schedule(actions: try faults.actions() + options.schedule.actions, poisson: options.schedule.poisson),
                                             peers: peers, duration: duration - options.livenessSeconds, quiet: quiet)
        options.schedule = review.schedule
        if let lossOnly { options.link.lossChannels = try Self.channels(lossOnly) }
        let problems = options.settings.problems()
        guard problems.isEmpty else { throw UserError("settings: \(problems.joined(separator: "; "))") }

        let started = Date()
        let simulation = try PeerSimulation(options: options)
        // Never freed: the process ends with this command, and releasing n² table entries one by
        // one took a second and a half at 4096 peers after the results were written.
        _ = Unmanaged.passRetained(simulation)
        let label = "\(peers) peers, task \(task), crypto \(crypto), seed \(seed)"
        let interrupt = interrupt ?? Interrupt()
        simulation.run(progress: quiet ? nil : { t in
            let wall = Date().timeIntervalSince(started)
            let last = simulation.samples.last
            var line = String(format: "simulate: %.0f of %.0f simulated s (%.0f s wall), %@", t, duration, wall, label)
            if let c = last?.consensusMax { line += String(format: ", consensus max %.2g", c) }
            if let a = last?.accuracyMean { line += String(format: ", accuracy %.1f %%", a * 100) }
            Progress.line(line, transient: true)
        }, shouldStop: { interrupt.requested })
        if !quiet { Progress.finish() }
        let wall = Date().timeIntervalSince(started)
        var summary = simulation.summary(wallSeconds: wall)
        summary.warnings = review.warnings.isEmpty ? nil : review.warnings
        summary.replay = RunOutput.Summary.Replay(arguments: replayArguments, schedule: recordedSchedule)
        if baseline && options.task == .train {
            summary.baseline = try BaselineComparison.run(model: options.model, partition: options.partition, peers: peers,
                                                          stepsPerPeer: simulation.stepsPerStartingPeer, stepsPerRound: options.settings.stepsPerRound,
                                                          learning: options.learning, dataSeed: dataSeed)
        }
        do { try RunOutput.write(samples: simulation.samples, summary: summary, to: out) } catch {
            throw UserError("--out \(out): cannot write the results: \(error)")
        }
        if quiet { return simulation.violation }
        let f = summary.final
        let reached = simulation.interruptedAt ?? simulation.violation?.time ?? duration
        var line = "simulated \(String(format: "%.0f", reached)) s of \(label) in \(String(format: "%.1f", wall)) s: \(f.livePeers) live peers"
        if let a = f.accuracyMin, let m = f.accuracyMean { line += String(format: ", accuracy min %.1f %% mean %.1f %%", a * 100, m * 100) }
        if let c = f.consensusMax { line += String(format: ", consensus max %.3g", c) }
        let seen = summary.events.filter { $0.seenByAllAfter != nil }.count
        line += ", \(seen) of \(summary.events.filter(\.isWatched).count) watched actions seen by all, \(summary.falseFailures) false failures"
        print(line)
        if let b = summary.baseline {
            print(BaselineComparison.line(b, runMinimum: f.accuracyMin,
                                          command: "chorus baseline --model \(model) --partition \(partition) --peers \(peers) --steps \(b.stepsPerPeer) --learning-rate \(learningRate) --cosine-decay \(cosineDecay) --seed \(dataSeed)"))
        }
        if !simulation.violationsPassed.isEmpty {
            print("\(simulation.violationsPassed.count) invariant violations passed over (--keep-going):")
            for v in simulation.violationsPassed.prefix(20) { print("  \(v)") }
        }
        print("wrote \(out)/series.csv, \(out)/events.csv, \(out)/summary.json")
        if !noPlot { Plot.draw(out) }
        if let violation = simulation.violation {
            print("STOPPED: \(violation) — replay with: chorus simulate --replay \(out)/summary.json --out DIR")
            throw ExitCode(1)
        }
        if let at = simulation.interruptedAt {
            print("interrupted by \(interrupt.signalName ?? "a signal") at \(String(format: "%.1f", at)) of \(Int(duration)) simulated s; the files hold what was measured until then")
            throw ExitCode(130)
        }
        return nil
    }
}
