import ArgumentParser
import ChorusAveraging
import ChorusCore
import ChorusCrypto
import ChorusLearning
import ChorusPeer
import ChorusRuns
import Foundation

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start a local network of peer processes, train, and report accuracy and consensus.",
        discussion: """
            Starts N `chorus peer` processes on 127.0.0.1 with fresh keys in a temporary \
            directory, wires them into a connected topology, trains for the given duration while \
            showing progress (mean and minimum test accuracy, largest distance to the network \
            average), stops them gracefully and prints a table per peer. The learning rate decays \
            to zero by a cosine over the first 85 % of the run, so the last seconds are pure \
            averaging and the peers end in consensus. Ctrl-C stops every peer and removes the \
            temporary files.

            Churn (unless --no-churn): at 30 % of the run one peer is killed (kill -9), at 40 % \
            another leaves gracefully (SIGTERM), and at 50 % a new peer joins through a random \
            member (chorus peer --join), taking the network's current model before it trains. \
            Each event is printed when every live peer has seen it.
            """
    )

    @Option(help: "Number of peer processes (2–64).")
    var peers = 8

    @Option(parsing: .unconditional, help: "Seconds of training.")
    var duration: Double = 40

    @OptionGroup var training: TrainingOptions

    @Flag(help: "Print the summary as one JSON object (progress still goes to standard error).")
    var json = false

    @Flag(help: "Keep the temporary directory (configs, keys, logs, checkpoints) and print its path.")
    var keep = false

    @Flag(help: "Do not crash, remove or add peers during the run.")
    var noChurn = false

    @Flag(help: "Also train the same model on the same data in one process (chorus baseline: centralised and data-parallel) and print its accuracy beside the peers'.")
    var baseline = false

    func validate() throws {
        guard (2...64).contains(peers) else { throw ValidationError("--peers must be between 2 and 64, got \(peers)") }
        guard noChurn || peers >= 4 else { throw ValidationError("churn needs at least 4 peers (or pass --no-churn), got \(peers)") }
        try checkNumber(duration, option: "--duration", in: 5...maxRunSeconds, unit: "seconds")
    }

    func run() throws {
        var options = LocalNetwork.Options(executable: try Self.executablePath())
        options.peers = peers
        (options.model, options.partition, options.topology) = training.parsed
        options.averaging = training.averaging
        options.seed = training.seed
        let stepsPerSecond = Double(options.stepsPerRound) * 1000 / Double(options.gossipIntervalMs)
        options.cosineSteps = Int(duration * 0.85 * stepsPerSecond)
        let network: LocalNetwork
        do { network = try LocalNetwork(options: options) } catch { throw UserError("demo: cannot prepare the network: \(error)") }
        let cleanup = DemoCleanup(network: network, keep: keep)
        cleanup.installSignalHandlers()
        defer { cleanup.run() }

        progress("chorus demo: \(peers) peers, \(options.model), \(options.partition), \(options.topology) topology, \(options.averaging.mixing) mixing with \(options.averaging.weights) weights, \(Int(duration)) s; files in \(network.directory)")
        do {
            for index in network.members.indices { try network.start(index) }
            try network.waitUntilReady(Array(network.members.indices))
        } catch {
            throw UserError("demo: \(error)")
        }
        let start = Date()
        var churn = noChurn ? ChurnPlan(events: []) : ChurnPlan.standard(peers: peers, duration: duration, seed: training.seed)
        var last = Snapshot.take(network)
        var lastProgress = 0.0
        while Date().timeIntervalSince(start) < duration {
            Thread.sleep(forTimeInterval: 0.25)
            let elapsed = Date().timeIntervalSince(start)
            for line in churn.advance(network: network, elapsed: elapsed) { progress(line) }
            if elapsed - lastProgress >= 1 {
                lastProgress = elapsed
                last = Snapshot.take(network)
                progress(String(format: "%6.1f s   %d peers   mean accuracy %5.1f %%   min %5.1f %%   max distance to average %.2e",
                                elapsed, last.rows.count, last.meanAccuracy * 100, last.minAccuracy * 100, last.maxDistance),
                         transient: Progress.onTerminal)  // one a second: every one goes into a log
            }
        }
        progress("")
        last = Snapshot.take(network)
        network.stopAll()
        var reference: RunOutput.Summary.BaselineAccuracy?
        if baseline {
            let steps = last.rows.prefix(peers).compactMap { $0.status?.stepsTrained }.max() ?? 0
            reference = try BaselineComparison.run(
                model: options.model, partition: options.partition, peers: peers, stepsPerPeer: steps, stepsPerRound: options.stepsPerRound,
                learning: LearningSettings(model: options.model, cosineSteps: options.cosineSteps), dataSeed: training.seed)
        }
        if json {
            print(last.json(events: churn.events, baseline: reference))
        } else {
            print(last.table())
            if !churn.events.isEmpty { print(churn.table()) }
            if let reference {
                print(BaselineComparison.line(reference, runMinimum: last.minAccuracy,
                                              command: "chorus baseline --model \(training.model) --partition \(training.partition) --peers \(peers) --steps \(reference.stepsPerPeer) --seed \(training.seed)"))
            }
        }
        if keep { progress("kept \(network.directory)") }
    }

    private func progress(_ line: String, transient: Bool = false) {
        Progress.line(line, transient: transient)
    }

    static func executablePath() throws -> String {
        let path = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        guard FileManager.default.isExecutableFile(atPath: path) else { throw UserError("demo: cannot find the chorus executable (\(path))") }
        return path
    }
}

/// One look at every running peer: statuses and parameters.
struct Snapshot {
    struct Row {
        var name: String
        var status: PeerStatus?
        var distance: Double
    }

    var rows: [Row]

    static func take(_ network: LocalNetwork, indices: [Int]? = nil) -> Snapshot {
        let chosen = indices ?? network.members.indices.filter { network.isRunning($0) }
        var statuses: [PeerStatus?] = []
        var vectors: [[Float]] = []
        var owners: [Int] = []
        for index in chosen {
            let status = try? AdminClient.status(at: network.members[index].admin)
            statuses.append(status)
            let member = network.members[index]
            if status != nil, let v = try? AdminClient.parameters(token: member.adminToken, at: member.admin) {
                vectors.append(v)
                owners.append(index)
            }
        }
        let distances = Consensus.relativeDistances(vectors)
        return Snapshot(rows: chosen.enumerated().map { position, index in
            Row(name: network.members[index].name, status: statuses[position],
                distance: owners.firstIndex(of: index).map { distances[$0] } ?? .infinity)
        })
    }

    /// Accuracies of peers that have one (a joining peer has none until it adopted the model).
    var accuracies: [Double] { rows.compactMap { $0.status?.testAccuracy }.filter { !$0.isNaN } }
    var meanAccuracy: Double { accuracies.isEmpty ? 0 : accuracies.reduce(0, +) / Double(accuracies.count) }
    var minAccuracy: Double { accuracies.min() ?? 0 }
    /// Over the peers whose parameters could be read: one killed or still joining a moment ago
    /// has none (its row says ∞), and is no spike in the network's consensus.
    var maxDistance: Double { rows.map(\.distance).filter(\.isFinite).max() ?? .infinity }

    func table() -> String {
        var out = ["", "  PEER    ID        STEPS  TRAINED HERE  LOSS     TEST ACC   DIST TO AVERAGE"]
        for r in rows {
            let s = r.status
            out.append(String(format: "  %@  %@  %6d  %12d  %7.4f  %7.2f %%   %.2e",
                              r.name.padding(toLength: 6, withPad: " ", startingAt: 0), String((s?.peerId ?? "?").prefix(8)),
                              Int(s?.step ?? 0), s?.stepsTrained ?? 0, s?.loss ?? .nan,
                              (s?.testAccuracy ?? 0) * 100, r.distance))
        }
        out.append(String(format: "\n  mean accuracy %.2f %%, min %.2f %%, max relative distance to the average %.2e",
                          meanAccuracy * 100, minAccuracy * 100, maxDistance))
        return out.joined(separator: "\n")
    }

    func json(events: [ChurnPlan.Event], baseline: RunOutput.Summary.BaselineAccuracy? = nil) -> String {
        let peers: [[String: Any]] = rows.map { r in
            [
                "peerId": r.status?.peerId ?? "", "name": r.name, "steps": Int(r.status?.step ?? 0),
                "stepsTrained": r.status?.stepsTrained ?? 0, "stepsInherited": r.status?.stepsInherited ?? 0,
                "samplesTrained": r.status?.samplesTrained ?? 0,
                "loss": finite(r.status?.loss), "testAccuracy": r.status?.testAccuracy ?? 0,
                "relativeDistance": finite(r.distance),
            ]
        }
        var object: [String: Any] = [
            "peers": peers, "meanAccuracy": meanAccuracy, "minAccuracy": minAccuracy, "maxRelativeDistance": finite(maxDistance),
            "events": events.map { e -> [String: Any] in
                ["action": e.action.rawValue, "peerId": e.peerId, "at": finite(e.at), "seenByAllAfter": finite(e.seenByAllAfter)]
            },
        ]
        if let baseline {
            object["baseline"] = ["centralised": baseline.centralised, "dataParallel": baseline.dataParallel, "stepsPerPeer": baseline.stepsPerPeer]
        }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }

    private func finite(_ x: Double?) -> Any {
        guard let x, x.isFinite else { return NSNull() }
        return x
    }
}

/// Stops peers and removes the temporary directory on normal exit and on Ctrl-C/SIGTERM.
final class DemoCleanup: @unchecked Sendable {
    // @unchecked: `done` is guarded by `lock`.
    let network: LocalNetwork
    let keep: Bool
    private let lock = NSLock()
    private var done = false
    private var sources: [DispatchSourceSignal] = []

    init(network: LocalNetwork, keep: Bool) {
        self.network = network
        self.keep = keep
    }

    func installSignalHandlers() {
        for number in [SIGINT, SIGTERM] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: .global())
            source.setEventHandler { [self] in
                FileHandle.standardError.write(Data("\nchorus demo: interrupted, stopping peers…\n".utf8))
                run()
                exit(130)
            }
            source.resume()
            sources.append(source)
        }
    }

    func run() {
        let first = lock.withLock { () -> Bool in defer { done = true }; return !done }
        guard first else { return }
        network.stopAll(timeout: 3)
        if !keep { network.removeDirectory() }
    }
}

/// The demo's churn: scheduled crash, leave and join, and when each was seen by every live peer.
struct ChurnPlan {
    enum Action: String { case crash, leave, join }

    struct Event {
        var action: Action
        var scheduledAt: Double
        var index: Int?
        var peerId = ""
        var name = ""
        var at: Double?
        var seenByAllAfter: Double?
    }

    var events: [Event]

    static func standard(peers: Int, duration: Double, seed: UInt64) -> ChurnPlan {
        // The victims are the last two peers, so the first two (everyone's entry points) stay.
        ChurnPlan(events: [
            Event(action: .crash, scheduledAt: duration * 0.3, index: peers - 1),
            Event(action: .leave, scheduledAt: duration * 0.4, index: peers - 2),
            Event(action: .join, scheduledAt: duration * 0.5, index: nil),
        ])
    }

    /// Fires due events and checks pending ones; returns lines to print.
    mutating func advance(network: LocalNetwork, elapsed: Double) -> [String] {
        var lines: [String] = []
        for i in events.indices {
            if events[i].at == nil && elapsed >= events[i].scheduledAt {
                lines += fire(i, network: network, elapsed: elapsed)
            } else if let at = events[i].at, events[i].seenByAllAfter == nil, let index = events[i].index {
                if seenByAll(events[i].action, subject: network.members[index].id, subjectIndex: index, network: network) {
                    events[i].seenByAllAfter = elapsed - at
                    let live = network.members.indices.filter { network.isRunning($0) }.count
                    let what = ["crash": "as failed", "leave": "as left", "join": "as alive"][events[i].action.rawValue]!
                    lines.append(String(format: "%6.1f s   %@ of %@ (%@) seen %@ by all %d live peers after %.1f s",
                                        elapsed, events[i].action.rawValue, events[i].name, String(events[i].peerId.prefix(8)), what, live, elapsed - at))
                }
            }
        }
        return lines
    }

    private mutating func fire(_ i: Int, network: LocalNetwork, elapsed: Double) -> [String] {
        var e = events[i]
        switch e.action {
        case .crash, .leave:
            guard let index = e.index, network.isRunning(index) else { return [] }
            e.name = network.members[index].name
            e.peerId = network.members[index].id.description
            if let pid = network.pid(index) { kill(pid, e.action == .crash ? SIGKILL : SIGTERM) }
            network.departed(index)  // its shard goes to the joiner
        case .join:
            let running = network.members.indices.filter { network.isRunning($0) }
            guard !running.isEmpty, let index = try? network.addMember() else { return [] }
            let through = running[Int(UInt64(elapsed * 1000)) % running.count]
            do { try network.start(index, extraArguments: ["--join", network.members[through].udp.description]) } catch {
                return ["demo: could not start the joining peer: \(error)"]
            }
            e.index = index
            e.name = network.members[index].name
            e.peerId = network.members[index].id.description
        }
        e.at = elapsed
        events[i] = e
        let verb = ["crash": "killed (kill -9)", "leave": "asked to leave (SIGTERM)", "join": "started with --join"][e.action.rawValue]!
        return [String(format: "%6.1f s   %@ (%@) %@", elapsed, e.name, String(e.peerId.prefix(8)), verb)]
    }

    private func seenByAll(_ action: Action, subject: PeerID, subjectIndex: Int, network: LocalNetwork) -> Bool {
        let observers = network.members.indices.filter { $0 != subjectIndex && network.isRunning($0) }
        guard !observers.isEmpty else { return false }
        if action == .join {
            // The newcomer itself must be up and training with the network's model.
            guard let own = try? AdminClient.status(at: network.members[subjectIndex].admin, timeout: 0.5), own.phase == "training" else { return false }
        }
        let wanted = ["crash": "failed", "leave": "left", "join": "alive"][action.rawValue]!
        for index in observers {
            guard let status = try? AdminClient.status(at: network.members[index].admin, timeout: 0.5) else { return false }
            let row = status.members.first { $0.id == subject.description }
            if action == .crash && row == nil { continue }  // already forgotten: also counts
            guard row?.status == wanted else { return false }
        }
        return true
    }

    func table() -> String {
        var out = ["", "  EVENT   PEER    ID        AT       SEEN BY ALL AFTER"]
        for e in events {
            // (String(format:) ignores widths for %@ on Linux: pad by hand.)
            func pad(_ text: String, _ width: Int) -> String { text.padding(toLength: max(width, text.count), withPad: " ", startingAt: 0) }
            out.append("  " + pad(e.action.rawValue, 6) + "  " + pad(e.name.isEmpty ? "-" : e.name, 6) + "  " + pad(String(e.peerId.prefix(8)), 8)
                       + "  " + pad(e.at.map { String(format: "%5.1f s", $0) } ?? "  -", 7) + "  "
                       + (e.seenByAllAfter.map { String(format: "%.1f s", $0) } ?? "not seen by all"))
        }
        return out.joined(separator: "\n")
    }
}
