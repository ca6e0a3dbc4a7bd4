import ArgumentParser
import ChorusPeer
import Foundation

struct ValidateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "validate",
        abstract: "Check peer configurations and the files they name, without starting a peer.",
        discussion: """
            For each CONFIG, does everything `chorus peer` checks before it opens a socket: \
            the TOML and every field (Peers/README.md), the identity, network key and admin \
            token files (present, well-formed, not readable by others), the model and data \
            shard, the checkpoint it would resume from, and every address resolving. Writes \
            nothing. Prints one line per file; exits non-zero if any file has a problem, naming \
            the file and field.

            Examples:
              chorus validate Peers/local/peer1.toml
              chorus validate cluster/*.toml
            """
    )

    @Argument(help: ArgumentHelp("Peer configuration files.", valueName: "config"))
    var configs: [String]

    func validate() throws {
        guard !configs.isEmpty else { throw ValidationError("give at least one configuration file") }
    }

    func run() throws {
        var failures = 0
        for path in configs {
            do {
                let config = try PeerConfig.load(path: path)
                let check = try PeerRunner.check(config: config)
                let resume = check.resumesAt.map { "resumes at step \($0)" } ?? "starts fresh"
                print("ok      \(path): peer \(check.peerID.short)…, advertises \(config.advertise), binds \(config.bind), "
                      + "admin \(config.admin)\(check.hasAdminToken ? " (token)" : ""), \(config.model) (\(check.parameterCount) parameters), "
                      + "shard \(config.shard) of \(config.shards), \(config.neighbours.count + config.seeds.count) entry points, \(resume)"
                      + (check.authority.map { ", admission by authority \($0.short)… (certificate checked)" } ?? ""))
            } catch {
                failures += 1
                FileHandle.standardError.write(Data("invalid \("\(error)".hasPrefix(path) ? "" : path + ": ")\(error)\n".utf8))
            }
        }
        if failures > 0 { throw ExitCode(1) }
    }
}
