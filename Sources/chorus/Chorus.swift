import ArgumentParser

@main
struct Chorus: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chorus",
        abstract: "Peer-to-peer gossip training: peers train locally and average parameters with their neighbours over authenticated UDP.",
        discussion: """
            Typical first steps:
              chorus keygen --out keys/peer1           # a peer identity (prints its peer id)
              chorus keygen --network --out keys/network.key
            See README.md and Peers/README.md for running peers.
            """,
        subcommands: [Keygen.self, Bench.self]
    )
}

/// A mistake the user can fix; printed as one line, without a stack trace.
struct UserError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
