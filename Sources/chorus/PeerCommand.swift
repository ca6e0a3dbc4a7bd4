import ArgumentParser
import ChorusPeer
import Foundation

struct PeerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "peer",
        abstract: "Run one peer from a configuration file until SIGINT or SIGTERM.",
        discussion: """
            The peer trains on its data shard, gossips its parameters to its neighbours over UDP
            every gossip interval and mixes what it receives. On SIGINT/SIGTERM it stops, saves
            its checkpoint (peer.checkpoint) and exits; started again with the same file, it
            resumes from the checkpoint.

            The configuration format is described field by field in Peers/README.md; Peers/local/
            holds a four-peer example. While it runs:
              chorus status --admin 127.0.0.1:8001
            """
    )

    @Option(name: .long, help: ArgumentHelp("The peer's TOML configuration file.", valueName: "file"))
    var config: String

    @Flag(name: .long, help: .hidden)
    var exitWithParent = false

    func run() async throws {
        let parsed: PeerConfig
        do { parsed = try PeerConfig.load(path: config) } catch { throw UserError(error.description) }
        do {
            try await PeerRunner.run(config: parsed, exitWithParent: exitWithParent) { line in
                FileHandle.standardError.write(Data((line + "\n").utf8))
            }
        } catch let error as StartupError {
            throw UserError(error.description)
        }
    }
}
