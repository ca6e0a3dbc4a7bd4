import ArgumentParser
import ChorusExperiment
import ChorusLearning
import ChorusPeer
import ChorusRuns
import Foundation

struct ExperimentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "experiment",
        abstract: "Run a churn schedule on real peer processes and write series.csv, peers.csv, events.csv, summary.json and a plot.",
        discussion: """
            Starts N `chorus peer` processes on 127.0.0.1 (or over the machines of --hosts \
            FILE) with fresh keys, trains for the \
            given duration while the schedule crashes (kill -9), makes leave (SIGTERM), \
            restarts (from the checkpoint), adds (--join) peers and partitions, heals or \
            degrades the network (live, through each peer's POST /faults). Every live peer \
            is polled a few times a second; each --sample-interval a row goes to \
            series.csv, and a row per peer to peers.csv (its distance from the average, \
            accuracy and mixing counters: which peer is apart, and whether it mixes). \
            The other files are those of `chorus simulate` (docs/experiments.md), so a \
            simulated and a real run of one schedule compare directly:

              chorus experiment --peers 16 --duration 120 \\
                  --schedule scripts/schedules/replace-quarter.toml --out runs/rq16-real
              chorus simulate --peers 16 --duration 120 \\
                  --schedule scripts/schedules/replace-quarter.toml --out runs/rq16-sim
              scripts/compare.py runs/rq16-sim runs/rq16-real

            The schedule is checked as in chorus simulate before any peer starts: \
            impossible actions stop the command naming their entry, actions at or after \
            the end are left out with a warning (also in summary.json's "warnings").

            Data: the training set is dealt into N shards; a joiner takes the shard of a \
            peer that crashed or left (never a copy of a live peer's). The learning rate \
            is constant unless --cosine-decay (as in chorus simulate). Ctrl-C (or SIGTERM) stops every peer and still writes what was \
            measured (exit status 130). DIR/convergence.png is drawn at the end when \
            python3-matplotlib is installed (--no-plot to skip).

            Across machines, --hosts FILE lists them (docs/multi-machine.md):

              shell = "ssh {host}"            # how to run a command there ({command} marks where)
              directory = "/tmp"              # the run's files go to a directory of their own in it
              [[host]]
              name = "a"                      # for {host}: an ssh destination
              address = "192.0.2.10"          # its peers listen, and are polled, at this address
              [[host]]
              name = "b"
              address = "192.0.2.11"

            Before any peer starts, each host gets the run's directory and this binary (or \
            `binary = "/usr/local/bin/chorus"` is checked to be the same release), and its \
            clock is measured against this one (summary.json "hosts"). Keys and \
            configurations are written here and copied to the peer's host; actions are \
            carried out there through the shell (signals by the pid the peer's shell \
            recorded); every peer is polled here at its address, so every time in the \
            files is this machine's. Ctrl-C kills every peer on every host, writes what was \
            measured, and removes the run's directories.
            """
    )

    @Option(help: "Peer processes at the start (2–64).")
    var peers = 16

    @Option(help: "Churn schedule (TOML; see scripts/schedules/ and docs/experiments.md). Default: steady.")
    var schedule: String?

    @Option(parsing: .unconditional, help: "Seconds of training.")
    var duration: Double = 120

    @Option(help: "Directory for series.csv, peers.csv, events.csv, summary.json and convergence.png (created).")
    var out: String

    @OptionGroup var training: TrainingOptions

    @Option(help: "train (learn and average) | average (no training: each peer starts from its own random values; series.csv's average_error says how far the estimates are from their true mean).")
    var task = "train"

    @Flag(help: "Also train the same model on the same data in one process (chorus baseline: centralised and data-parallel) and print its accuracy beside the peers'.")
    var baseline = false

    @Option(parsing: .unconditional, help: "Probability that a datagram is lost, from the start (every peer drops that fraction of what it sends; a schedule's loss action changes it).")
    var loss = 0.0

    @OptionGroup(title: "Faults from the start (on top of the schedule)") var faults: FaultOptions

    @Option(parsing: .unconditional, help: "Seconds between rows of series.csv.")
    var sampleInterval: Double = 1

    @Option(parsing: .unconditional, help: ArgumentHelp("Decay the learning rate to zero by a cosine over this fraction of the run (0: constant, as chorus simulate by default).", valueName: "fraction"))
    var cosineDecay: Double = 0

    @Option(help: ArgumentHelp("Spread the peers over the machines of this hosts file, round-robin: each gets its files and (unless the file names one) this binary through its shell (ssh by default), then its peers; format in docs/multi-machine.md.", valueName: "file"))
    var hosts: String?

    @Option(help: ArgumentHelp("Run peers in this network namespace at this address, round-robin over the repeated option (root; see scripts/netns-cluster.sh).", valueName: "name@address"))
    var netns: [String] = []

    @Flag(help: "Keep the peers' directory (configs, keys, logs, checkpoints) as DIR/peers.")
    var keepPeers = false

    @Flag(help: "Do not draw DIR/convergence.png.")
    var noPlot = false

    func validate() throws {
        guard (2...64).contains(peers) else { throw ValidationError("--peers must be between 2 and 64 real processes, got \(peers) (use chorus simulate for more)") }
        try checkNumber(duration, option: "--duration", in: 5...maxRunSeconds, unit: "seconds")
        guard (0..<1).contains(loss) else { throw ValidationError("--loss must be a probability in [0, 1), got \(loss)") }
        guard task == "train" || task == "average" else { throw ValidationError("--task: expected train or average, got \"\(task)\"") }
        guard (0...1).contains(cosineDecay) else { throw ValidationError("--cosine-decay must be a fraction in [0, 1], got \(cosineDecay)") }
        try checkNumber(sampleInterval, option: "--sample-interval", in: 0.25...maxRunSeconds, unit: "seconds")
        for text in netns where LocalNetwork.Host(parsing: text) == nil {
            throw ValidationError("--netns: expected NAME@ADDRESS (a network namespace and the peer address in it), got \"\(text)\"")
        }
        if !netns.isEmpty && getuid() != 0 { throw ValidationError("--netns needs root (ip netns exec); run scripts/netns-cluster.sh with sudo") }
        if hosts != nil && !netns.isEmpty { throw ValidationError("--hosts and --netns both place the peers: give one") }
    }

    func run() throws {
        var options = Experiment.Options(executable: try DemoCommand.executablePath())
        options.peers = peers
        options.duration = duration
        options.seed = training.seed
        (options.model, options.partition, options.topology) = training.parsed
        options.averaging = training.averaging
        options.averageOnly = task == "average"
        options.sampleInterval = sampleInterval
        options.cosineFraction = cosineDecay
        options.hosts = netns.compactMap(LocalNetwork.Host.init(parsing:))
        if let hosts {
            do { options.hosts = try LocalNetwork.Host.load(path: hosts) } catch { throw UserError("--hosts \(error)") }
        }
        if let schedule {
            do { options.schedule = try Schedule.load(path: schedule) } catch { throw UserError("\(error)") }
        }
        let initialLoss = loss > 0 ? [Schedule.Action(time: 0, kind: .loss, probability: loss, origin: "--loss \(loss)")] : []
        let review = try FaultOptions.review(Schedule(actions: initialLoss + (try faults.actions()) + options.schedule.actions, poisson: options.schedule.poisson),
                                             peers: peers, duration: duration)
        options.schedule = review.schedule
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw UserError("--out \(out): cannot create the directory: \(error)")
        }
        if keepPeers { options.workDirectory = out + "/peers" }
        let experiment: Experiment
        do {
            experiment = try Experiment(options: options) { line, transient in Progress.line(line, transient: transient) }
        } catch {
            throw UserError("experiment: cannot prepare the peers: \(error)")
        }
        // Ctrl-C: the loop notices within a poll and stops every peer; a second Ctrl-C kills them at once.
        let network = experiment.network
        let interrupt = Interrupt { network.killAll() }
        defer { if !keepPeers { experiment.network.removeDirectory() } }
        let result: (samples: [RunOutput.Sample], summary: RunOutput.Summary)
        do { result = try experiment.run { interrupt.requested } } catch {
            throw UserError("experiment: \(error)")
        }
        Progress.line("", transient: false)
        var summary = result.summary
        summary.warnings = review.warnings.isEmpty ? nil : review.warnings
        if baseline && task == "train" {
            summary.baseline = try BaselineComparison.run(model: options.model, partition: options.partition, peers: peers,
                                                          stepsPerPeer: experiment.stepsPerStartingPeer, stepsPerRound: experiment.stepsPerRound,
                                                          learning: experiment.learningSettings, dataSeed: training.seed)
        }
        do {
            try RunOutput.write(samples: result.samples, summary: summary, to: out)
            try Experiment.peerSeriesCSV(experiment.peerRows).write(toFile: out + "/peers.csv", atomically: true, encoding: .utf8)
        } catch {
            throw UserError("--out \(out): cannot write the results: \(error)")
        }
        let s = summary
        var line = "experiment: \(peers) peers for \(Int(s.interruptedAt ?? duration)) s (\(String(format: "%.0f", s.wallSeconds)) s wall): \(s.final.livePeers) live peers"
        if let a = s.final.accuracyMin, let m = s.final.accuracyMean { line += String(format: ", accuracy min %.1f %% mean %.1f %%", a * 100, m * 100) }
        if let c = s.final.consensusMax { line += String(format: ", consensus max %.3g", c) }
        let seen = s.events.filter { $0.seenByAllAfter != nil }.count
        line += ", \(seen) of \(s.events.filter(\.isWatched).count) watched actions seen by all, \(s.falseFailures) false failures"
        print(line)
        if let b = s.baseline {
            print(BaselineComparison.line(b, runMinimum: s.final.accuracyMin,
                                          command: "chorus baseline --model \(training.model) --partition \(training.partition) --peers \(peers) --steps \(b.stepsPerPeer) --cosine-decay \(cosineDecay) --seed \(training.seed)"))
        }
        print("wrote \(out)/series.csv, \(out)/peers.csv, \(out)/events.csv, \(out)/summary.json")
        if keepPeers { print("kept the peers' configs, keys, logs and checkpoints in \(out)/peers") }
        if !noPlot { Plot.draw(out) }
        if let violation = s.violation { print("VIOLATION: \(violation)") }
        if let at = s.interruptedAt {
            print("interrupted by \(interrupt.signalName ?? "a signal") at \(String(format: "%.1f", at)) of \(Int(duration)) s; the files hold what was measured until then")
            throw ExitCode(130)
        }
        if s.violation != nil { throw ExitCode(1) }
    }
}
