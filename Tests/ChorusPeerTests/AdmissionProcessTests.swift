import ChorusCrypto
import Foundation
import Testing
@testable import ChorusPeer

/// Admission and revocation on real peer processes (docs/security.md, "Admission and revocation").
@Suite("admission and revocation on real peers", .serialized)
struct AdmissionProcessTests {
    @Test("certified peers form a network and an uncertified one cannot join; a revocation handed to one peer reaches every member, which drop the revoked peer and keep it out across a restart")
    func admissionAndRevocation() throws {
        let network = try LocalNetwork.forTests(peers: 5, admission: true)
        defer { network.discard() }
        let certified = Array(0..<4), intruder = 4, revoked = 3
        for index in certified { try network.start(index) }
        try network.waitUntilReady(certified)
        try Self.waitFor("every certified peer to see the other three alive", timeout: 15) {
            certified.allSatisfy { index in
                ((try? AdminClient.status(at: network.members[index].admin, timeout: 0.5))?.members.filter { $0.status == "alive" }.count ?? 0) == 4
            }
        }

        // An identity with the network key but no certificate: nobody admits it.
        let config = network.members[intruder].configPath
        let lines = try String(contentsOfFile: config, encoding: .utf8).components(separatedBy: "\n")
        try lines.filter { !$0.hasPrefix("authority") && !$0.hasPrefix("certificate") }.joined(separator: "\n")
            .write(toFile: config, atomically: true, encoding: .utf8)
        try network.start(intruder)
        try network.waitUntilReady([intruder])
        Thread.sleep(forTimeInterval: 4)
        let lonely = try AdminClient.status(at: network.members[intruder].admin)
        #expect(lonely.members.filter { $0.status == "alive" }.count == 1, "the uncertified peer got in: \(lonely.members.map(\.status))")
        let refused = try certified.map { try AdminClient.status(at: network.members[$0].admin).rejections["notAdmitted"] ?? 0 }
        #expect(refused.reduce(0, +) > 0, "no peer refused the uncertified hellos: \(refused)")
        for index in certified {
            let view = try AdminClient.status(at: network.members[index].admin)
            #expect(!view.members.contains { $0.id == network.members[intruder].id.description }, "peer \(index) lists the uncertified peer")
        }

        // Revoke peer 3 through peer 0 with the CLI; time until every other member holds it revoked.
        let authority = network.authorityPath
        let started = Date()
        let result = try ChorusBinary.run(["revoke", "--authority", authority, "--peer", network.members[revoked].id.description,
                                           "--admin", network.members[0].admin.description, "--admin-token", network.directory + "/keys/p0/admin.token"])
        #expect(result.status == 0, "chorus revoke: \(result.stderr)")
        var seenAt: [Int: Double] = [:]
        let observers = [0, 1, 2]
        let deadline = Date().addingTimeInterval(15)
        while seenAt.count < observers.count && Date() < deadline {
            for index in observers where seenAt[index] == nil {
                if let view = try? AdminClient.status(at: network.members[index].admin, timeout: 0.5),
                   view.members.contains(where: { $0.id == network.members[revoked].id.description && $0.status == "revoked" }) {
                    seenAt[index] = Date().timeIntervalSince(started)
                }
            }
            usleep(20_000)
        }
        #expect(seenAt.count == observers.count, "not every member holds the peer revoked within 15 s: \(seenAt)")
        print("revocation held by all \(observers.count) other members after \(String(format: "%.2f", seenAt.values.max() ?? .nan)) s (from the chorus revoke call)")

        // The revoked process stops by itself and says why.
        try Self.waitFor("the revoked peer to exit", timeout: 10) { network.termination(revoked) != nil }
        #expect(network.termination(revoked)?.status != 0)
        #expect(network.tail(revoked, lines: 30).contains("was revoked by the network authority"))

        // A member restarted keeps the revocation (its file beside the checkpoint) and refuses the peer at once.
        #expect(network.stop(1) != nil)
        let kept = try String(contentsOfFile: network.directory + "/state/p1.checkpoint.revocations", encoding: .utf8)
        #expect(kept.contains(network.members[revoked].id.description))
        try network.start(1)
        try network.waitUntilReady([1])
        let restarted = try AdminClient.status(at: network.members[1].admin)
        #expect(restarted.members.contains { $0.id == network.members[revoked].id.description && $0.status == "revoked" })

        // The others still hold each other alive.
        try Self.waitFor("peers 0–2 to see each other alive", timeout: 15) {
            observers.allSatisfy { index in
                ((try? AdminClient.status(at: network.members[index].admin, timeout: 0.5))?.members.filter { $0.status == "alive" }.count ?? 0) == 3
            }
        }
    }

    @Test("a certificate of another identity, or of another authority, is refused at start naming the field")
    func badCertificateIsAStartupError() throws {
        let network = try LocalNetwork.forTests(peers: 2, admission: true)
        defer { network.discard() }
        let config = network.members[0].configPath
        let good = try ChorusBinary.run(["validate", config])
        #expect(good.status == 0 && good.stdout.contains("admission by authority"), "\(good.stdout)\(good.stderr)")
        // Peer 0 names peer 1's certificate.
        let text = try String(contentsOfFile: config, encoding: .utf8)
        try text.replacingOccurrences(of: "keys/p0/certificate", with: "keys/p1/certificate").write(toFile: config, atomically: true, encoding: .utf8)
        let wrongSubject = try ChorusBinary.run(["validate", config])
        #expect(wrongSubject.status != 0)
        #expect(wrongSubject.stderr.contains("peer.certificate") && wrongSubject.stderr.contains("not this identity"), "\(wrongSubject.stderr)")

        // Another authority's certificate for peer 0.
        let other = network.directory + "/keys/other-authority"
        #expect(try ChorusBinary.run(["keygen", "--authority", "--out", other]).status == 0)
        #expect(try ChorusBinary.run(["certify", "--authority", other, "--peer", network.directory + "/keys/p0", "--out", network.directory + "/other.cert"]).status == 0)
        try text.replacingOccurrences(of: "keys/p0/certificate", with: "other.cert").write(toFile: config, atomically: true, encoding: .utf8)
        let wrongAuthority = try ChorusBinary.run(["validate", config])
        #expect(wrongAuthority.status != 0)
        #expect(wrongAuthority.stderr.contains("not signed by the authority in peer.authority"), "\(wrongAuthority.stderr)")

        // Only one of the two fields.
        try text.components(separatedBy: "\n").filter { !$0.hasPrefix("certificate") }.joined(separator: "\n")
            .write(toFile: config, atomically: true, encoding: .utf8)
        let half = try ChorusBinary.run(["validate", config])
        #expect(half.status != 0 && half.stderr.contains("peer.certificate"), "\(half.stderr)")
    }

    static func waitFor(_ what: String, timeout: Double, _ condition: () -> Bool) throws {
        let deadline = Date().addingTimeInterval(timeout)
        while !condition() {
            guard Date() < deadline else {
                Issue.record("timed out after \(timeout) s waiting for \(what)")
                return
            }
            usleep(100_000)
        }
    }
}
