import ArgumentParser
import ChorusCrypto

struct Keygen: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Create a peer identity, a network key or a network authority.",
        discussion: """
            Without --network: writes DIR/identity.secret (Ed25519 seed, mode 0600), \
            DIR/identity.public (the peer id) and DIR/admin.token (mode 0600: the credential for \
            the peer's admin actions, POST /leave, GET /parameters and POST /faults), then \
            prints the peer id, which other peers put in their configuration to name this peer.

            With --admin-token: writes only DIR/admin.token, for an identity made before tokens.

            With --network: writes FILE holding a new 32-byte network key (mode 0600). Every peer \
            of one network needs a copy; peers with different network keys ignore each other.

            With --authority: writes DIR/authority.secret (mode 0600) and DIR/authority.public, \
            a network authority for admission: it certifies identities (chorus certify) and \
            revokes them (chorus revoke). Peers name DIR/authority.public in peer.authority; keep \
            the secret off the peers.

            Existing files are never overwritten.
            """
    )

    @Option(name: .long, help: ArgumentHelp("Directory for the identity, or file for the network key (with --network).", valueName: "path"))
    var out: String

    @Flag(name: .long, help: "Create a network key instead of a peer identity.")
    var network = false

    @Flag(name: .long, help: "Create only the admin token (DIR/admin.token) for an existing identity.")
    var adminToken = false

    @Flag(name: .long, help: "Create a network authority (DIR/authority.secret and DIR/authority.public) instead of a peer identity.")
    var authority = false

    func validate() throws {
        if [network, adminToken, authority].filter({ $0 }).count > 1 { throw ValidationError("give at most one of --network, --admin-token and --authority") }
    }

    func run() throws {
        do {
            if network {
                try KeyFiles.writeNetworkKey(NetworkKey.generate(), to: out)
                print("wrote network key to \(out) (mode 0600); copy it to every peer of this network")
            } else if authority {
                let id = try KeyFiles.writeAuthority(SigningKey.generate(), to: out)
                print("wrote a network authority to \(out) (authority.secret, mode 0600: keep it off the peers); its public key \(id) is in \(out)/\(KeyFiles.authorityPublicFileName), for peer.authority")
            } else if adminToken {
                try KeyFiles.writeAdminToken(to: out)
                print("wrote an admin token to \(out)\(out.hasSuffix(KeyFiles.adminTokenFileName) ? "" : "/" + KeyFiles.adminTokenFileName) (mode 0600); restart the peer to use it")
            } else {
                let id = try KeyFiles.writeIdentity(SigningKey.generate(), to: out)
                try KeyFiles.writeAdminToken(to: out)
                print(id)
            }
        } catch {
            throw UserError(error.description)
        }
    }
}
