import ArgumentParser
import ChorusPeer
import Foundation

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys",
        abstract: "Show a running peer's network keys, or make it re-read them from its configuration (a key rotation).",
        discussion: """
            Without --reload: prints the ids of the network keys the peer holds (GET /keys): \
            the primary, which seals its datagrams, and the accepted ones, which only open \
            others'. Key ids are public (every datagram carries one); the keys never leave the \
            peer's files.

            With --reload (needs the admin token): the peer reads its configuration file again \
            and installs the keys it names now, peer.network_key and peer.accepted_network_keys, \
            without a restart; nothing else changes, so no member notices. A restart reads the \
            same file, so what is installed survives it.

            Rotating a running network's key (docs/security.md, "Rotating the network key"):
              1. chorus keygen --network --out keys/new.key; copy it to every host.
              2. Every peer: accepted_network_keys = ["keys/new.key"], then chorus keys --reload.
              3. Every peer: network_key = "keys/new.key", accepted_network_keys = ["keys/network.key"], reload.
              4. Every peer: accepted_network_keys removed, reload. The old key may then be deleted.
            Each step on every peer before the next. A peer that was down during the rotation \
            and still names the old key hears nothing back; its log says so.

            Example:
              chorus keys --admin 127.0.0.1:8003 --admin-token Peers/local/keys/peer3/admin.token --reload
            """
    )

    @OptionGroup var endpoint: AdminEndpoint

    @Flag(help: "Make the peer re-read the network keys its configuration file names.")
    var reload = false

    func run() throws {
        let address = try endpoint.address()
        do {
            let response: AdminClient.Response
            if reload {
                guard let token = try endpoint.token() else {
                    throw UserError("a reload needs the peer's admin token: --admin-token DIR/admin.token (beside the peer's identity)")
                }
                response = try AdminClient.request("POST", "/keys/reload", token: token, at: address, timeout: endpoint.timeout)
            } else {
                response = try AdminClient.request("GET", "/keys", at: address, timeout: endpoint.timeout)
            }
            let text = String(decoding: response.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard response.status == 200 else {
                throw UserError("the peer at \(address) refused (HTTP \(response.status)): \(text)")
            }
            let keys = try JSONDecoder().decode(NetworkKeyIDs.self, from: Data(response.body))
            print("primary \(keys.primary) (seals and opens)")
            for id in keys.accepted { print("accepted \(id) (opens only)") }
        } catch let error as AdminClient.Failure {
            throw UserError(error.description)
        }
    }
}
