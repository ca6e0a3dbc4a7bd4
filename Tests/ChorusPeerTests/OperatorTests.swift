import ChorusCrypto
import Foundation
import Testing
@testable import ChorusPeer

@Test("/metrics: every series has the short peer label; training, convergence, membership, traffic, build and process series, histograms; promtool accepts it")
func metricsSeries() throws {
    let network = try LocalNetwork.forTests(peers: 3)
    defer { network.discard() }
    for index in 0..<3 { try network.start(index) }
    try network.waitUntilReady([0, 1, 2])
    // Wait until peer 0 has mixed (so the distance has a value) and probed; then crash peer 2
    // and wait until peer 0 declares it failed, so the detection histogram has a sample.
    let deadline = Date().addingTimeInterval(20)
    var status: PeerStatus?
    repeat {
        usleep(200_000)
        status = try? AdminClient.status(at: network.members[0].admin)
    } while (status?.distanceToNeighbours == nil || (status?.membershipCounts.probes ?? 0) == 0) && Date() < deadline
    let before = try #require(status, "peer 0 did not answer")
    _ = network.stop(2, signal: SIGKILL)
    let crashed = network.members[2].id.description
    let detectBy = Date().addingTimeInterval(20)
    while (try? AdminClient.status(at: network.members[0].admin))?.members.first(where: { $0.id == crashed })?.status != "failed"
            && Date() < detectBy { usleep(200_000) }
    let response = try AdminClient.request("GET", "/metrics", at: network.members[0].admin)
    #expect(response.status == 200)
    let text = String(decoding: response.body, as: UTF8.self)
    let samples = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
    let label = "peer=\"\(network.members[0].id.short)\""
    #expect(!samples.isEmpty && samples.allSatisfy { $0.contains(label) }, "a series without the short peer label")
    func value(_ series: String, _ labels: String...) -> Double? {
        samples.first { $0.hasPrefix(series + "{") && $0.contains(label) && labels.allSatisfy($0.contains) }
            .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
    }
    #expect(value("chorus_members", "state=\"alive\"") == 2)
    #expect(value("chorus_members", "state=\"failed\"") == 1, "peer 0 did not declare the crashed peer failed within 20 s")
    #expect(value("chorus_phase", "phase=\"training\"") == 1)
    #expect((value("chorus_bytes_total", "direction=\"sent\"") ?? 0) > 0)
    // Parameters went both ways (the peers have mixed), and probes were sent: these must be counted.
    #expect((value("chorus_payload_bytes_total", "channel=\"parameters\"", "direction=\"sent\"") ?? 0) > 0)
    #expect((value("chorus_payload_bytes_total", "channel=\"parameters\"", "direction=\"received\"") ?? 0) > 0)
    #expect(samples.contains { $0.hasPrefix("chorus_payload_bytes_total{") && $0.contains("channel=\"membership\"") && $0.contains("direction=\"received\"") })
    #expect((value("chorus_probes_total") ?? 0) >= Double(max(1, before.membershipCounts.probes)), "probes counted in /status: \(before.membershipCounts.probes)")
    // A number that only grows is a counter (rate() works on it); its name says so.
    #expect((value("chorus_steps_trained_total") ?? 0) > 0)
    #expect(text.contains("# TYPE chorus_steps_trained_total counter"))
    let distance = try #require(value("chorus_distance_to_neighbours"))
    #expect(distance.isFinite && distance >= 0)
    // What runs here, and the full id behind the short label.
    #expect(value("chorus_build_info", "version=\"\(ChorusVersion.release)\"", "wire_protocol=\"\(ChorusVersion.wireProtocol)\"") == 1)
    #expect(value("chorus_peer_info", "id=\"\(network.members[0].id)\"") == 1)
    #expect((value("process_resident_memory_bytes") ?? 0) > 1_000_000 && (value("process_open_fds") ?? 0) > 0)
    #expect((value("process_start_time_seconds") ?? 0) > Date().timeIntervalSince1970 - 600)
    // Histograms: one detection (suspicion to failed, within the 10 s target), one mix and one
    // training job per round.
    #expect(value("chorus_detection_seconds_count") == 1)
    #expect(value("chorus_detection_seconds_bucket", "le=\"10.0\"") == 1)
    #expect((value("chorus_mix_contributions_count") ?? 0) >= 1 && (value("chorus_mix_contributions_sum") ?? 0) >= 1)
    #expect((value("chorus_round_training_seconds_count") ?? 0) >= 1)
    // Every series the shipped Grafana dashboard draws exists.
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let dashboard = try String(contentsOf: root.appendingPathComponent("scripts/grafana-dashboard.json"), encoding: .utf8)
    let drawn = Set(dashboard.matches(of: /(chorus|process)_[a-z_]+/).map { String($0.output.0) })
    #expect(drawn.count >= 12)
    for series in drawn.sorted() { #expect(samples.contains { $0.hasPrefix(series + "{") }, "the dashboard draws \(series), which /metrics lacks") }
    for series in ["chorus_test_accuracy", "chorus_train_loss", "chorus_self_weight", "chorus_local_health", "chorus_suspicions_raised_total",
                   "chorus_refutations_total", "chorus_datagrams_total", "chorus_mixes_total"] {
        #expect(value(series) != nil, "\(series) missing")
    }
    // promtool (Debian's prometheus package) checks the exposition format and naming, when present.
    if let promtool = ["/usr/bin/promtool", "/usr/local/bin/promtool"].first(where: FileManager.default.isExecutableFile(atPath:)) {
        let check = Process()
        check.executableURL = URL(fileURLWithPath: promtool)
        check.arguments = ["check", "metrics"]
        let input = Pipe(), output = Pipe()
        check.standardInput = input
        check.standardOutput = output
        check.standardError = output
        try check.run()
        input.fileHandleForWriting.write(response.body.withUnsafeBytes { Data($0) })
        try input.fileHandleForWriting.close()
        check.waitUntilExit()
        let said = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(check.terminationStatus == 0 && said.isEmpty, "promtool check metrics: \(said)")
    }
}

@Test("read verbs print JSON with --json, and chorus --version names the release and the wire protocol")
func readVerbsJSON() throws {
    let version = try ChorusBinary.run(["--version"], timeout: 10)
    #expect(version.status == 0 && version.stdout.hasPrefix("chorus ") && version.stdout.contains("wire protocol"))
    let network = try LocalNetwork.forTests(peers: 2)
    defer { network.discard() }
    try network.start(0)
    try network.start(1)
    try network.waitUntilReady([0, 1])
    let admin = network.members[0].admin.description
    for verb in [["status"], ["members"], ["faults"], ["network"]] {
        let result = try ChorusBinary.run(verb + ["--admin", admin, "--json"], timeout: 10)
        #expect(result.status == 0, "\(verb): \(result.stderr)")
        #expect((try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) != nil, "\(verb) --json printed: \(result.stdout)")
    }
    // The whole network from p0, with p1 reachable too: both report their own step.
    let deadline = Date().addingTimeInterval(15)
    var rows: [[String: Any]] = []
    repeat {
        usleep(300_000)
        let result = try ChorusBinary.run(["network", "--admin", admin, "--also", network.members[1].admin.description, "--json"], timeout: 10)
        rows = ((try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) as? [String: Any])?["members"] as? [[String: Any]] ?? []
    } while rows.count < 2 && Date() < deadline
    #expect(rows.count == 2 && rows.allSatisfy { $0["status"] as? String == "alive" && $0["step"] is Int }, "\(rows)")
}

@Test("--log-format json: one object per line, the peer, member, address and step as fields; debug says what the protocol does")
func jsonLogs() throws {
    let network = try LocalNetwork.forTests(peers: 2)
    defer { network.discard() }
    try network.start(0, extraArguments: ["--log-format", "json"])
    try network.start(1, extraArguments: ["--log-format", "json", "--log-level", "debug"])
    try network.waitUntilReady([0, 1])
    sleep(2)
    network.stopAll()
    var objects: [[[String: String]]] = [[], []]
    for index in [0, 1] {
        let lines = try String(contentsOfFile: network.members[index].logPath, encoding: .utf8).split(separator: "\n")
        #expect(lines.count >= 3, "\(lines)")  // listening, a member alive, leaving, left
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            #expect(object?["level"] != nil && object?["message"] != nil && object?["time"]?.hasSuffix("Z") == true, "\(line)")
            #expect(object?["peer"] == network.members[index].id.short, "\(line)")
            if let object { objects[index].append(object) }
        }
    }
    func first(_ index: Int, _ message: String) -> [String: String]? { objects[index].first { $0["message"] == message } }
    let other = network.members[1].id.short
    #expect(first(0, "member alive")?["member"] == other && first(0, "member alive")?["address"] == network.members[1].udp.description,
            "the member and its address are fields, not words in the message: \(objects[0])")
    #expect(first(0, "listening")?["id"] == network.members[0].id.description && first(0, "listening")?["step"] != nil)
    #expect(first(0, "left; checkpoint saved")?["step"].flatMap(Int.init) != nil)
    #expect(!objects[0].contains { $0["level"] == "debug" }, "info is the default level")
    // Debug: probes name their member and sequence; mixes their contributions and step.
    #expect(first(1, "probe")?["member"] == network.members[0].id.short && first(1, "probe")?["sequence"] != nil, "\(objects[1])")
    #expect(first(1, "mixed")?["contributions"].flatMap(Int.init) != nil && first(1, "mixed")?["step"] != nil, "\(objects[1])")
}

@Test("text log lines carry time, level, message and metadata")
func textLogLine() {
    let line = PeerLogHandler.render(time: Date(timeIntervalSince1970: 1_795_000_000.25), level: .notice, message: "member 3f9c failed",
                                     metadata: ["peer": "77ab"], format: .text)
    #expect(line == "2026-11-18T11:06:40.250Z notice member 3f9c failed peer=77ab")
}

@Test("a peer whose entry point is down warns, reports isolated, and joins by itself once it comes up")
func isolatedPeerRejoins() throws {
    let network = try LocalNetwork.forTests(peers: 2)
    defer { network.discard() }
    network.rewire(0, entryPoints: [])  // p0 will not look for p1: p1 must find p0 by itself
    try network.start(1, extraArguments: ["--join", network.members[0].udp.description])
    try network.waitUntilReady([1])
    let start = Date()
    var warned = false, isolated = false
    while Date().timeIntervalSince(start) < 15 && !(warned && isolated) {
        usleep(250_000)
        isolated = (try? AdminClient.status(at: network.members[1].admin))?.isolated ?? false
        warned = network.tail(1, lines: 20).contains("alone: no answer")
    }
    #expect(isolated, "p1 did not report isolated")
    #expect(warned, "p1 did not warn within 15 s:\n\(network.tail(1))")
    try network.start(0)
    try network.waitUntilReady([0])
    let up = Date()
    var joined = false
    while Date().timeIntervalSince(up) < 10 && !joined {
        usleep(200_000)
        let view = (try? AdminClient.status(at: network.members[1].admin))?.members ?? []
        joined = view.contains { $0.id == network.members[0].id.description && $0.status == "alive" }
    }
    #expect(joined, "p1 did not join p0 within 10 s of its start:\n\(network.tail(1))")
    #expect((try? AdminClient.status(at: network.members[1].admin))?.isolated == false)
}

@Test("another network key or another model is warned about on both sides, not dropped in silence")
func misconfiguredPeersAreNamed() throws {
    let network = try LocalNetwork.forTests(peers: 3)
    defer { network.discard() }
    // p1 holds another network key; p2 runs another model. Both know p0 as an entry point.
    try KeyFiles.writeNetworkKey(NetworkKey.generate(), to: network.directory + "/keys/other.key")
    func edit(_ index: Int, _ from: String, _ to: String) throws {
        let path = network.members[index].configPath
        let text = try String(contentsOfFile: path, encoding: .utf8)
        #expect(text.contains(from))
        try text.replacingOccurrences(of: from, with: to).write(toFile: path, atomically: true, encoding: .utf8)
    }
    try edit(1, "network_key = \"keys/network.key\"", "network_key = \"keys/other.key\"")
    try edit(2, "kind = \"softmax\"", "kind = \"mlp:16\"")
    for index in 0..<3 { try network.start(index) }
    try network.waitUntilReady([0, 1, 2])
    func logged(_ index: Int, _ fragment: String) -> Bool { network.tail(index, lines: 200).contains(fragment) }
    let start = Date()
    while Date().timeIntervalSince(start) < 15 {
        if logged(0, "network key this peer does not hold") && logged(0, "runs another model")
            && logged(1, "alone: no answer") && logged(2, "runs another model") { break }
        usleep(250_000)
    }
    #expect(logged(0, "network key this peer does not hold"), "p0 did not name the foreign key:\n\(network.tail(0))")
    #expect(logged(1, "alone: no answer"), "p1 (other key) did not warn:\n\(network.tail(1))")
    #expect(logged(0, "runs another model"), "p0 did not name the other model:\n\(network.tail(0))")
    #expect(logged(2, "runs another model"), "p2 did not name the other model:\n\(network.tail(2))")
    // Rate-limited: one warning of each kind, not one per datagram.
    #expect(network.tail(0, lines: 500).components(separatedBy: "network key this peer does not hold").count == 2)
}

/// Sends raw bytes to a TCP address and returns what comes back before the server closes (or
/// `timeout` passes); `closed` says whether the server closed the connection.
func rawExchange(_ bytes: String, at address: HostPort, timeout: Double) -> (reply: String, closed: Bool) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(address.port).bigEndian)
    addr.sin_addr.s_addr = inet_addr(address.host)
    let connected = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
    guard connected == 0 else { return ("", true) }
    var tv = timeval(tv_sec: Int(timeout), tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    _ = Array(bytes.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if n == 0 { return (String(decoding: data, as: UTF8.self), true) }
        if n < 0 { return (String(decoding: data, as: UTF8.self), false) }  // timed out: still open
        data += buffer[0..<n]
    }
}

@Test("the admin endpoint: read-only routes are open, actions need the token, web pages and other hosts are refused, idle connections closed")
func adminEndpointIsProtected() throws {
    let network = try LocalNetwork.forTests(peers: 1)
    defer { network.discard() }
    try network.start(0)
    try network.waitUntilReady([0])
    let admin = network.members[0].admin, token = network.members[0].adminToken
    #expect(try AdminClient.request("GET", "/status", at: admin).status == 200)
    #expect(try AdminClient.request("GET", "/metrics", at: admin).status == 200)
    #expect(try AdminClient.request("GET", "/parameters", at: admin).status == 401)
    #expect(try AdminClient.request("GET", "/parameters", token: String(repeating: "0", count: 64), at: admin).status == 401)
    #expect(try AdminClient.request("POST", "/faults", body: Array("{}".utf8), at: admin).status == 401)
    #expect(try AdminClient.request("POST", "/leave", at: admin).status == 401)
    #expect(try AdminClient.parameters(token: token, at: admin).count > 0)
    // A page in a browser (Origin), or a DNS name pointed at loopback (Host), gets nothing, token or not.
    let origin = rawExchange("GET /status HTTP/1.1\r\nHost: \(admin)\r\nOrigin: http://evil.example\r\nConnection: close\r\n\r\n", at: admin, timeout: 5)
    #expect(origin.reply.hasPrefix("HTTP/1.1 403"), "\(origin.reply)")
    let host = rawExchange("GET /parameters HTTP/1.1\r\nHost: evil.example:\(admin.port)\r\nAuthorization: Bearer \(token)\r\nConnection: close\r\n\r\n", at: admin, timeout: 5)
    #expect(host.reply.hasPrefix("HTTP/1.1 403"), "\(host.reply)")
    // A request that never ends is not held open forever.
    let started = Date()
    let partial = rawExchange("GET /sta", at: admin, timeout: 20)
    #expect(partial.closed && Date().timeIntervalSince(started) < 15, "a partial request was held open \(Date().timeIntervalSince(started)) s")
    // With the token, leave works.
    #expect(try AdminClient.request("POST", "/leave", token: token, at: admin).status == 200)
}

@Test("an admin endpoint reachable from other machines without a token is refused at start, naming the field")
func adminOffLoopbackNeedsToken() throws {
    let s = try Scratch()
    let file = s.write(s.config(admin: "0.0.0.0:8123"))
    do {
        _ = try PeerConfig.load(path: file)
        Issue.record("accepted admin on 0.0.0.0 without a token")
    } catch {
        #expect("\(error)".contains("peer.admin") && "\(error)".contains("admin-token"), "\(error)")
    }
    try KeyFiles.writeAdminToken(to: s.path + "/a")
    #expect(try PeerConfig.load(path: file).adminTokenPath == s.path + "/a/admin.token")
}

@Test("chorus init writes keys and configurations that peers accept, one shard each, and refuses to overwrite")
func initWritesANetwork() throws {
    let out = NSTemporaryDirectory() + "chorus-init-\(UInt32.random(in: 0...UInt32.max))"
    defer { try? FileManager.default.removeItem(atPath: out) }
    let hosts = "192.0.2.10:7000,192.0.2.11:7000,192.0.2.12:7000"
    let result = try ChorusBinary.run(["init", "--hosts", hosts, "--out", out], timeout: 20)
    #expect(result.status == 0, "\(result.stderr)")
    var shards: [Int] = []
    for index in 1...3 {
        let config = try PeerConfig.load(path: "\(out)/peer\(index).toml")
        #expect(config.advertise.description == hosts.split(separator: ",")[index - 1].description)
        #expect(config.neighbours.count == 2 && !config.neighbours.contains { $0.address == config.advertise })
        #expect(config.adminTokenPath != nil)
        let (identity, _, _, token) = try PeerRunner.prepare(config: config)
        #expect(token != nil)
        #expect(config.neighbours.allSatisfy { $0.id != identity.peerID })
        shards.append(config.shard)
    }
    #expect(shards == [0, 1, 2])
    #expect(FileManager.default.fileExists(atPath: out + "/keys/joiner") == false, "the joiner's identity is made on its own host")
    try KeyFiles.writeIdentity(SigningKey.generate(), to: out + "/keys/joiner")
    // Refused until its advertise placeholder is replaced, as its comment says.
    #expect(throws: ConfigError.self) { try PeerConfig.load(path: out + "/join.toml") }
    let joinText = try String(contentsOfFile: out + "/join.toml", encoding: .utf8)
    try joinText.replacingOccurrences(of: "NEW-HOST:7000", with: "192.0.2.13:7000").write(toFile: out + "/join.toml", atomically: true, encoding: .utf8)
    let joiner = try PeerConfig.load(path: out + "/join.toml")
    #expect(joiner.fetchModel && joiner.seeds.count == 2)
    #expect(joiner.shards == 4 && joiner.shard == 3, "the joiner brings the one shard no starting peer trains on")
    #expect(try PeerConfig.load(path: out + "/peer1.toml").bind.host == "0.0.0.0", "other machines reach it on every interface")
    let again = try ChorusBinary.run(["init", "--hosts", hosts, "--out", out], timeout: 20)
    #expect(again.status != 0 && again.stderr.contains("refusing to overwrite"))
    let bad = try ChorusBinary.run(["init", "--hosts", "192.0.2.10:7000,nonsense", "--out", out + "2"], timeout: 20)
    #expect(bad.status != 0 && bad.stderr.contains("entry 2"))
}

@Test("chorus init on one host: four peers and the joiner start without edits; validate, leave, id prefixes and network --also work on them")
func initOnOneHostAndOperatorVerbs() throws {
    let out = NSTemporaryDirectory() + "chorus-init1-\(UInt32.random(in: 0...UInt32.max))"
    defer { try? FileManager.default.removeItem(atPath: out) }
    // Four distinct free UDP ports, and five consecutive free TCP ports for init's admin ports.
    var ports: [Int] = []
    while ports.count < 4 { let p = try FreePort.udp(); if !ports.contains(p) { ports.append(p) } }
    var adminBase = try FreePort.tcp()
    while !(1...4).allSatisfy({ tcpPortIsFree(adminBase + $0) }) { adminBase = try FreePort.tcp() }
    let created = try ChorusBinary.run(["init", "--hosts", ports.map { "127.0.0.1:\($0)" }.joined(separator: ","), "--out", out,
                                        "--admin-port", String(adminBase)], timeout: 20)
    try #require(created.status == 0, "\(created.stderr)")
    let files = (1...4).map { "\(out)/peer\($0).toml" } + [out + "/join.toml"]
    let configs = try files.map { try PeerConfig.load(path: $0) }
    #expect(Set(configs.map(\.admin.port)) == Set(adminBase...adminBase + 4), "one admin port per peer on the shared host")
    #expect(configs.allSatisfy { $0.bind.host == "127.0.0.1" }, "a loopback network binds loopback only")
    let valid = try ChorusBinary.run(["validate"] + files, timeout: 30)
    #expect(valid.status == 0 && valid.stdout.split(separator: "\n").count == 5, "\(valid.stdout)\(valid.stderr)")
    var processes: [Process] = []
    defer { for p in processes where p.isRunning { p.terminate(); p.waitUntilExit() } }
    for file in files.prefix(4) { processes.append(try ChorusBinary.start(["peer", "--config", file])) }
    func status(_ index: Int) -> PeerStatus? { try? AdminClient.status(at: configs[index].admin, timeout: 1) }
    func aliveEverywhere(_ indices: [Int], count: Int) -> Bool {
        indices.allSatisfy { i in status(i).map { $0.phase == "training" && $0.members.filter { $0.status == "alive" }.count == count } ?? false }
    }
    var waited = 0
    while !aliveEverywhere([0, 1, 2, 3], count: 4) && waited < 200 { usleep(100_000); waited += 1 }
    try #require(aliveEverywhere([0, 1, 2, 3], count: 4),
                 "the four peers did not start and meet within 20 s: \((0..<4).map { status($0).map { "\($0.phase), \($0.members.filter { $0.status == "alive" }.count) alive" } ?? "no answer" })")
    processes.append(try ChorusBinary.start(["peer", "--config", files[4]]))
    waited = 0
    while !aliveEverywhere([0, 4], count: 5) && waited < 300 { usleep(100_000); waited += 1 }
    #expect(aliveEverywhere([0, 4], count: 5), "the joiner did not join within 30 s")

    // An id prefix as chorus members shows it blocks exactly that peer; a too-short or unknown one is refused.
    let third = try #require(status(2)).peerId
    let token1 = out + "/keys/peer1/admin.token", admin1 = configs[0].admin.description
    let blocked = try ChorusBinary.run(["faults", "--admin", admin1, "--admin-token", token1, "--block", String(third.prefix(8)), "--json"])
    #expect(blocked.status == 0 && blocked.stdout.contains(third), "\(blocked.stdout)\(blocked.stderr)")
    let unknown = try ChorusBinary.run(["faults", "--admin", admin1, "--admin-token", token1, "--block", third.hasPrefix("ffff") ? "eeee" : "ffff"])
    #expect(unknown.status != 0 && unknown.stderr.contains("no known peer"), "\(unknown.stderr)")
    #expect(try ChorusBinary.run(["faults", "--admin", admin1, "--admin-token", token1, "--block", "0"]).status != 0)
    _ = try ChorusBinary.run(["faults", "--admin", admin1, "--admin-token", token1, "--clear"])

    // An --also that does not answer is named with its reason and fails the command.
    let closed = try FreePort.tcp()
    let view = try ChorusBinary.run(["network", "--admin", admin1, "--also", configs[1].admin.description, "--also", "127.0.0.1:\(closed)"])
    #expect(view.status == 1 && view.stderr.contains("127.0.0.1:\(closed)") && view.stderr.contains("cannot connect"), "\(view.stderr)")
    #expect(view.stdout.contains("2 reachable here, 1 not"), "\(view.stdout)")

    // chorus leave: refused without the token; with it the peer leaves, exits, and is seen as left.
    let leaver = try #require(status(3)).peerId
    #expect(try ChorusBinary.run(["leave", "--admin", configs[3].admin.description]).status != 0)
    let left = try ChorusBinary.run(["leave", "--admin", configs[3].admin.description, "--admin-token", out + "/keys/peer4/admin.token"], timeout: 30)
    #expect(left.status == 0 && left.stdout.contains("left after"), "\(left.stdout)\(left.stderr)")
    processes[3].waitUntilExit()
    #expect(processes[3].terminationStatus == 0)
    #expect(status(0)?.members.first { $0.id == leaver }?.status == "left")

    // A broken configuration is named with its file and field, and fails validate.
    let broken = out + "/broken.toml"
    try String(contentsOfFile: files[0], encoding: .utf8).replacingOccurrences(of: "keys/network.key", with: "keys/missing.key")
        .write(toFile: broken, atomically: true, encoding: .utf8)
    let invalid = try ChorusBinary.run(["validate", files[1], broken], timeout: 30)
    #expect(invalid.status == 1 && invalid.stdout.contains("ok") && invalid.stderr.contains("peer.network_key"), "\(invalid.stdout)\(invalid.stderr)")
}

/// Whether nothing listens on this TCP port of 127.0.0.1 now.
private func tcpPortIsFree(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_port = in_port_t(UInt16(port).bigEndian)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    return withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } } == 0
}

@Test("a second process with a running peer's identity: the earlier one stops with an error naming it, and the views are whole again")
func duplicateIdentity() throws {
    let network = try LocalNetwork.forTests(peers: 3)
    defer { network.discard() }
    for index in 0..<3 { try network.start(index) }
    try network.waitUntilReady([0, 1, 2])
    sleep(2)
    // A copy of p2's identity on other ports (as with a copied key folder).
    let copy = try network.addMember()
    let path = network.members[copy].configPath
    let text = try String(contentsOfFile: path, encoding: .utf8)
    try text.replacingOccurrences(of: "identity = \"keys/p\(copy)\"", with: "identity = \"keys/p2\"")
        .write(toFile: path, atomically: true, encoding: .utf8)
    try network.start(copy, extraArguments: ["--join", network.members[0].udp.description])
    let started = Date()
    while network.isRunning(2) && Date().timeIntervalSince(started) < 10 { usleep(100_000) }
    #expect(!network.isRunning(2), "the earlier p2 still runs 10 s after its identity was started again")
    #expect(network.tail(2).contains("was started again"), "p2's log: \(network.tail(2))")
    #expect(network.isRunning(copy), "the later process stopped too:\n\(network.tail(copy))")
    // Every other peer sees p2's identity alive at the later process's address.
    let id = network.members[2].id.description
    var whole = false
    while !whole && Date().timeIntervalSince(started) < 30 {
        usleep(250_000)
        whole = [0, 1].allSatisfy { index in
            guard let view = try? AdminClient.status(at: network.members[index].admin).members else { return false }
            let row = view.first { $0.id == id }
            return row?.status == "alive" && row?.address == network.members[copy].udp.description
                && view.filter { $0.status == "alive" }.count == 3
        }
    }
    #expect(whole, "views not whole 30 s after the duplicate started")
}

@Test("chorus simulate restarts itself with huge-page malloc settings without changing a byte of its output")
func simulateRestartKeepsOutput() throws {
    let base = FileManager.default.temporaryDirectory.appendingPathComponent("chorus-hugepages-\(UUID().uuidString)")
    defer { try? FileManager.default.removeItem(at: base) }
    var outputs: [String: [Data]] = [:]
    // Restarted (the default), left alone (CHORUS_HUGE_PAGES=0), and with tunables of the user's own.
    for (name, extra) in [("restarted", [:]), ("off", ["CHORUS_HUGE_PAGES": "0"]), ("own", ["GLIBC_TUNABLES": "glibc.malloc.tcache_count=7"])] {
        var environment = ProcessInfo.processInfo.environment
        environment["GLIBC_TUNABLES"] = nil
        environment["CHORUS_HUGE_PAGES"] = nil
        environment.merge(extra) { $1 }
        let dir = base.appendingPathComponent(name).path
        let result = try ChorusBinary.run(["simulate", "--peers", "12", "--duration", "20", "--task", "membership", "--crypto", "simulated",
                                           "--loss", "0.05", "--sample-interval", "1", "--no-plot", "--out", dir],
                                          environment: environment, timeout: 120)
        #expect(result.status == 0, "\(name): \(result.stderr)")
        #expect(result.stdout.contains("simulated 20 s of 12 peers"), "\(name): \(result.stdout)")
        outputs[name] = try ["series.csv", "events.csv"].map { try Data(contentsOf: URL(fileURLWithPath: dir + "/" + $0)) }
    }
    #expect(outputs["restarted"] == outputs["off"] && outputs["own"] == outputs["off"])
    #expect(outputs["off"]?.first?.isEmpty == false)
}

/// A one-connection HTTP server on 127.0.0.1 that sends `answer` once it has read the request's
/// head, then keeps the connection open for `holdOpen` seconds (as a keep-alive server would).
private func cannedServer(answer: String, holdOpen: Double) throws -> (port: Int, thread: Thread) {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var addr = sockaddr_in()
    addr.sin_family = sa_family_t(AF_INET)
    addr.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &addr) { p in
        p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && listen(fd, 1) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    try #require(bound)
    let port = Int(UInt16(bigEndian: addr.sin_port))
    let thread = Thread {
        let client = accept(fd, nil, nil)
        var request: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while !request.suffix(4).elementsEqual(Array("\r\n\r\n".utf8)) {
            let n = buffer.withUnsafeMutableBytes { recv(client, $0.baseAddress, $0.count, 0) }
            if n <= 0 { break }
            request += buffer[0..<n]
        }
        _ = Array(answer.utf8).withUnsafeBytes { send(client, $0.baseAddress, $0.count, 0) }
        Thread.sleep(forTimeInterval: holdOpen)
        close(client)
        close(fd)
    }
    thread.start()
    return (port, thread)
}

@Test("the admin client reads a chunked answer to its end without waiting for the close, and gives up on a silent server after its timeout")
func adminClientFraming() throws {
    let chunked = try cannedServer(answer: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n", holdOpen: 5)
    let started = Date()
    let response = try AdminClient.request("GET", "/status", at: HostPort(host: "127.0.0.1", port: chunked.port), timeout: 4)
    #expect(response.status == 200 && String(decoding: response.body, as: UTF8.self) == "hello world")
    #expect(Date().timeIntervalSince(started) < 3, "read until the server closed instead of to the last chunk")

    let sized = try cannedServer(answer: "HTTP/1.1 401 Unauthorized\r\nContent-Length: 4\r\n\r\nnope", holdOpen: 5)
    let refused = try AdminClient.request("POST", "/leave", at: HostPort(host: "127.0.0.1", port: sized.port), timeout: 4)
    #expect(refused.status == 401 && refused.body == Array("nope".utf8))

    let silent = try cannedServer(answer: "", holdOpen: 3)
    let waited = Date()
    #expect(throws: AdminClient.Failure.self) { try AdminClient.request("GET", "/status", at: HostPort(host: "127.0.0.1", port: silent.port), timeout: 0.5) }
    #expect(Date().timeIntervalSince(waited) < 2.5, "the timeout did not hold")
}

@Test("slow senders holding every admin connection: /status still answers, and each trickling request is cut at its 10 s deadline")
func adminSlowSenders() throws {
    let network = try LocalNetwork.forTests(peers: 1)
    defer { network.discard() }
    try network.start(0)
    try network.waitUntilReady([0])
    let admin = network.members[0].admin
    // 32 connections (the cap), each sending one byte of a request every half second.
    var sockets: [Int32] = []
    for _ in 0..<32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(admin.port).bigEndian)
        addr.sin_addr.s_addr = inet_addr(admin.host)
        let connected = withUnsafePointer(to: &addr) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        try #require(connected == 0)
        sockets.append(fd)
    }
    defer { for fd in sockets { close(fd) } }
    let opened = Date()
    let request = Array("GET /status HTTP/1.1\r\nHost: \(admin)\r\nX-Padding: ".utf8) + Array(repeating: UInt8(ascii: "a"), count: 100)
    var closedAt: [Int32: Double] = [:]
    var answered: Double?
    var sent = 0
    while Date().timeIntervalSince(opened) < 14 {
        for fd in sockets where closedAt[fd] == nil {
            let byte = [request[sent % request.count]]
            let n = byte.withUnsafeBytes { send(fd, $0.baseAddress, 1, Int32(MSG_NOSIGNAL)) }
            if n <= 0 { closedAt[fd] = Date().timeIntervalSince(opened) }
        }
        sent += 1
        // Two seconds in, every connection is held by a slow sender: a real client must still get in.
        if answered == nil && Date().timeIntervalSince(opened) > 2 {
            let asked = Date()
            if (try? AdminClient.status(at: admin, timeout: 3)) != nil { answered = Date().timeIntervalSince(asked) }
            else { answered = .infinity }
        }
        usleep(500_000)
    }
    #expect((answered ?? .infinity) < 2, "GET /status while 32 slow senders held the endpoint: \(String(describing: answered)) s")
    // One slow sender gave way to /status; the others were cut at the request deadline, not kept by their trickle.
    let cut = closedAt.values.filter { $0 <= 13 }
    #expect(cut.count >= 31, "slow connections still open after 13 s: \(32 - closedAt.count) (closed at \(closedAt.values.sorted()))")
    #expect(network.isRunning(0))
}
