import ArgumentParser
import ChorusPeer
import Foundation

struct LeaveCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "leave",
        abstract: "Make a running peer leave the network gracefully, and wait until it has gone.",
        discussion: """
            Sends POST /leave to the peer's admin endpoint (it needs the admin token): the peer \
            announces "left" to the membership, hands its parameters to its neighbours, saves \
            its checkpoint and exits, within about 2 s. This command then waits until the \
            endpoint stops answering and exits 0; it exits non-zero if the peer refuses or is \
            still there after --wait seconds. The same as SIGTERM on the peer's host, from \
            wherever its admin endpoint is reachable. Started again with the same \
            configuration, the peer resumes from its checkpoint and rejoins.

            Example:
              chorus leave --admin 127.0.0.1:8003 --admin-token Peers/local/keys/peer3/admin.token
            """
    )

    @OptionGroup var endpoint: AdminEndpoint

    @Option(help: "Seconds to wait for the peer to exit.")
    var wait: Double = 15

    func validate() throws {
        guard wait.isFinite, wait >= 0 else { throw ValidationError("--wait must be a number of seconds ≥ 0, got \(wait)") }
    }

    func run() throws {
        let address = try endpoint.address()
        guard let token = try endpoint.token() else {
            throw UserError("a leave needs the peer's admin token: --admin-token DIR/admin.token (beside the peer's identity)")
        }
        let peer = try endpoint.status()
        let name = "peer \(peer.peerId.prefix(8)) (\(peer.address))"
        let started = Date()
        do {
            let response = try AdminClient.request("POST", "/leave", token: token, at: address, timeout: endpoint.timeout)
            guard response.status == 200 else {
                throw UserError("\(name) refused to leave (HTTP \(response.status)): \(String(decoding: response.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
            }
        } catch let error as AdminClient.Failure {
            throw UserError(error.description)
        }
        print("\(name) is leaving: announcing it, handing its parameters over, saving its checkpoint")
        while Date().timeIntervalSince(started) <= wait {
            // The peer is gone when its endpoint stops answering (or another process took the port).
            guard let now = try? AdminClient.status(at: address, timeout: 0.5), now.peerId == peer.peerId else {
                print(String(format: "%@ left after %.1f s", name, Date().timeIntervalSince(started)))
                return
            }
            usleep(100_000)
        }
        throw UserError("\(name) still answers at \(address) \(wait) s after it was asked to leave; see its log")
    }
}
