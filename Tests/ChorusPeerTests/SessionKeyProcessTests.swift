import ChorusCrypto
import Foundation
import Testing
@testable import ChorusPeer

/// Per-pair session keys (`gossip.session_keys`) on real peer processes.
@Suite("session keys on real peers", .serialized)
struct SessionKeyProcessTests {
    @Test("4 peers with session keys hold each other alive and mix; one restarted is keyed again and mixes on")
    func sessionKeysOnRealPeers() throws {
        let network = try LocalNetwork.forTests(peers: 4, sessionKeys: true)
        defer { network.discard() }
        let peers = Array(network.members.indices)
        for index in peers { try network.start(index) }
        try network.waitUntilReady(peers)
        func allAlive(_ indices: [Int], count: Int) -> Bool {
            indices.allSatisfy { index in
                ((try? AdminClient.status(at: network.members[index].admin, timeout: 0.5))?.members.filter { $0.status == "alive" }.count ?? 0) == count
            }
        }
        try AdmissionProcessTests.waitFor("every peer to see the others alive", timeout: 15) { allAlive(peers, count: 4) }
        Thread.sleep(forTimeInterval: 2)
        let before = try peers.map { try AdminClient.status(at: network.members[$0].admin) }
        for status in before {
            #expect(status.contributionsMixed > 0, "a peer mixed nothing: \(status.rejections)")
            #expect(status.pairedSessions == 3 && status.confirmedPairs == 3, "pairs \(String(describing: status.pairedSessions)), confirmed \(String(describing: status.confirmedPairs))")
        }

        #expect(network.stop(3) != nil)
        try network.start(3)
        try network.waitUntilReady([3])
        try AdmissionProcessTests.waitFor("the restarted peer back in every view", timeout: 20) { allAlive(peers, count: 4) }
        let mixedBefore = try AdminClient.status(at: network.members[3].admin).contributionsMixed
        Thread.sleep(forTimeInterval: 3)
        let after = try AdminClient.status(at: network.members[3].admin)
        #expect(after.contributionsMixed > mixedBefore, "the restarted peer does not mix: \(after.rejections)")
        for index in peers.dropLast() {
            let status = try AdminClient.status(at: network.members[index].admin)
            #expect(status.membershipCounts.failuresDeclared == before[index].membershipCounts.failuresDeclared,
                    "peer \(index) declared a failure: \(status.rejections)")
        }
    }

    @Test("with session_keys = false, peers mix under the network key and their status says there are no pairs")
    func withoutSessionKeys() throws {
        let network = try LocalNetwork.forTests(peers: 3, sessionKeys: false)
        defer { network.discard() }
        let peers = Array(network.members.indices)
        for index in peers { try network.start(index) }
        try network.waitUntilReady(peers)
        try AdmissionProcessTests.waitFor("every peer to mix", timeout: 15) {
            peers.allSatisfy { ((try? AdminClient.status(at: network.members[$0].admin, timeout: 0.5))?.contributionsMixed ?? 0) > 0 }
        }
        for index in peers {
            let status = try AdminClient.status(at: network.members[index].admin)
            #expect(status.pairedSessions == nil && status.confirmedPairs == nil)
            #expect(status.datagramsRejected == 0, "\(status.rejections)")
        }
    }
}
