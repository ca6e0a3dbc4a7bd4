import ArgumentParser
import ChorusPeer

@main
struct Chorus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus",
        abstract: "Peer-to-peer gossip training: peers train locally and average parameters with their neighbours over authenticated UDP.",
        discussion: """
            Typical first steps:
              chorus demo                 # 8 local peer processes: train, churn, report
              chorus keygen --out Peers/local/keys/peer1        # also peer2, peer3, peer4
              chorus keygen --network --out Peers/local/keys/network.key
              chorus peer --config Peers/local/peer1.toml       # one terminal per peer
              chorus status --admin 127.0.0.1:8001
              chorus leave --admin 127.0.0.1:8003 --admin-token Peers/local/keys/peer3/admin.token
            Several machines: chorus init --hosts a:7000,b:7000,c:7000 --out cluster
            Convergence under churn: chorus simulate … and chorus experiment … (same files).
            See README.md, Peers/README.md and docs/.
            """,
        version: ChorusVersion.description,
        subcommands: [Keygen.self, CertifyCommand.self, RevokeCommand.self, InitCommand.self, PeerCommand.self, ValidateCommand.self, StatusCommand.self, MembersCommand.self, NetworkCommand.self, FaultsCommand.self, KeysCommand.self, LeaveCommand.self, DemoCommand.self, SimulateCommand.self, ExperimentCommand.self, BaselineCommand.self, TopologyCommand.self, Bench.self]
    )
}

/// A mistake the user can fix; printed as one line, without a stack trace.
struct UserError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
