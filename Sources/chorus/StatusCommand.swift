import ArgumentParser
import ChorusCrypto
import ChorusPeer
import Foundation

struct StatusCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show a running peer's status: training progress, neighbours, traffic.",
        discussion: "Reads GET /status from the peer's admin endpoint (peer.admin in its configuration)."
    )

    @OptionGroup var endpoint: AdminEndpoint

    @Flag(name: .long, help: "Print the raw JSON instead of a table.")
    var json = false

    func run() throws {
        let address = try endpoint.address()
        if json {
            let response: AdminClient.Response
            do { response = try AdminClient.request("GET", "/status", at: address, timeout: endpoint.timeout) } catch { throw UserError(error.description) }
            print(String(decoding: response.body, as: UTF8.self))
            return
        }
        print(StatusTable.render(try endpoint.status()))
    }
}

/// The options of every command that asks a running peer's admin endpoint.
struct AdminEndpoint: ParsableArguments {
    @Option(name: .long, help: ArgumentHelp("The peer's admin address.", valueName: "host:port"))
    var admin: String

    @Option(name: .long, help: "Seconds to wait for an answer.")
    var timeout: Double = 2

    @Option(name: .long, help: ArgumentHelp("The peer's admin token file (beside its identity: DIR/admin.token), for actions that change the peer.", valueName: "file"))
    var adminToken: String?

    func token() throws -> String? {
        guard let adminToken else { return nil }
        do { return try KeyFiles.readAdminToken(at: adminToken) } catch { throw UserError("--admin-token: \(error.description)") }
    }

    func address() throws -> HostPort {
        guard let address = HostPort(parsing: admin) else {
            throw ValidationError("--admin: expected HOST:PORT (e.g. 127.0.0.1:8001), got \"\(admin)\"")
        }
        return address
    }

    func status() throws -> PeerStatus {
        let address = try address()
        do { return try AdminClient.status(at: address, timeout: timeout) } catch { throw UserError(error.description) }
    }
}

enum StatusTable {
    static func render(_ s: PeerStatus) -> String {
        var out: [String] = []
        out.append("peer        \(s.peerId)")
        out.append("address     \(s.address)   up \(seconds(s.uptime))   \(s.phase)\(s.isolated ? " (ISOLATED: no other member answers)" : "")   incarnation \(s.incarnation)   local health \(s.localHealth)")
        out.append("model       \(s.model), \(s.parameterCount) parameters")
        out.append("training    step \(s.step) (\(s.stepsTrained) trained here on \(s.samplesTrained) samples, \(s.stepsInherited) inherited), epoch \(s.epoch), test accuracy \(percent(s.testAccuracy)), test loss \(number(s.loss)), learning rate \(number(s.learningRate))")
        let distance = s.distanceToNeighbours.map { String(format: "%.2e", $0) + (s.distanceAge.map { " (\(seconds($0)) ago)" } ?? "") } ?? "not measured yet"
        out.append("averaging   \(s.mixes) rounds, \(s.contributionsMixed) contributions mixed, self weight \(String(format: "%.3f", s.selfWeight)), distance to neighbours \(distance)")
        if s.faults.isActive { out.append("faults      \(s.faults.summary) (chorus faults --admin … --clear to remove)") }
        out.append("traffic     sent \(bytes(s.bytesSent)) in \(s.datagramsSent) datagrams, received \(bytes(s.bytesReceived)) in \(s.datagramsReceived), rejected \(s.datagramsRejected)")
        if let sessions = s.sessions {
            let keys = s.pairedSessions.map { keyed in
                "per-pair keys with \(keyed) (\(s.confirmedPairs ?? 0) confirmed)"
            } ?? "no session keys (gossip.session_keys = false): traffic under the network key"
            out.append("sessions    \(sessions), \(keys)")
        }
        if !s.rejections.isEmpty {
            out.append("rejections  " + s.rejections.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))
        }
        out.append("")
        out.append("neighbours (\(s.neighbours.count))")
        out.append(pad(["ID", "ADDRESS", "WEIGHT", "LAST HEARD", "DEGREE"], [10, 22, 8, 12, 6]))
        for n in s.neighbours {
            out.append(pad([String(n.id.prefix(8)), n.address, String(format: "%.3f", n.weight),
                            n.lastHeard.map { seconds($0) + " ago" } ?? "never", n.degree.map(String.init) ?? "-"], [10, 22, 8, 12, 6]))
        }
        out.append("")
        out.append(members(s))
        return out.joined(separator: "\n")
    }

    static func members(_ s: PeerStatus) -> String {
        var out = ["members (\(s.members.filter { $0.status == "alive" }.count) alive of \(s.members.count) known)"]
        out.append(pad(["ID", "ADDRESS", "STATUS", "INCARNATION"], [10, 22, 8, 14]))
        for m in s.members {
            out.append(pad([String(m.id.prefix(8)), m.address, m.status, String(m.incarnation)], [10, 22, 8, 14]))
        }
        return out.joined(separator: "\n")
    }

    static func pad(_ columns: [String], _ widths: [Int]) -> String {
        "  " + zip(columns, widths).map { $0.padding(toLength: max($1, $0.count), withPad: " ", startingAt: 0) }.joined(separator: " ")
    }
    static func percent(_ x: Double) -> String { String(format: "%.1f %%", x * 100) }
    static func number(_ x: Double) -> String { x.isNaN ? "-" : String(format: "%.4g", x) }
    static func seconds(_ x: Double) -> String { String(format: x < 10 ? "%.1f s" : "%.0f s", x) }
    static func bytes(_ n: Int) -> String {
        n >= 1_000_000 ? String(format: "%.1f MB", Double(n) / 1e6) : n >= 1000 ? String(format: "%.1f kB", Double(n) / 1e3) : "\(n) B"
    }
}

struct MembersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "members",
        abstract: "Show a running peer's view of the network: every member with its state and incarnation.",
        discussion: "States: alive, suspect (probes failing; it may still refute), failed (declared dead), left (announced its departure). Failed and left members are kept as tombstones for a while."
    )

    @OptionGroup var endpoint: AdminEndpoint

    @Flag(name: .long, help: "Print the members as a JSON array (id, address, status, incarnation; this peer first).")
    var json = false

    func run() throws {
        let status = try endpoint.status()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(status.members), as: UTF8.self))
            return
        }
        print(StatusTable.members(status))
    }
}
