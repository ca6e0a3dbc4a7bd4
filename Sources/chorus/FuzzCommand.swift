import ArgumentParser
import ChorusSimulation
import Foundation

struct SimulateFuzz: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fuzz",
        abstract: "Swarm-test the peers: one whole simulated run per seed, every option and fault drawn from the seed, safety checked after every event and liveness at the end.",
        discussion: """
            Each seed draws a run (SwarmScenario.swift): 2 to --max-peers peers; the task \
            (average, membership or train); topology, mixing and weights; loss, latency, \
            duplication, reordering and bandwidth; clock offsets and drift; training \
            time; probe interval, suspicion multiplier and indirect checks; and a \
            schedule of crashes, leaves, joins, restarts, partitions (both ways or one \
            way), pauses, loss and delay, with Poisson churn now and then.

            Safety is checked after every event (--check-every-event): no NaN, every \
            mixing row non-negative and summing to one, no member declared failed while \
            it runs and answers, incarnations never going backwards (a peer's own and \
            each view's), views naming only real peers, neighbourhoods computed over the \
            live view, reassembly within budget, and no \
            spin (a tick that leaves its deadline due). The run ends with a liveness \
            phase: faults healed, churn stopped, and after the stated bound (--liveness, \
            SwarmScenario.livenessBound) every live view must be whole, every action seen \
            by all, and with --task average consensus halved.

            A failing seed prints the two commands that replay it exactly, and its \
            series.csv, events.csv, summary.json and schedule stay in --out. Passing \
            seeds leave one line each in DIR/fuzz.csv.

            Examples:
              chorus simulate fuzz --seeds 1-50
              chorus simulate fuzz --seeds 7 --out runs/fuzz7        # one seed again
              scripts/fuzz-sim.sh 1-2000 120                         # a long sweep
            """
    )

    @Option(help: ArgumentHelp("Seeds to run: N, A-B, or a comma-separated list of both.", valueName: "seeds"))
    var seeds: String

    @Option(help: "Largest network a seed may draw.")
    var maxPeers = 64

    @Option(help: "Directory for fuzz.csv and the failing seeds' runs (created).")
    var out = "fuzz-runs"

    @Flag(help: "Go on after a failing seed (default: stop at the first).")
    var keepGoing = false

    @Flag(help: "Print each seed's drawn arguments and schedule before running it.")
    var verbose = false

    func validate() throws {
        _ = try Self.parseSeeds(seeds)
        guard (2...1024).contains(maxPeers) else { throw ValidationError("--max-peers must be between 2 and 1024, got \(maxPeers)") }
    }

    /// "1-5,9" → [1, 2, 3, 4, 5, 9].
    static func parseSeeds(_ text: String) throws -> [UInt64] {
        var out: [UInt64] = []
        for part in text.split(separator: ",") {
            let ends = part.split(separator: "-", maxSplits: 1).map { UInt64($0.trimmingCharacters(in: .whitespaces)) }
            guard !ends.isEmpty, ends.allSatisfy({ $0 != nil }), let first = ends[0] else {
                throw ValidationError("--seeds: expected N, A-B or a comma-separated list of them, got \"\(text)\"")
            }
            let last = ends.count == 2 ? ends[1]! : first
            guard last >= first, last - first < 10_000_000 else { throw ValidationError("--seeds: \(part) is not a range A-B with A ≤ B (at most 10 million)") }
            out += Array(first...last)
        }
        return out
    }

    /// Unbuffered: a failure shows at once, also when the output goes to a file.
    private func say(_ line: String) { FileHandle.standardOutput.write(Data((line + "\n").utf8)) }

    func run() throws {
        let seeds = try Self.parseSeeds(seeds)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let csvPath = out + "/fuzz.csv"
        guard FileManager.default.createFile(atPath: csvPath, contents: Data("seed,verdict,wall_seconds,scenario\n".utf8)),
              let csv = FileHandle(forWritingAtPath: csvPath) else { throw UserError("--out \(out): cannot write \(csvPath)") }
        defer { try? csv.close() }
        csv.seekToEndOfFile()
        let interrupt = Interrupt()
        let sweepStart = Date()
        var failures: [(UInt64, String)] = []
        var done = 0
        for seed in seeds {
            if interrupt.requested { break }
            let scenario = SwarmScenario(seed: seed, maxPeers: maxPeers)
            let dir = "\(out)/seed-\(seed)"
            if verbose { say("seed \(seed): chorus simulate \(scenario.arguments.joined(separator: " "))\n\(scenario.schedule)") }
            let started = Date()
            var verdict = "pass"
            do {
                let run = try SimulateRun.parse(scenario.arguments + ["--out", dir, "--no-plot"])
                if let violation = try run.execute(scheduleText: scenario.schedule, quiet: true, interrupt: interrupt) {
                    verdict = "FAIL: \(violation.description)"
                }
            } catch {
                verdict = "FAIL: the drawn run was refused: \(error)"
            }
            if interrupt.requested { break }
            let wall = Date().timeIntervalSince(started)
            done += 1
            let quoted = "\"" + scenario.label.replacingOccurrences(of: "\"", with: "'") + "\""
            csv.write(Data("\(seed),\(verdict == "pass" ? "pass" : "fail"),\(String(format: "%.2f", wall)),\(quoted)\n".utf8))
            if verdict == "pass" {
                try? FileManager.default.removeItem(atPath: dir)
                Progress.line(String(format: "fuzz: %d of %d seeds run, %d failed (%.0f s); seed %llu passed: %@ in %.1f s",
                                     done, seeds.count, failures.count, Date().timeIntervalSince(sweepStart), seed, scenario.label, wall),
                              transient: true)
                continue
            }
            try? scenario.schedule.write(toFile: "\(dir)/fuzz-seed-\(seed).toml", atomically: true, encoding: .utf8)
            failures.append((seed, verdict))
            Progress.finish()
            say("seed \(seed) (\(scenario.label)): \(verdict)")
            say("  replay: chorus simulate fuzz --seeds \(seed) --max-peers \(maxPeers) --out DIR")
            say("      or: chorus simulate --replay \(dir)/summary.json --out DIR")
            if !keepGoing { break }
        }
        Progress.finish()
        let wall = Date().timeIntervalSince(sweepStart)
        let stopped = interrupt.requested ? " (interrupted)" : ""
        say(String(format: "fuzz: %d of %d seeds run in %.0f s%@: %d passed, %d failed (generator version %d, max %d peers); %@",
                     done, seeds.count, wall, stopped, done - failures.count, failures.count, SwarmScenario.version, maxPeers, csvPath))
        if !failures.isEmpty {
            say("failing seeds: \(failures.map { String($0.0) }.joined(separator: ","))")
            throw ExitCode(1)
        }
        if interrupt.requested { throw ExitCode(130) }
    }
}
