import ArgumentParser
import ChorusSimulation

/// The simulated network's, clocks' and membership's knobs of `chorus simulate`, beyond loss:
/// every fault the simulator can inject is reachable from the command line (and so from a
/// replay and from `chorus simulate fuzz`, which draws them from a seed).
struct SimulatedFaultOptions: ParsableArguments {
    @Option(parsing: .unconditional, help: ArgumentHelp("One-way latency of every datagram: a base plus an exponential tail of this mean (milliseconds).", valueName: "base:jitter"))
    var latency = "0.5:0.5"

    @Option(parsing: .unconditional, help: "Probability that a datagram is delivered twice.")
    var duplication = 0.0

    @Option(parsing: .unconditional, help: ArgumentHelp("Probability that a datagram is held back by --reorder-ms, so later ones overtake it.", valueName: "p"))
    var reorder = 0.0

    @Option(parsing: .unconditional, help: "Milliseconds a reordered datagram is held back.")
    var reorderMs = 5.0

    @Option(parsing: .unconditional, help: ArgumentHelp("Bytes per second each peer can send; its datagrams queue behind each other (0: unlimited).", valueName: "bytes/s"))
    var bandwidth = 0.0

    @Option(parsing: .unconditional, help: ArgumentHelp("Each peer's wall clock is off by up to ± this many seconds (drawn from the seed): gossip rounds are aligned to it.", valueName: "seconds"))
    var clockOffset = 0.0

    @Option(parsing: .unconditional, help: ArgumentHelp("Each peer's clock runs at 1 ± up to this many parts per million of real speed (drawn from the seed).", valueName: "ppm"))
    var clockDrift = 0.0

    @Option(parsing: .unconditional, help: ArgumentHelp("Virtual seconds one SGD step takes: datagrams, ticks and churn arrive while a peer trains, as in a real one (0: training takes no time).", valueName: "seconds"))
    var stepSeconds = 0.0

    @Option(parsing: .unconditional, help: ArgumentHelp("Membership: seconds between probes of one member (the probe timeout is half of it).", valueName: "seconds"))
    var probeInterval = 1.0

    @Option(parsing: .unconditional, help: ArgumentHelp("Membership: the suspicion timeout's multiplier (minimum = this · max(1, log10 n) · probe interval).", valueName: "m"))
    var suspicionMultiplier = 1.0

    @Option(help: ArgumentHelp("Membership: members asked to probe indirectly when a direct probe times out (SWIM's k).", valueName: "k"))
    var indirectChecks = 3

    @Option(help: ArgumentHelp("How the starting network forms: preload (every peer knows all the others from the start, as after the first syncs) | join (each peer joins through an earlier one: hello, session, sync).", valueName: "mode"))
    var bootstrap = "preload"

    @Option(parsing: .unconditional, help: ArgumentHelp("End with this many seconds with every fault healed and churn stopped (the schedule stops there), then check liveness: every live view whole, every action seen by all, --task average's consensus halved. A miss is a violation.", valueName: "seconds"))
    var liveness = 0.0

    @Option(parsing: .unconditional, help: ArgumentHelp("Every crash must be seen as failed by every live peer within this many seconds, checked as the run goes; a miss is a violation (0: not checked).", valueName: "seconds"))
    var detectionBound = 0.0

    @Flag(help: "Check safety after every event (finite parameters, valid mixing rows, incarnations never going backwards, views naming only real peers, neighbourhoods computed over the live view, reassembly within budget), not only after learning. O(n) per event.")
    var checkEveryEvent = false

    var latencyMs: (base: Double, jitter: Double)? {
        let parts = latency.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let base = Double(parts[0]), let jitter = Double(parts[1]),
              (0...60_000).contains(base), (0...60_000).contains(jitter) else { return nil }
        return (base, jitter)
    }

    func validate() throws {
        guard latencyMs != nil else { throw ValidationError("--latency: expected BASE:JITTER in milliseconds, each 0 to 60000, such as 0.5:0.5; got \"\(latency)\"") }
        guard (0..<1).contains(duplication) else { throw ValidationError("--duplication must be a probability in [0, 1), got \(duplication)") }
        guard (0..<1).contains(reorder) else { throw ValidationError("--reorder must be a probability in [0, 1), got \(reorder)") }
        try checkNumber(reorderMs, option: "--reorder-ms", in: 0...60_000, unit: "milliseconds")
        try checkNumber(bandwidth, option: "--bandwidth", in: 0...1e12, unit: "bytes per second")
        if bandwidth > 0 && bandwidth < 1500 { throw ValidationError("--bandwidth \(bandwidth): below one datagram a second (1500 bytes/s); 0 means unlimited") }
        try checkNumber(clockOffset, option: "--clock-offset", in: 0...86_400, unit: "seconds")
        try checkNumber(clockDrift, option: "--clock-drift", in: 0...100_000, unit: "ppm (at most 10 %)")
        try checkNumber(stepSeconds, option: "--step-seconds", in: 0...60, unit: "seconds")
        try checkNumber(probeInterval, option: "--probe-interval", in: 0.05...60, unit: "seconds")
        try checkNumber(suspicionMultiplier, option: "--suspicion-multiplier", in: 0.5...100, unit: "")
        guard (1...16).contains(indirectChecks) else { throw ValidationError("--indirect-checks must be between 1 and 16, got \(indirectChecks)") }
        try checkNumber(liveness, option: "--liveness", in: 0...maxRunSeconds, unit: "seconds")
        try checkNumber(detectionBound, option: "--detection-bound", in: 0...maxRunSeconds, unit: "seconds")
        guard SimulationOptions.Bootstrap(rawValue: bootstrap) != nil else {
            throw ValidationError("--bootstrap: expected preload or join, got \"\(bootstrap)\"")
        }
    }

    /// The options spelled out for a replay (defaults included).
    var replayArguments: [String] {
        var a = ["--latency", latency, "--duplication", "\(duplication)", "--reorder", "\(reorder)", "--reorder-ms", "\(reorderMs)",
                 "--bandwidth", "\(bandwidth)", "--clock-offset", "\(clockOffset)", "--clock-drift", "\(clockDrift)",
                 "--step-seconds", "\(stepSeconds)", "--probe-interval", "\(probeInterval)",
                 "--suspicion-multiplier", "\(suspicionMultiplier)", "--indirect-checks", "\(indirectChecks)", "--liveness", "\(liveness)",
                 "--bootstrap", bootstrap, "--detection-bound", "\(detectionBound)"]
        if checkEveryEvent { a.append("--check-every-event") }
        return a
    }

    func apply(to options: inout SimulationOptions) {
        let (base, jitter) = latencyMs!
        options.link.base = base / 1000
        options.link.jitter = jitter / 1000
        options.link.duplication = duplication
        options.link.reorder = reorder
        options.link.reorderDelay = reorderMs / 1000
        options.link.bandwidth = bandwidth > 0 ? bandwidth : nil
        options.clockOffset = clockOffset
        options.clockDrift = clockDrift / 1e6
        options.stepSeconds = stepSeconds
        options.settings.membership.probeInterval = probeInterval
        options.settings.membership.probeTimeout = probeInterval / 2
        options.settings.membership.suspicionMultiplier = suspicionMultiplier
        options.settings.membership.indirectChecks = indirectChecks
        options.livenessSeconds = liveness
        options.checkEveryEvent = checkEveryEvent
        options.detectionBound = detectionBound > 0 ? detectionBound : nil
        options.bootstrap = SimulationOptions.Bootstrap(rawValue: bootstrap)!
    }
}
