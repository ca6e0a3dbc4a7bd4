import ChorusCrypto
import Foundation
import Testing
@testable import ChorusPeer

private struct Counter: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        return z ^ (z >> 31)
    }
}

@Test("the fault plan drops, duplicates and delays datagrams at the configured rates")
func faultPlanRates() {
    var faults = FaultSettings()
    faults.drop = 0.2
    faults.duplicate = 0.1
    faults.delay = 0.005...0.020
    var rng = Counter(state: 1)
    var dropped = 0, duplicated = 0
    for _ in 0..<20_000 {
        let plan = faults.plan(to: nil, using: &rng)
        if plan.isEmpty { dropped += 1 }
        if plan.count == 2 { duplicated += 1 }
        #expect(plan.allSatisfy { (0.005...0.020).contains($0) })
    }
    #expect(abs(Double(dropped) / 20_000 - 0.2) < 0.02)
    #expect(abs(Double(duplicated) / 16_000 - 0.1) < 0.02)
    #expect(!FaultSettings().isActive)
}

@Test("blocked peers are cut off in both directions")
func faultBlocking() throws {
    let blocked = SigningKey.generate().peerID
    let other = SigningKey.generate().peerID
    var faults = FaultSettings()
    faults.blocked = [blocked]
    var rng = Counter(state: 2)
    #expect(faults.plan(to: blocked, using: &rng).isEmpty)
    #expect(faults.plan(to: other, using: &rng) == [0])
    // Incoming: the sender id sits at bytes 6..<38 of the datagram header.
    var datagram = [UInt8](repeating: 0, count: 80)
    datagram.replaceSubrange(6..<38, with: blocked.bytes)
    #expect(faults.blocks(incoming: datagram, using: &rng))
    datagram.replaceSubrange(6..<38, with: other.bytes)
    #expect(!faults.blocks(incoming: datagram, using: &rng))
    #expect(!faults.blocks(incoming: [1, 2, 3], using: &rng))
}

@Test("incoming loss and per-link loss and delay act at their rates, on their traffic only")
func inboundAndLinkFaults() throws {
    let lossy = SigningKey.generate().peerID
    let other = SigningKey.generate().peerID
    var faults = FaultSettings()
    faults.dropIn = 0.3
    faults.links[lossy] = LinkFault(drop: 0.5, delayMs: 20)
    #expect(faults.isActive && faults.filtersIncoming)
    var rng = Counter(state: 3)
    var droppedIn = 0, droppedToLossy = 0, wrongPlans = 0
    for _ in 0..<20_000 {
        if faults.blocks(incoming: [UInt8](repeating: 0, count: 80), using: &rng) { droppedIn += 1 }
        let plan = faults.plan(to: lossy, using: &rng)
        if plan.isEmpty { droppedToLossy += 1 } else if plan != [0.020] { wrongPlans += 1 }
        if faults.plan(to: other, using: &rng) != [0] { wrongPlans += 1 }
    }
    #expect(wrongPlans == 0)
    #expect(abs(Double(droppedIn) / 20_000 - 0.3) < 0.02)
    #expect(abs(Double(droppedToLossy) / 20_000 - 0.5) < 0.02)
    let decoded = try FaultSettings.parse(json: Array(try JSONEncoder().encode(faults))).get()
    #expect(decoded == faults)
    guard case let .failure(error) = FaultSettings.parse(json: Array(#"{"links": {"\#(lossy)": {"drop": 1.5, "delayMs": 0}}}"#.utf8)) else {
        Issue.record("accepted a link drop of 1.5")
        return
    }
    #expect(error.description.contains("field 'links'"))
}

@Test("faults travel as JSON for the admin endpoint; a bad field is named, never applied")
func faultJSON() throws {
    var faults = FaultSettings()
    faults.drop = 0.1
    faults.delay = 0.010...0.050
    faults.blocked = [SigningKey.generate().peerID]
    let encoded = try JSONEncoder().encode(faults)
    #expect(try FaultSettings.parse(json: Array(encoded)).get() == faults)
    #expect(try FaultSettings.parse(json: Array("{}".utf8)).get() == FaultSettings())
    let bad: [(String, String)] = [
        (#"{"drop": 2}"#, "field 'drop'"),
        (#"{"duplicate": -0.5}"#, "field 'duplicate'"),
        (#"{"delayMs": [50, 10]}"#, "field 'delayMs'"),
        (#"{"blocked": ["abc"]}"#, "field 'blocked'"),
        (#"{"drop": "lots"}"#, "field 'drop'"),
        ("not json", "not"),
    ]
    for (body, fragment) in bad {
        guard case let .failure(error) = FaultSettings.parse(json: Array(body.utf8)) else {
            Issue.record("accepted \(body)")
            continue
        }
        #expect(error.description.contains(fragment), "\(body): \(error)")
    }
}

@Test("a running peer's faults are read and replaced through its admin endpoint; bad bodies are refused")
func liveFaults() throws {
    let network = try LocalNetwork.forTests(peers: 2)
    defer { network.discard() }
    try network.start(0)
    try network.waitUntilReady([0])
    let admin = network.members[0].admin, token = network.members[0].adminToken
    #expect(try AdminClient.faults(at: admin) == FaultSettings())
    var faults = FaultSettings()
    faults.drop = 0.25
    faults.blocked = [network.members[1].id]
    #expect(try AdminClient.setFaults(faults, token: token, at: admin) == faults)
    #expect(try AdminClient.faults(at: admin) == faults)
    #expect(try AdminClient.status(at: admin).faults == faults)
    let refused = try AdminClient.request("POST", "/faults", body: Array(#"{"drop": 7}"#.utf8), token: token, at: admin)
    #expect(refused.status == 400)
    #expect(String(decoding: refused.body, as: UTF8.self).contains("field 'drop'"))
    #expect(try AdminClient.faults(at: admin) == faults, "a refused body changed the faults")
    #expect(try AdminClient.setFaults(FaultSettings(), token: token, at: admin) == FaultSettings())
}

/// Six real peers, p5 an insider sending 10^30 for every value (`chorus peer --poison huge`);
/// returns the lowest test accuracy of the five honest peers after `seconds`, and what each
/// honest peer shows (accuracy, contributions clipped, mixed, its neighbours) for a failure's message.
private func honestAccuracyBesideAnInsider(clip: Double?, seconds: UInt32) throws -> (lowest: Double, peers: String) {
    let binary = try #require(ChorusBinary.path, "chorus binary not built")
    var options = LocalNetwork.Options(executable: binary)
    options.peers = 6
    options.averaging.clipFactor = clip
    let network = try LocalNetwork(options: options)
    defer { network.discard() }
    for index in 0..<5 { try network.start(index) }
    try network.start(5, extraArguments: ["--poison", "huge"])
    try network.waitUntilReady(Array(0..<6))
    sleep(seconds)
    let statuses = (0..<5).compactMap { try? AdminClient.status(at: network.members[$0].admin) }
    #expect(statuses.count == 5, "an honest peer did not answer")
    let insider = "\(network.members[5].id)"
    let peers = statuses.map { s in
        "\(s.peerId.prefix(8)): accuracy \(s.testAccuracy), clipped \(s.rejections["parameters.clipped"] ?? 0), "
            + "mixed \(s.contributionsMixed), \(s.neighbours.count) neighbours\(s.neighbours.contains { $0.id == insider } ? " with the insider" : "")"
    }.joined(separator: "; ")
    return (statuses.map(\.testAccuracy).min() ?? 0, peers)
}

@Test("real processes: one insider sending 10^30 cannot ruin the honest peers with clipping on (≥ 90 %); with clipping off it does")
func poisonedParametersOnRealProcesses() throws {
    let guarded = try honestAccuracyBesideAnInsider(clip: nil, seconds: 12)
    #expect(guarded.lowest >= 0.9, "lowest honest accuracy with clipping: \(guarded.lowest) (\(guarded.peers))")
    let open = try honestAccuracyBesideAnInsider(clip: 0, seconds: 12)
    #expect(open.lowest < 0.5, "lowest honest accuracy without clipping: \(open.lowest) (\(open.peers))")
}
