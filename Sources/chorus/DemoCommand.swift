import ArgumentParser
import ChorusAveraging
import ChorusLearning
import ChorusPeer
import Foundation

struct DemoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Start a local network of peer processes, train, and report accuracy and consensus.",
        discussion: """
            Starts N `chorus peer` processes on 127.0.0.1 with fresh keys in a temporary
            directory, wires them into a connected topology, trains for the given duration while
            showing progress (mean and minimum test accuracy, largest distance to the network
            average), stops them gracefully and prints a table per peer. The learning rate decays
            to zero by a cosine over the first 85 % of the run, so the last seconds are pure
            averaging and the peers end in consensus. Ctrl-C stops every peer and removes the
            temporary files.
            """
    )

    @Option(help: "Number of peer processes.")
    var peers = 8

    @Option(help: "Seconds of training.")
    var duration: Double = 40

    @Option(help: "Model: softmax | mlp | mlp:HIDDEN.")
    var model = "softmax"

    @Option(help: "Data partition across peers: iid | dirichlet:ALPHA.")
    var partition = "iid"

    @Option(help: ArgumentHelp("Topology: \(Topology.help).", valueName: "topology"))
    var topology = "exponential"

    @Option(help: "Seed for data split, partition and initial parameters.")
    var seed: UInt64 = 1

    @Flag(help: "Print the summary as one JSON object (progress still goes to standard error).")
    var json = false

    @Flag(help: "Keep the temporary directory (configs, keys, logs, checkpoints) and print its path.")
    var keep = false

    func validate() throws {
        guard (2...64).contains(peers) else { throw ValidationError("--peers must be between 2 and 64, got \(peers)") }
        guard duration >= 5 else { throw ValidationError("--duration must be at least 5 seconds, got \(duration)") }
        guard (try? ModelSpec(parsing: model)) != nil else { throw ValidationError("--model: expected softmax, mlp or mlp:HIDDEN, got \"\(model)\"") }
        guard (try? PartitionScheme(parsing: partition)) != nil else { throw ValidationError("--partition: expected iid or dirichlet:ALPHA, got \"\(partition)\"") }
        guard Topology(parsing: topology) != nil else { throw ValidationError("--topology: expected \(Topology.help), got \"\(topology)\"") }
    }

    func run() throws {
        var options = LocalNetwork.Options(executable: try Self.executablePath())
        options.peers = peers
        options.model = try ModelSpec(parsing: model)
        options.partition = try PartitionScheme(parsing: partition)
        options.topology = Topology(parsing: topology)!
        options.seed = seed
        let stepsPerSecond = Double(options.stepsPerRound) * 1000 / Double(options.gossipIntervalMs)
        options.cosineSteps = Int(duration * 0.85 * stepsPerSecond)
        let network: LocalNetwork
        do { network = try LocalNetwork(options: options) } catch { throw UserError("demo: cannot prepare the network: \(error)") }
        let cleanup = DemoCleanup(network: network, keep: keep)
        cleanup.installSignalHandlers()
        defer { cleanup.run() }

        progress("chorus demo: \(peers) peers, \(options.model), \(options.partition), \(options.topology) topology, \(Int(duration)) s; files in \(network.directory)")
        do {
            for index in network.members.indices { try network.start(index) }
            try network.waitUntilReady(Array(network.members.indices))
        } catch {
            throw UserError("demo: \(error)")
        }
        let start = Date()
        var last = Snapshot.take(network)
        while Date().timeIntervalSince(start) < duration {
            Thread.sleep(forTimeInterval: 1)
            last = Snapshot.take(network)
            progress(String(format: "%6.1f s   mean accuracy %5.1f %%   min %5.1f %%   max distance to average %.2e",
                            Date().timeIntervalSince(start), last.meanAccuracy * 100, last.minAccuracy * 100, last.maxDistance),
                     transient: true)
        }
        progress("")
        last = Snapshot.take(network)
        network.stopAll()
        if json {
            print(last.json())
        } else {
            print(last.table())
        }
        if keep { progress("kept \(network.directory)") }
    }

    private func progress(_ line: String, transient: Bool = false) {
        let tty = isatty(STDERR_FILENO) != 0
        let text = transient && tty ? "\r\(line)" : (line.isEmpty && !tty ? "" : (tty && !transient ? "\r\(line)\n" : "\(line)\n"))
        FileHandle.standardError.write(Data(text.utf8))
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
            if status != nil, let v = try? AdminClient.parameters(at: network.members[index].admin) {
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

    var accuracies: [Double] { rows.map { $0.status?.testAccuracy ?? 0 } }
    var meanAccuracy: Double { accuracies.isEmpty ? 0 : accuracies.reduce(0, +) / Double(accuracies.count) }
    var minAccuracy: Double { accuracies.min() ?? 0 }
    var maxDistance: Double { rows.map(\.distance).max() ?? .infinity }

    func table() -> String {
        var out = ["", "  PEER    ID        STEPS   LOSS     TEST ACC   DIST TO AVERAGE"]
        for r in rows {
            let s = r.status
            out.append(String(format: "  %@  %@  %6d  %7.4f  %7.2f %%   %.2e",
                              r.name, String((s?.peerId ?? "?").prefix(8)), Int(s?.step ?? 0), s?.loss ?? .nan,
                              (s?.testAccuracy ?? 0) * 100, r.distance))
        }
        out.append(String(format: "\n  mean accuracy %.2f %%, min %.2f %%, max relative distance to the average %.2e",
                          meanAccuracy * 100, minAccuracy * 100, maxDistance))
        return out.joined(separator: "\n")
    }

    func json() -> String {
        let peers: [[String: Any]] = rows.map { r in
            [
                "peerId": r.status?.peerId ?? "", "steps": Int(r.status?.step ?? 0),
                "loss": finite(r.status?.loss), "testAccuracy": r.status?.testAccuracy ?? 0,
                "relativeDistance": finite(r.distance),
            ]
        }
        let object: [String: Any] = [
            "peers": peers, "meanAccuracy": meanAccuracy, "minAccuracy": minAccuracy, "maxRelativeDistance": finite(maxDistance),
        ]
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
