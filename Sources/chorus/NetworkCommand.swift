import ArgumentParser
import ChorusPeer
import Foundation

struct NetworkCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "network",
        abstract: "Show the whole network from one peer: every member's state, and where reachable its step, accuracy and distance.",
        discussion: """
            Reads the view of the peer at --admin (GET /status): every member it knows, with \
            the state it holds (alive, suspect, failed, left) and the incarnation. Members \
            whose admin endpoint is reachable from here (the peer at --admin, and every \
            --also HOST:PORT) add their own step, test accuracy, distance to their \
            neighbours, phase and how many members they see alive. A peer's admin address \
            is not part of the protocol, so give the others with --also (admin endpoints \
            stay on loopback by default: run it on each host, or through SSH tunnels). An \
            --also that does not answer is named on standard error with the reason, and the \
            exit status is then 1.

            Examples:
              chorus network --admin 127.0.0.1:8001
              chorus network --admin 127.0.0.1:8001 --also 127.0.0.1:8002 --also 127.0.0.1:8003 --json
            """
    )

    @OptionGroup var endpoint: AdminEndpoint

    @Option(name: .long, help: ArgumentHelp("Another peer's admin address, to report its own numbers. Repeatable.", valueName: "host:port"))
    var also: [String] = []

    @Flag(name: .long, help: "Print one JSON object: the view and, per member, what its own status says.")
    var json = false

    struct Row: Codable {
        var id: String
        var address: String
        /// As the peer at --admin sees it.
        var status: String
        var incarnation: UInt64
        /// From the member's own /status, when reachable.
        var phase: String?
        var step: UInt64?
        var testAccuracy: Double?
        var distanceToNeighbours: Double?
        var aliveInItsView: Int?
        var isolated: Bool?
    }

    func validate() throws {
        for text in also where HostPort(parsing: text) == nil {
            throw ValidationError("--also: expected HOST:PORT (an admin address), got \"\(text)\"")
        }
    }

    func run() throws {
        let origin = try endpoint.status()
        var own: [String: PeerStatus] = [origin.peerId: origin]
        // Every --also that does not answer is reported with its reason after the view, and
        // makes the exit status non-zero: a script must not take a partial view for a whole one.
        var unreachable: [Unreachable] = []
        for text in also {
            do {
                let status = try AdminClient.status(at: HostPort(parsing: text)!, timeout: endpoint.timeout)
                own[status.peerId] = status
            } catch {
                unreachable.append(Unreachable(admin: text, reason: error.description))
            }
        }
        defer { for u in unreachable { FileHandle.standardError.write(Data("network: --also \(u.admin): \(u.reason)\n".utf8)) } }
        let rows = origin.members.map { m -> Row in
            let s = own[m.id]
            return Row(id: m.id, address: m.address, status: m.status, incarnation: m.incarnation, phase: s?.phase, step: s?.step,
                       testAccuracy: s.map(\.testAccuracy), distanceToNeighbours: s?.distanceToNeighbours,
                       aliveInItsView: s?.members.filter { $0.status == "alive" }.count, isolated: s?.isolated)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            encoder.nonConformingFloatEncodingStrategy = PeerStatus.floatEncoding
            struct View: Codable { var seenFrom: String; var members: [Row]; var unreachable: [Unreachable] }
            print(String(decoding: try encoder.encode(View(seenFrom: origin.peerId, members: rows, unreachable: unreachable)), as: UTF8.self))
            if !unreachable.isEmpty { throw ExitCode(1) }
            return
        }
        let counts = Dictionary(grouping: rows, by: \.status).mapValues(\.count)
        let summary = ["alive", "suspect", "failed", "left"].compactMap { state in counts[state].map { "\($0) \(state)" } }.joined(separator: ", ")
        print("network seen from \(origin.peerId.prefix(8)) at \(origin.address): \(summary); \(own.count) reachable here"
              + (unreachable.isEmpty ? "" : ", \(unreachable.count) not (below)"))
        let widths = [10, 22, 8, 8, 9, 8, 9, 10, 6]
        print(StatusTable.pad(["ID", "ADDRESS", "STATE", "PHASE", "STEP", "ACCURACY", "DISTANCE", "SEES ALIVE", ""], widths))
        for r in rows {
            print(StatusTable.pad([
                String(r.id.prefix(8)), r.address, r.status, r.phase ?? "-", r.step.map(String.init) ?? "-",
                r.testAccuracy.map(StatusTable.percent) ?? "-", r.distanceToNeighbours.map { String(format: "%.2e", $0) } ?? "-",
                r.aliveInItsView.map(String.init) ?? "-", r.isolated == true ? "ISOLATED" : "",
            ], widths))
        }
        if !unreachable.isEmpty { throw ExitCode(1) }
    }

    struct Unreachable: Codable {
        var admin: String
        var reason: String
    }
}
