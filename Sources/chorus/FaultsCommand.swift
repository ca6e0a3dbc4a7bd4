import ArgumentParser
import ChorusCrypto
import ChorusPeer
import Foundation

struct FaultsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "faults",
        abstract: "Show or change the faults a running peer injects: drop, delay, duplicate, blocked peers.",
        discussion: """
            Without a change option, prints the peer's current faults. With one, replaces \
            them all at once (POST /faults on the admin endpoint) and prints what the peer \
            now applies; options not given are cleared. Faults act in the peer's transport: \
            drop, delay and duplicate apply to what it sends, --drop-in to what it receives, \
            --link to what it sends one peer, and a blocked peer's datagrams are dropped in \
            both directions. Blocking each side's peers on the other side \
            makes a partition on a running network; --clear heals it. Peers are named by \
            their id or a unique prefix of it (4 characters or more), resolved against the \
            members the peer at --admin knows.

            Examples:
              chorus faults --admin 127.0.0.1:8001                          # show
              chorus faults --admin 127.0.0.1:8001 --admin-token Peers/local/keys/peer1/admin.token \\
                  --drop 0.05 --delay-ms 10-50
              chorus faults --admin … --admin-token … --drop-in 0.3           # loses 30 % of what it receives
              chorus faults --admin … --admin-token … --link 3f9c12ab=0.5:20   # half of what goes to one peer, 20 ms late
              chorus faults --admin … --admin-token … --block 3f9c12ab --block 77ab
              chorus faults --admin … --admin-token … --clear

            Changing faults needs the peer's admin token (chorus keygen writes it beside the \
            identity); showing them does not.
            """
    )

    @OptionGroup var endpoint: AdminEndpoint

    @Option(help: ArgumentHelp("Drop this fraction of outgoing datagrams (0–1).", valueName: "p"))
    var drop: Double?

    @Option(help: ArgumentHelp("Drop this fraction of incoming datagrams (0–1).", valueName: "p"))
    var dropIn: Double?

    @Option(help: ArgumentHelp("Fault the link to one peer: PEER-ID=DROP[:DELAY-MS], on what this peer sends it (the id or a unique prefix of at least 4 characters). Repeatable.", valueName: "peer-id=p[:ms]"))
    var link: [String] = []

    @Option(help: ArgumentHelp("Delay outgoing datagrams by MIN or MIN-MAX milliseconds.", valueName: "ms"))
    var delayMs: String?

    @Option(help: ArgumentHelp("Send this fraction of datagrams twice (0–1).", valueName: "p"))
    var duplicate: Double?

    @Option(help: ArgumentHelp("Cut this peer off in both directions (its id or a unique prefix, as chorus members shows it). Repeatable.", valueName: "peer-id"))
    var block: [String] = []

    @Flag(help: "Remove every fault.")
    var clear = false

    @Flag(help: "Print the JSON the peer answered.")
    var json = false

    var changes: Bool { clear || drop != nil || dropIn != nil || delayMs != nil || duplicate != nil || !block.isEmpty || !link.isEmpty }

    func validate() throws {
        if clear && (drop != nil || dropIn != nil || delayMs != nil || duplicate != nil || !block.isEmpty || !link.isEmpty) {
            throw ValidationError("--clear removes every fault: give it alone")
        }
        if let drop, !(0...1).contains(drop) { throw ValidationError("--drop must be in [0, 1], got \(drop)") }
        if let dropIn, !(0...1).contains(dropIn) { throw ValidationError("--drop-in must be in [0, 1], got \(dropIn)") }
        if let duplicate, !(0...1).contains(duplicate) { throw ValidationError("--duplicate must be in [0, 1], got \(duplicate)") }
        _ = try requested { text, option in
            // Prefixes are resolved against the peer's view in run(); here only their form.
            do { return try PeerID.resolve(text, among: []) } catch PeerID.PrefixError.unknown { return anyID } catch { throw ValidationError("\(option): \(error)") }
        }
    }

    /// Stands for a well-formed prefix while options are validated, before the view is read.
    private var anyID: PeerID { PeerID(text: String(repeating: "0", count: 64))! }

    /// A typed id or unique prefix, resolved against the members the peer at --admin knows.
    private func resolver(at address: HostPort) -> (String, String) throws -> PeerID {
        var known: [PeerID]?
        return { text, option in
            if let id = PeerID(text: text.lowercased()) { return id }
            if known == nil {
                do {
                    let status = try AdminClient.status(at: address, timeout: endpoint.timeout)
                    known = ([status.peerId] + status.members.map(\.id)).compactMap { PeerID(text: $0) }
                } catch { throw UserError("\(option) \(text): reading the peer's view to resolve the prefix: \(error)") }
            }
            do { return try PeerID.resolve(text, among: known!) } catch { throw UserError("\(option): \(error) in the view of \(address)") }
        }
    }

    /// The fault settings the options describe; `resolve` turns a typed id or prefix (and the
    /// option it came from) into a peer id.
    func requested(resolve: (String, String) throws -> PeerID) throws -> FaultSettings {
        var faults = FaultSettings()
        faults.drop = drop ?? 0
        faults.dropIn = dropIn ?? 0
        for text in link {
            let parts = text.split(separator: "=", maxSplits: 1).map(String.init)
            let values = parts.count == 2 ? parts[1].split(separator: ":").map { Double($0) } : []
            guard parts.count == 2, (1...2).contains(values.count), let p = values[0], (0...1).contains(p),
                  let ms = values.count == 2 ? values[1] : 0, (0...60_000).contains(ms)
            else { throw ValidationError("--link: expected PEER-ID=DROP[:DELAY-MS] (a peer id or a unique prefix of it, a probability in [0, 1], 0–60000 ms), got \"\(text)\"") }
            faults.links[try resolve(parts[0], "--link")] = LinkFault(drop: p, delayMs: ms)
        }
        faults.duplicate = duplicate ?? 0
        if let delayMs {
            let parts = delayMs.split(separator: "-", omittingEmptySubsequences: false).map { Double($0) }
            guard (1...2).contains(parts.count), let low = parts.first!, let high = parts.last!, low >= 0, high >= low, high <= 60_000 else {
                throw ValidationError("--delay-ms: expected MIN or MIN-MAX milliseconds (0 ≤ MIN ≤ MAX ≤ 60000), got \"\(delayMs)\"")
            }
            faults.delay = low / 1000...high / 1000
        }
        for text in block { faults.blocked.insert(try resolve(text, "--block")) }
        return faults
    }

    func run() throws {
        let address = try endpoint.address()
        let wanted = try requested(resolve: resolver(at: address))
        let token = try endpoint.token()
        if changes && token == nil {
            throw UserError("changing faults needs the peer's admin token: --admin-token DIR/admin.token (beside the peer's identity)")
        }
        let faults: FaultSettings
        do {
            faults = changes
                ? try AdminClient.setFaults(wanted, token: token, at: address, timeout: endpoint.timeout)
                : try AdminClient.faults(at: address, timeout: endpoint.timeout)
        } catch {
            throw UserError(error.description)
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: (try? encoder.encode(faults)) ?? Data(), as: UTF8.self))
            return
        }
        print("faults at \(address): \(faults.summary)")
        for id in faults.blocked.sorted() { print("  blocked \(id)") }
    }
}
