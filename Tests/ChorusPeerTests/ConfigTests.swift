import ChorusCrypto
import ChorusLearning
import Foundation
import Testing
@testable import ChorusPeer

@Test("a valid configuration parses with its defaults and resolves paths against its directory")
func validConfig() throws {
    let s = try Scratch()
    let config = try PeerConfig.parse(s.config(), file: s.path + "/peer.toml")
    #expect(config.identityPath == s.path + "/a")
    #expect(config.checkpointPath == s.path + "/state/peer.checkpoint")
    #expect(config.neighbours.map(\.id) == [s.peerB])
    #expect(config.model == .softmax)
    #expect(config.batchSize == 32 && config.stepsPerRound == 5 && config.gossipInterval == 0.1)
    #expect(config.wire.maxDatagramSize == 1200)
}

@Test("--membership-only gives the instance no rounds, no model to wait for and no checkpoints")
func membershipOnlySettings() throws {
    let s = try Scratch()
    var config = try PeerConfig.parse(s.config(), file: s.path + "/peer.toml")
    config.fetchModel = true  // as --join sets it
    #expect(config.peerSettings.gossipRounds && config.peerSettings.fetchModel && config.peerSettings.checkpointInterval > 0)
    config.membershipOnly = true
    #expect(!config.peerSettings.gossipRounds && !config.peerSettings.fetchModel && config.peerSettings.checkpointInterval == 0)
}

/// Each case: a mistake, the field the message must name, and a fragment of the message.
struct ConfigMistake: CustomTestStringConvertible, Sendable {
    let name: String
    let edit: @Sendable (String) -> String
    let field: String
    let fragment: String
    var testDescription: String { name }
}

let configMistakes: [ConfigMistake] = [
    .init(name: "missing required field", edit: { $0.replacingOccurrences(of: "network_key = \"network.key\"\n", with: "") },
          field: "peer.network_key", fragment: "missing (required)"),
    .init(name: "missing section", edit: { $0.replacingOccurrences(of: "[peer]", with: "[peers]") },
          field: "peer", fragment: "missing section [peer]"),
    .init(name: "unknown field", edit: { $0.replacingOccurrences(of: "learning_rate = 0.05", with: "learning_rate = 0.05\nlearnig_rate = 0.1") },
          field: "learning.learnig_rate", fragment: "unknown field"),
    .init(name: "unknown section", edit: { $0 + "\n[gosip]\ninterval_ms = 5\n" },
          field: "gosip", fragment: "unknown field"),
    .init(name: "wrong type", edit: { $0.replacingOccurrences(of: "learning_rate = 0.05", with: "learning_rate = \"fast\"") },
          field: "learning.learning_rate", fragment: "expected a number between"),
    .init(name: "value out of range", edit: { $0.replacingOccurrences(of: "learning_rate = 0.05", with: "momentum = 1.5") },
          field: "learning.momentum", fragment: "got 1.5"),
    .init(name: "integer where a string is expected", edit: { $0.replacingOccurrences(of: "kind = \"softmax\"", with: "kind = 3") },
          field: "model.kind", fragment: "expected a string, got an integer"),
    .init(name: "unknown model", edit: { $0.replacingOccurrences(of: "kind = \"softmax\"", with: "kind = \"resnet\"") },
          field: "model.kind", fragment: "expected softmax or mlp"),
    .init(name: "bad partition", edit: { $0.replacingOccurrences(of: "partition = \"iid\"", with: "partition = \"dirichlet:-1\"") },
          field: "data.partition", fragment: "dirichlet:ALPHA"),
    .init(name: "shard outside shards", edit: { $0.replacingOccurrences(of: "shard = 0", with: "shard = 2") },
          field: "data.shard", fragment: "must be below data.shards"),
    .init(name: "malformed address", edit: { $0.replacingOccurrences(of: "address = \"127.0.0.1:7002\"", with: "address = \"127.0.0.1\"") },
          field: "neighbours[0].address", fragment: "expected \"HOST:PORT\""),
    .init(name: "port out of range", edit: { $0.replacingOccurrences(of: "address = \"127.0.0.1:7002\"", with: "address = \"127.0.0.1:70000\"") },
          field: "neighbours[0].address", fragment: "between 1 and 65535"),
    .init(name: "neighbour id in the wrong format", edit: { s in s.replacingOccurrences(of: "id = \"", with: "id = \"zz") },
          field: "neighbours[0].id", fragment: "64 hexadecimal characters"),
    .init(name: "both id and id_file", edit: { $0.replacingOccurrences(of: "address = \"127.0.0.1:7002\"", with: "address = \"127.0.0.1:7002\"\nid_file = \"b/identity.public\"") },
          field: "neighbours[0]", fragment: "exactly one of id"),
    .init(name: "missing id_file", edit: { s in
        s.replacingOccurrences(of: #"id = "[0-9a-f]{64}""#, with: "id_file = \"nowhere/identity.public\"", options: .regularExpression) },
          field: "neighbours[0].id_file", fragment: "is missing or does not hold a peer id"),
    .init(name: "invalid TOML", edit: { $0 + "\n[[broken\n" }, field: "", fragment: "invalid TOML at line"),
    .init(name: "datagrams too small for membership messages", edit: { $0 + "\n[gossip]\nmax_datagram_size = 400\n" },
          field: "gossip.max_datagram_size", fragment: "expected at least"),
    .init(name: "probe timeout not shorter than the profile's probe interval", edit: { $0 + "\n[membership]\nprobe_interval_ms = 400\n" },
          field: "membership.probe_timeout_ms", fragment: "must be shorter than membership.probe_interval_ms (400 ms"),
    .init(name: "a staleness setting of the one-round-late rule", edit: { $0 + "\n[gossip]\nmax_contribution_age_ms = 800\n" },
          field: "gossip.max_contribution_age_ms", fragment: "no longer used: rounds are aligned"),
    .init(name: "an unknown mixing", edit: { $0 + "\n[gossip]\nmixing = \"pull\"\n" },
          field: "gossip.mixing", fragment: "expected plain | push-sum, got \"pull\""),
    .init(name: "Metropolis–Hastings on a directed topology", edit: { $0 + "\n[gossip]\ntopology = \"one-peer-exponential\"\n" },
          field: "gossip.weights", fragment: "need an undirected topology"),
    .init(name: "a collection window as long as the round", edit: { $0 + "\n[gossip]\ninterval_ms = 100\ncollect_ms = 100\n" },
          field: "gossip.collect_ms", fragment: "must be shorter than gossip.interval_ms (100 ms)"),
    .init(name: "the topology in both sections", edit: { $0 + "\n[gossip]\ntopology = \"ring\"\n[membership]\ntopology = \"ring\"\n" },
          field: "membership.topology", fragment: "give the topology once"),
    .init(name: "an unknown start", edit: { $0.replacingOccurrences(of: "kind = \"softmax\"", with: "kind = \"softmax\"\nstart = \"zeros\"") },
          field: "model.start", fragment: "expected \"shared\""),
    .init(name: "the advertise placeholder of chorus init's join.toml", edit: { $0.replacingOccurrences(of: "127.0.0.1:7999", with: "NEW-HOST:7000") },
          field: "peer.advertise", fragment: "\"NEW-HOST:7000\" is the placeholder chorus init writes"),
    .init(name: "advertising every interface", edit: { $0.replacingOccurrences(of: "127.0.0.1:7999", with: "0.0.0.0:7000") },
          field: "peer.advertise", fragment: "means every interface"),
    .init(name: "binding every interface without advertise", edit: {
        $0.replacingOccurrences(of: "bind = \"127.0.0.1:0\"\nadvertise = \"127.0.0.1:7999\"", with: "bind = \"0.0.0.0:7000\"") },
          field: "peer.advertise", fragment: "missing, so peer.bind is advertised, and \"0.0.0.0:7000\" means every interface"),
    .init(name: "synthetic data of 10⁷ × 10⁷ values", edit: {
        $0.replacingOccurrences(of: "partition = \"iid\"", with: "partition = \"iid\"\nsource = \"synthetic\"\nsamples = 10000000\nfeatures = 10000000") },
          field: "data.samples", fragment: "data.samples × data.features = 10000000 × 10000000 values need 1.1 PiB"),
    .init(name: "100 000 classes × 10⁷ features", edit: {
        $0.replacingOccurrences(of: "partition = \"iid\"", with: "partition = \"iid\"\nsource = \"synthetic\"\nsamples = 10\nfeatures = 10000000\nclasses = 100000") },
          field: "data.features", fragment: "model softmax with data.features = 10000000 and data.classes = 100000 has 1000000100000 parameters"),
    .init(name: "an mlp of 100 000 hidden units × 10⁷ features", edit: {
        $0.replacingOccurrences(of: "kind = \"softmax\"", with: "kind = \"mlp\"\nhidden = 100000")
          .replacingOccurrences(of: "partition = \"iid\"", with: "partition = \"iid\"\nsource = \"synthetic\"\nsamples = 10\nfeatures = 10000000") },
          field: "model.hidden", fragment: "over the 8 GiB budget of one peer"),
    .init(name: "a string field of 5000 bytes", edit: { $0.replacingOccurrences(of: "kind = \"softmax\"", with: "kind = \"\(String(repeating: "x", count: 5000))\"") },
          field: "model.kind", fragment: "a string of 5000 bytes; at most 4096 accepted"),
]

@Test("each kind of configuration mistake gives one line naming the file and the field", arguments: configMistakes)
func configMistake(_ mistake: ConfigMistake) throws {
    let s = try Scratch()
    let file = s.path + "/peer.toml"
    do {
        _ = try PeerConfig.parse(s.config(mistake.edit), file: file)
        Issue.record("accepted: \(mistake.name)")
    } catch {
        let message = error.description
        #expect(message.hasPrefix(file + ": "), "\(message)")
        if !mistake.field.isEmpty { #expect(message.contains("field '\(mistake.field)'"), "\(message)") }
        #expect(message.contains(mistake.fragment), "\(message)")
        #expect(!message.contains("\n"))
    }
}

@Test("a missing configuration file is named")
func missingFile() {
    #expect(throws: ConfigError(file: "/nonexistent/peer.toml", field: nil, "no such file")) {
        try PeerConfig.load(path: "/nonexistent/peer.toml")
    }
}

@Test("unreadable, malformed and too-open key files name the config field and the key file")
func keyFileMistakes() throws {
    let s = try Scratch()
    let file = s.write(s.config())
    let config = try PeerConfig.load(path: file)

    chmod(s.path + "/network.key", 0o644)
    do {
        _ = try PeerRunner.prepare(config: config)
        Issue.record("accepted a world-readable network key")
    } catch {
        let message = "\(error)"
        #expect(message.contains("field 'peer.network_key'") && message.contains("chmod 600"), "\(message)")
    }
    chmod(s.path + "/network.key", 0o600)

    try FileManager.default.removeItem(atPath: s.path + "/a/identity.secret")
    do {
        _ = try PeerRunner.prepare(config: config)
        Issue.record("accepted a missing identity")
    } catch {
        let message = "\(error)"
        #expect(message.contains("field 'peer.identity'") && message.contains("identity.secret"), "\(message)")
    }
}

@Test("host:port parsing accepts IPv4, names and bracketed IPv6, and rejects the rest")
func hostPort() {
    #expect(HostPort(parsing: "127.0.0.1:7001") == HostPort(host: "127.0.0.1", port: 7001))
    #expect(HostPort(parsing: "[::1]:80") == HostPort(host: "::1", port: 80))
    #expect(HostPort(parsing: "example.org:1") == HostPort(host: "example.org", port: 1))
    #expect(HostPort(parsing: "[::1]:80")?.description == "[::1]:80")
    for bad in ["", "host", ":80", "host:", "host:0", "host:65536", "::1:80", "a b:1", "host:-1"] {
        #expect(HostPort(parsing: bad) == nil, "\(bad)")
    }
    #expect(HostPort(parsing: "0.0.0.0:0", allowZero: true)?.port == 0)
}

@Test("a hosts file: defaults and per-host settings, the shell template, and every mistake named with its field")
func hostsFile() throws {
    let dir = NSTemporaryDirectory() + "chorus-hosts-\(UInt32.random(in: 0...UInt32.max))"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(atPath: dir) }
    func load(_ text: String) throws -> [LocalNetwork.Host] {
        let path = dir + "/hosts.toml"
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return try LocalNetwork.Host.load(path: path)
    }
    let hosts = try load("""
        directory = "/var/tmp/{host}"
        binary = "/usr/local/bin/chorus"
        [[host]]
        name = "alice@a.example"
        address = "192.0.2.10"
        [[host]]
        name = "ns2"
        address = "10.0.0.2"
        shell = "ip netns exec {host} sh -c {command}"
        binary = "copy"
        """)
    #expect(hosts.count == 2)
    #expect(hosts[0].argv("echo hi") == ["ssh", "alice@a.example", "echo hi"], "ssh takes the command as one argument, appended")
    #expect(hosts[1].argv("cd /x && exec y") == ["ip", "netns", "exec", "ns2", "sh", "-c", "cd /x && exec y"], "{command} is one argument where it stands")
    #expect(hosts[0].binary == "/usr/local/bin/chorus" && hosts[1].binary == nil, "\"copy\" copies this binary")
    #expect(hosts[1].runDirectory("run1") == "/var/tmp/ns2/run1", "{host} in the directory")
    #expect(shellQuoted("it's") == "'it'\\''s'")
    for (text, field) in [
        ("[[host]]\naddress = \"192.0.2.1\"\n", "host[0].name"),
        ("[[host]]\nname = \"a\"\naddress = \"192.0.2.1:7000\"\n", "host[0].address"),
        ("directory = \"tmp\"\n[[host]]\nname = \"a\"\naddress = \"192.0.2.1\"\n", "directory"),
        ("[[host]]\nname = \"a\"\naddress = \"192.0.2.1\"\nport = 3\n", "host[0].port"),
        ("[[host]]\nname = \"a\"\naddress = \"192.0.2.1\"\n[[host]]\nname = \"a\"\naddress = \"192.0.2.2\"\n", "host"),
        ("shell = \"{host} go\"\n[[host]]\nname = \"a\"\naddress = \"192.0.2.1\"\n", "shell"),
        ("shel = \"ssh\"\n[[host]]\nname = \"a\"\naddress = \"192.0.2.1\"\n", "shel"),
        ("", "host"),
    ] {
        do {
            _ = try load(text)
            Issue.record("accepted: \(text)")
        } catch let error as ConfigError {
            #expect(error.field == field && error.file.hasSuffix("hosts.toml"), "\(error) for \(text)")
        }
    }
}
