import Foundation
import Testing
@testable import ChorusPeer

@Test("/metrics labels every series with the peer and carries training, convergence, membership and traffic")
func metricsSeries() throws {
    let binary = try #require(ChorusBinary.path, "chorus binary not built")
    var options = LocalNetwork.Options(executable: binary)
    options.peers = 2
    let network = try LocalNetwork(options: options)
    defer {
        network.stopAll()
        network.removeDirectory()
    }
    try network.start(0)
    try network.start(1)
    try network.waitUntilReady([0, 1])
    // Wait until the two have mixed, so the distance has a value.
    let deadline = Date().addingTimeInterval(20)
    while (try? AdminClient.status(at: network.members[0].admin))?.distanceToNeighbours == nil && Date() < deadline { usleep(200_000) }
    let response = try AdminClient.request("GET", "/metrics", at: network.members[0].admin)
    #expect(response.status == 200)
    let text = String(decoding: response.body, as: UTF8.self)
    let samples = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
    let label = "peer=\"\(network.members[0].id)\""
    #expect(!samples.isEmpty && samples.allSatisfy { $0.contains(label) }, "a series without the peer label")
    func value(_ series: String, _ labels: String = "") -> Double? {
        samples.first { $0.hasPrefix(series + "{") && $0.contains(label) && (labels.isEmpty || $0.contains(labels)) }
            .flatMap { $0.split(separator: " ").last.flatMap { Double($0) } }
    }
    #expect(value("chorus_members", "state=\"alive\"") == 2)
    #expect(value("chorus_phase", "phase=\"training\"") == 1)
    #expect((value("chorus_bytes_total", "direction=\"sent\"") ?? 0) > 0)
    #expect((value("chorus_probes_total") ?? 0) >= 0)
    #expect((value("chorus_steps_trained") ?? 0) > 0)
    let distance = try #require(value("chorus_distance_to_neighbours"))
    #expect(distance.isFinite && distance >= 0)
    // Every series the shipped Grafana dashboard draws exists.
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    let dashboard = try String(contentsOf: root.appendingPathComponent("scripts/grafana-dashboard.json"), encoding: .utf8)
    let drawn = Set(dashboard.matches(of: /chorus_[a-z_]+/).map { String($0.output) })
    #expect(drawn.count >= 8)
    for series in drawn.sorted() { #expect(samples.contains { $0.hasPrefix(series + "{") }, "the dashboard draws \(series), which /metrics lacks") }
    for series in ["chorus_test_accuracy", "chorus_train_loss", "chorus_self_weight", "chorus_local_health", "chorus_suspicions_raised_total",
                   "chorus_refutations_total", "chorus_datagrams_total", "chorus_mixes_total"] {
        #expect(value(series) != nil, "\(series) missing")
    }
}

@Test("read verbs print JSON with --json, and chorus --version names the release and the wire protocol")
func readVerbsJSON() throws {
    let version = try ChorusBinary.run(["--version"], timeout: 10)
    #expect(version.status == 0 && version.stdout.hasPrefix("chorus ") && version.stdout.contains("wire protocol"))
    let binary = try #require(ChorusBinary.path, "chorus binary not built")
    let network = try LocalNetwork(options: LocalNetwork.Options(executable: binary))
    defer {
        network.stopAll()
        network.removeDirectory()
    }
    try network.start(0)
    try network.waitUntilReady([0])
    let admin = network.members[0].admin.description
    for verb in [["status"], ["members"], ["faults"]] {
        let result = try ChorusBinary.run(verb + ["--admin", admin, "--json"], timeout: 10)
        #expect(result.status == 0, "\(verb): \(result.stderr)")
        #expect((try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8))) != nil, "\(verb) --json printed: \(result.stdout)")
    }
}

@Test("--log-format json writes one JSON object per line, with time, level, message and the peer")
func jsonLogs() throws {
    let binary = try #require(ChorusBinary.path, "chorus binary not built")
    var options = LocalNetwork.Options(executable: binary)
    options.peers = 2
    let network = try LocalNetwork(options: options)
    defer { network.removeDirectory() }
    try network.start(0, extraArguments: ["--log-format", "json"])
    try network.start(1, extraArguments: ["--log-format", "json", "--log-level", "debug"])
    try network.waitUntilReady([0, 1])
    sleep(2)
    network.stopAll()
    for index in [0, 1] {
        let lines = try String(contentsOfFile: network.members[index].logPath, encoding: .utf8).split(separator: "\n")
        #expect(lines.count >= 3, "\(lines)")  // listening, a member alive, leaving, left
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: String]
            #expect(object?["level"] != nil && object?["message"] != nil && object?["time"]?.hasSuffix("Z") == true, "\(line)")
            #expect(object?["peer"] == network.members[index].id.short, "\(line)")
        }
    }
}

@Test("text log lines carry time, level, message and metadata")
func textLogLine() {
    let line = PeerLogHandler.render(time: Date(timeIntervalSince1970: 1_795_000_000.25), level: .notice, message: "member 3f9c failed",
                                     metadata: ["peer": "77ab"], format: .text)
    #expect(line == "2026-11-18T11:06:40.250Z notice member 3f9c failed peer=77ab")
}
