import ChorusCrypto
import Foundation
import Testing
@testable import ChorusPeer

/// Rotating the network key of a running network (docs/security.md, "Rotating the network key"):
/// each peer's configuration file names its keys, and `POST /keys/reload` installs what it names.
@Suite("network key rotation on real peers", .serialized)
struct KeyRotationTests {
    @Test("install, switch, remove: a new network key on 4 running peers with no failure declared; a peer still on the old key hears nothing and says why")
    func rotation() throws {
        let network = try LocalNetwork.forTests(peers: 5)
        defer { network.discard() }
        let running = Array(0..<4), late = 4
        for index in running { try network.start(index) }
        try network.waitUntilReady(running)
        Thread.sleep(forTimeInterval: 2)
        let newKey = NetworkKey.generate()
        try KeyFiles.writeNetworkKey(newKey, to: network.directory + "/keys/new.key")
        let oldID = Hex.encode(try KeyFiles.readNetworkKey(at: network.networkKeyPath).keyID), newID = Hex.encode(newKey.keyID)
        let before = try running.map { try AdminClient.status(at: network.members[$0].admin) }

        func reload(_ index: Int, primary: String, accepted: [String]) throws -> NetworkKeyIDs {
            try Self.name(keys: primary, accepted: accepted, in: network.members[index].configPath)
            let member = network.members[index]
            let response = try AdminClient.request("POST", "/keys/reload", token: member.adminToken, at: member.admin)
            #expect(response.status == 200, "\(String(decoding: response.body, as: UTF8.self))")
            return try JSONDecoder().decode(NetworkKeyIDs.self, from: Data(response.body))
        }
        // 1. Everyone accepts the new key; 2. one at a time, everyone seals with it; 3. the old one goes.
        for index in running { #expect(try reload(index, primary: "keys/network.key", accepted: ["keys/new.key"]) == keyIDs(oldID, [newID])) }
        Thread.sleep(forTimeInterval: 1)
        for index in running {
            #expect(try reload(index, primary: "keys/new.key", accepted: ["keys/network.key"]) == keyIDs(newID, [oldID]))
            Thread.sleep(forTimeInterval: 1)  // a mixed network for a while: some seal with each key
        }
        for index in running { #expect(try reload(index, primary: "keys/new.key", accepted: []) == keyIDs(newID, [])) }
        Thread.sleep(forTimeInterval: 3)

        let after = try running.map { try AdminClient.status(at: network.members[$0].admin) }
        for index in running {
            #expect(after[index].membershipCounts.failuresDeclared == before[index].membershipCounts.failuresDeclared,
                    "peer \(index) declared a failure during the rotation")
            #expect(after[index].members.allSatisfy { $0.status == "alive" }, "peer \(index): \(after[index].members.map(\.status))")
            #expect(after[index].contributionsMixed - before[index].contributionsMixed >= 10, "peer \(index) stopped mixing")
            #expect(try AdminClient.request("GET", "/keys", at: network.members[index].admin).status == 200)
        }

        // A bad reload changes nothing and names the field.
        try Self.name(keys: "keys/missing.key", accepted: [], in: network.members[0].configPath)
        let refused = try AdminClient.request("POST", "/keys/reload", token: network.members[0].adminToken, at: network.members[0].admin)
        #expect(refused.status == 400)
        #expect(String(decoding: refused.body, as: UTF8.self).contains("peer.network_key"))
        let kept = try JSONDecoder().decode(NetworkKeyIDs.self, from: Data(try AdminClient.request("GET", "/keys", at: network.members[0].admin).body))
        #expect(kept == keyIDs(newID, []))
        let noToken = try AdminClient.request("POST", "/keys/reload", at: network.members[0].admin)
        #expect(noToken.status == 401)

        // A peer that was down during the rotation still names the old key: nobody answers it,
        // the others count its datagrams as another network's, and its log says what to do.
        try network.start(late)
        let deadline = Date().addingTimeInterval(20)
        var warned = false
        while !warned && Date() < deadline {
            Thread.sleep(forTimeInterval: 0.5)
            warned = ((try? String(contentsOfFile: network.members[late].logPath, encoding: .utf8)) ?? "").contains("key was rotated")
        }
        #expect(warned, "no warning about a rotated key in \(network.members[late].logPath)")
        let lonely = try AdminClient.status(at: network.members[late].admin)
        #expect(lonely.isolated && lonely.members.count == 1)
        let foreign = try running.map { try AdminClient.status(at: network.members[$0].admin).rejections["unknownNetwork"] ?? 0 }
        #expect(foreign.contains { $0 > 0 }, "the late peer's datagrams were not refused as another network's: \(foreign)")
    }

    private func keyIDs(_ primary: String, _ accepted: [String]) -> NetworkKeyIDs {
        var ids = NetworkKeyIDs(NetworkKeyring([NetworkKey.generate()]))
        (ids.primary, ids.accepted) = (primary, accepted)
        return ids
    }

    /// Rewrites the `network_key` line of a generated configuration (and any `accepted_network_keys`).
    private static func name(keys primary: String, accepted: [String], in path: String) throws {
        let lines = try String(contentsOfFile: path, encoding: .utf8).components(separatedBy: "\n")
            .filter { !$0.hasPrefix("accepted_network_keys") }
            .flatMap { line -> [String] in
                guard line.hasPrefix("network_key") else { return [line] }
                return ["network_key = \"\(primary)\""] + (accepted.isEmpty ? [] : ["accepted_network_keys = [\(accepted.map { "\"\($0)\"" }.joined(separator: ", "))]"])
            }
        try lines.joined(separator: "\n").write(toFile: path, atomically: true, encoding: .utf8)
    }
}
