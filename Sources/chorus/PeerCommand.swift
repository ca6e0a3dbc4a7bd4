import ArgumentParser
import ChorusCore
import ChorusCrypto
import ChorusPeer
import Foundation
import Logging

struct PeerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peer",
        abstract: "Run one peer from a configuration file until SIGINT or SIGTERM.",
        discussion: """
            The peer trains on its data shard, gossips its parameters to its neighbours over UDP \
            every gossip interval and mixes what it receives. On SIGINT/SIGTERM it stops, saves \
            its checkpoint (peer.checkpoint) and exits; started again with the same file, it \
            resumes from the checkpoint.

            Peers find each other through the membership protocol (SWIM with Lifeguard): the \
            configured neighbours and seeds, or --join HOST:PORT, are only entry points; the \
            neighbours a peer averages with follow the live membership. SIGINT, SIGTERM or \
            POST /leave make a graceful leave (announced as "left", parameters handed over, exit \
            within 2 s).

            The configuration format is described field by field in Peers/README.md; Peers/local/ \
            holds a four-peer example. While it runs:
              chorus status --admin 127.0.0.1:8001
              chorus members --admin 127.0.0.1:8001
            """
    )

    @Option(name: .long, help: ArgumentHelp("The peer's TOML configuration file.", valueName: "file"))
    var config: String

    @Option(name: .long, help: ArgumentHelp(
        "Join a running network through the peer at this UDP address: get the view from it and the current model from a neighbour before training. Repeatable.",
        valueName: "host:port"))
    var join: [String] = []

    @Option(name: .long, help: ArgumentHelp("Fault injection: drop this fraction of outgoing datagrams (0–1; overrides faults.drop).", valueName: "p"))
    var drop: Double?

    @Option(name: .long, help: ArgumentHelp("Fault injection: delay outgoing datagrams by MIN or MIN-MAX milliseconds (overrides faults.delay_min_ms and delay_max_ms).", valueName: "ms"))
    var delayMs: String?

    @Option(name: .long, help: ArgumentHelp("Fault injection: send this fraction of datagrams twice (0–1; overrides faults.duplicate).", valueName: "p"))
    var duplicate: Double?

    @Option(name: .long, help: ArgumentHelp("Fault injection: cut this peer off in both directions (a partition; adds to faults.blocked). Its id, or a unique prefix of a configured neighbour's. Repeatable.", valueName: "peer-id"))
    var block: [String] = []

    @Option(name: .long, help: ArgumentHelp("Least important entries logged: trace | debug | info | notice | warning | error | critical.", valueName: "level"))
    var logLevel = "info"

    @Option(name: .long, help: ArgumentHelp("Log lines on standard error as text (time, level, message, peer=…) or json (one object per line).", valueName: "format"))
    var logFormat = "text"

    @Flag(name: .long, help: "Take part in membership only: no training, gossip rounds or parameters (for measuring membership, as scripts/memberlist-compare.sh does).")
    var membershipOnly = false

    @Flag(name: .long, help: .hidden)
    var exitWithParent = false

    /// For experiments on poisoned parameters only (docs/security.md): send 10^30 (huge) or
    /// random values (random) instead of this peer's parameters.
    @Option(name: .long, help: .hidden)
    var poison: String?

    func validate() throws {
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level: expected one of \(Logger.Level.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(logLevel)\"")
        }
        guard PeerLogHandler.Format(rawValue: logFormat) != nil else { throw ValidationError("--log-format: expected text or json, got \"\(logFormat)\"") }
    }

    func run() async throws {
        var parsed: PeerConfig
        do { parsed = try PeerConfig.load(path: config) } catch { throw UserError(error.description) }
        for text in join {
            guard let seed = HostPort(parsing: text) else { throw ValidationError("--join: expected HOST:PORT, got \"\(text)\"") }
            parsed.seeds.append(seed)
            parsed.fetchModel = true
        }
        parsed.membershipOnly = membershipOnly
        if let poison {
            guard let kind = Poison(rawValue: poison) else { throw ValidationError("--poison: expected huge or random, got \"\(poison)\"") }
            parsed.poison = kind
        }
        if let drop {
            guard (0...1).contains(drop) else { throw ValidationError("--drop: expected a probability between 0 and 1, got \(drop)") }
            parsed.faults.drop = drop
        }
        if let duplicate {
            guard (0...1).contains(duplicate) else { throw ValidationError("--duplicate: expected a probability between 0 and 1, got \(duplicate)") }
            parsed.faults.duplicate = duplicate
        }
        if let delayMs {
            let parts = delayMs.split(separator: "-").map { Double($0) }
            guard (1...2).contains(parts.count), parts.allSatisfy({ $0 != nil && $0! >= 0 }), parts.last!! >= parts.first!! else {
                throw ValidationError("--delay-ms: expected MIN or MIN-MAX milliseconds (e.g. 5-20), got \"\(delayMs)\"")
            }
            parsed.faults.delay = parts.first!! / 1000...parts.last!! / 1000
        }
        for text in block {
            // Before it runs, a peer knows only its configured neighbours: a prefix names one of them.
            do { parsed.faults.blocked.insert(try PeerID.resolve(text, among: parsed.neighbours.map(\.id))) } catch {
                throw ValidationError("--block: \(error)\(error == .unknown(text) ? " among the configured neighbours; give all 64 characters for another peer" : "")")
            }
        }
        do {
            let level = Logger.Level(rawValue: logLevel)!, format = PeerLogHandler.Format(rawValue: logFormat)!
            let log = Logger(label: "chorus.peer") { label in PeerLogHandler(label: label, level: level, format: format) }
            try await PeerRunner.run(config: parsed, exitWithParent: exitWithParent, log: log)
        } catch let error as StartupError {
            throw UserError(error.description)
        }
    }
}
