import ArgumentParser
import ChorusAveraging
import ChorusCrypto
import ChorusLearning
import ChorusPeer
import Foundation

struct InitCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Write keys and one configuration per host for a new network on several machines.",
        discussion: """
            For each HOST:PORT of --hosts, writes DIR/peerN.toml (listening on 0.0.0.0:PORT, \
            or on HOST:PORT itself for a loopback host; advertising HOST:PORT; its own data \
            shard; the first peers as entry points) and DIR/keys/peerN/ (identity and admin \
            token), plus DIR/keys/network.key, DIR/join.toml (a peer that joins the running \
            network later, on the one data shard no starting peer uses) and DIR/README.txt \
            (what to copy where, and the commands to start). Peers on the same host get \
            consecutive admin ports from --admin-port. When every host is a loopback \
            address, the joiner gets its identity and a free port too, so all of it starts \
            without edits. Nothing is overwritten.

            Example:
              chorus init --hosts 192.0.2.10:7000,192.0.2.11:7000,192.0.2.12:7000 --out cluster
              scp -rp cluster host-a:            # then on host a:
              chorus peer --config cluster/peer1.toml
              chorus init --hosts 127.0.0.1:7001,127.0.0.1:7002,127.0.0.1:7003 --out local   # one machine

            Every secret (network key, identities, admin tokens) is created here: copy the \
            directory to each host over a secure channel and remove the other hosts' \
            keys/peerN/ from each. Peers/systemd/chorus-peer@.service runs a peer as a service.
            """
    )

    @Option(help: ArgumentHelp("The peers' addresses, comma-separated (the address each is reached at).", valueName: "host:port,…"))
    var hosts: String

    @Option(help: "Directory to write (created; must not hold a configuration yet).")
    var out: String

    @Option(help: "Model: softmax | mlp | mlp:HIDDEN[:relu|tanh].")
    var model = "softmax"

    @Option(help: "Data partition across peers: iid | dirichlet:ALPHA.")
    var partition = "iid"

    @Option(help: "Admin endpoint port (on 127.0.0.1) of the first peer on each host; the next peers on the same host take the next ports.")
    var adminPort = 8000

    var addresses: [HostPort] { hosts.split(separator: ",").compactMap { HostPort(parsing: $0.trimmingCharacters(in: .whitespaces)) } }

    func validate() throws {
        let parts = hosts.split(separator: ",", omittingEmptySubsequences: false)
        for (index, part) in parts.enumerated() where HostPort(parsing: part.trimmingCharacters(in: .whitespaces)) == nil {
            throw ValidationError("--hosts: entry \(index + 1) \"\(part)\" is not HOST:PORT (e.g. 192.0.2.10:7000)")
        }
        guard Set(addresses).count == addresses.count else { throw ValidationError("--hosts: an address is listed twice") }
        guard (1...1000).contains(addresses.count) else { throw ValidationError("--hosts: give 1 to 1000 addresses") }
        let perHost = Dictionary(grouping: addresses, by: \.host).values.map(\.count).max() ?? 1
        guard (1...65535).contains(adminPort), adminPort + perHost <= 65535 else {
            throw ValidationError("--admin-port must be 1–\(65535 - perHost) (\(perHost) peers share a host and take consecutive ports), got \(adminPort)")
        }
        guard (try? ModelSpec(parsing: model)) != nil else { throw ValidationError("--model: expected softmax, mlp or mlp:HIDDEN, got \"\(model)\"") }
        guard (try? PartitionScheme(parsing: partition)) != nil else { throw ValidationError("--partition: expected iid or dirichlet:ALPHA, got \"\(partition)\"") }
    }

    func run() throws {
        let fm = FileManager.default
        if fm.fileExists(atPath: out + "/peer1.toml") || fm.fileExists(atPath: out + "/keys/network.key") {
            throw UserError("--out \(out): already holds a network (peer1.toml or keys/network.key); refusing to overwrite — pick another directory")
        }
        do {
            try fm.createDirectory(atPath: out + "/keys", withIntermediateDirectories: true)
            try KeyFiles.writeNetworkKey(NetworkKey.generate(), to: out + "/keys/network.key")
            var ids: [PeerID] = []
            for index in addresses.indices {
                let dir = "\(out)/keys/peer\(index + 1)"
                ids.append(try KeyFiles.writeIdentity(SigningKey.generate(), to: dir))
                try KeyFiles.writeAdminToken(to: dir)
            }
            for index in addresses.indices {
                try write(config(index: index, ids: ids), to: "\(out)/peer\(index + 1).toml")
            }
            if allLoopback {
                try KeyFiles.writeIdentity(SigningKey.generate(), to: "\(out)/keys/joiner")
                try KeyFiles.writeAdminToken(to: "\(out)/keys/joiner")
            }
            try write(joiner(), to: "\(out)/join.toml")
            try write(readme(ids: ids), to: "\(out)/README.txt")
        } catch let error as KeyFileError {
            throw UserError(error.description)
        }
        print("wrote \(addresses.count) peer configurations, their keys and a joiner's configuration to \(out); see \(out)/README.txt")
    }

    private func write(_ text: String, to path: String) throws {
        guard !FileManager.default.fileExists(atPath: path) else { throw UserError("\(path): already exists; refusing to overwrite") }
        do { try text.write(toFile: path, atomically: true, encoding: .utf8) } catch { throw UserError("\(path): cannot write: \(error)") }
    }

    /// Every host is this machine: the joiner can be given a free port and an identity too.
    private var allLoopback: Bool { addresses.allSatisfy(\.isLoopback) }

    /// Peers that share a host take consecutive admin ports: the k-th on its host gets
    /// --admin-port + k. The joiner, on a loopback network, comes after all of them.
    private func adminAddress(_ index: Int?) -> HostPort {
        guard let index else { return HostPort(host: "127.0.0.1", port: adminPort + (allLoopback ? addresses.count : 0)) }
        let onSameHost = addresses[..<index].filter { $0.host == addresses[index].host }.count
        return HostPort(host: "127.0.0.1", port: adminPort + onSameHost)
    }

    /// A loopback host is bound as itself (no other interface is needed); others on every interface.
    private func bindLine(_ a: HostPort) -> String {
        a.isLoopback ? "bind = \"\(a)\"" : "bind = \"0.0.0.0:\(a.port)\"                # every interface; open UDP \(a.port) between the hosts"
    }

    /// One shard more than peers: the last is the joiner's, so it brings data nobody trains on yet.
    private var shards: Int { addresses.count + 1 }

    /// Entry points: the first two peers (the first peer's are the next two), so any start order works.
    private func entryPoints(excluding index: Int?) -> [Int] {
        Array(addresses.indices.filter { $0 != index }.prefix(2))
    }

    private func common(shard: Int, shards: Int) -> [String] {
        [
            "",
            "[model]",
            "kind = \"\(model)\"",
            "",
            "[data]",
            "source = \"digits\"",
            "partition = \"\(partition)\"",
            "shards = \(shards)",
            "shard = \(shard)",
            "seed = 1",
            "",
            "[learning]",
            "learning_rate = 0.05",
            "steps_per_round = 5",
            "",
            "[gossip]",
            "interval_ms = 100",
        ]
    }

    private func config(index: Int, ids: [PeerID]) -> String {
        let a = addresses[index]
        var lines = [
            "# Peer \(index + 1) of \(addresses.count), written by chorus init. Fields: Peers/README.md.",
            "[peer]",
            bindLine(a),
            "advertise = \"\(a)\"",
            "identity = \"keys/peer\(index + 1)\"          # identity.secret, identity.public, admin.token",
            "network_key = \"keys/network.key\"",
            "admin = \"\(adminAddress(index))\"",
            "checkpoint = \"state/peer\(index + 1).checkpoint\"",
        ] + common(shard: index, shards: shards)
        for entry in entryPoints(excluding: index) {
            lines += ["", "[[neighbours]]                          # an entry point; neighbours then follow the membership",
                      "id = \"\(ids[entry])\"", "address = \"\(addresses[entry])\""]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    private func joiner() -> String {
        let seeds = entryPoints(excluding: nil).map { "\"\(addresses[$0])\"" }.joined(separator: ", ")
        // On one machine the joiner is ready to start; elsewhere its host is not known yet.
        let local = allLoopback ? HostPort(host: addresses[0].host, port: (addresses.map(\.port).max() ?? 7000) + 1) : nil
        let header = local == nil ? [
            "# A peer that joins the running network later: give it its own identity first",
            "#   chorus keygen --out keys/joiner        (on the new host; the network key is copied)",
            "# set advertise to the new host's address, then",
            "#   chorus peer --config join.toml         (it joins through the seeds and takes the network's model)",
            "[peer]",
            "bind = \"0.0.0.0:\(addresses[0].port)\"",
            "advertise = \"NEW-HOST:\(addresses[0].port)\"     # replace with the new host's address (the peer refuses the placeholder)",
        ] : [
            "# A peer that joins the running network later, on this machine:",
            "#   chorus peer --config join.toml         (it joins through the seeds and takes the network's model)",
            "[peer]",
            bindLine(local!),
            "advertise = \"\(local!)\"",
        ]
        return (header + [
            "identity = \"keys/joiner\"",
            "network_key = \"keys/network.key\"",
            "admin = \"\(adminAddress(nil))\"",
            "checkpoint = \"state/joiner.checkpoint\"",
            "",
            "[membership]",
            "seeds = [\(seeds)]",
            "fetch_model = true                      # wait for the network's model before training",
        ] + common(shard: addresses.count, shards: shards).map {
            $0.hasPrefix("shard = ") ? $0 + "                              # the shard no starting peer uses; a second joiner takes a departed peer's" : $0
        }).joined(separator: "\n") + "\n"
    }

    private func readme(ids: [PeerID]) -> String {
        var lines = [
            "A Chorus network of \(addresses.count) peers, written by chorus init.",
            "",
            "On each host, copy this directory over a secure channel (scp -rp), then remove the",
            "other hosts' keys/peerN/ directories from it: each host needs keys/network.key and its own",
            "keys/peerN/ only. Open UDP between the hosts (docs/multi-machine.md), then start:",
            "",
        ]
        for (index, a) in addresses.enumerated() {
            lines.append("  on \(a.host): chorus peer --config peer\(index + 1).toml      # id \(ids[index].short)…, admin \(adminAddress(index))")
        }
        lines += [
            "",
            "Check a configuration without starting it: chorus validate peer1.toml",
            "Watch any peer on its host: chorus status --admin \(adminAddress(0))",
            "                            chorus members --admin \(adminAddress(0))",
            "Make one leave gracefully:  chorus leave --admin \(adminAddress(0)) --admin-token keys/peer1/admin.token",
            "As a service: Peers/systemd/chorus-peer@.service (see its comments).",
            "A peer joining later: join.toml (instructions inside).",
        ]
        return lines.joined(separator: "\n") + "\n"
    }
}
