import ChorusAveraging
import ChorusCore
import ChorusCrypto
import ChorusMembership
import ChorusWire
import Foundation
import Testing

/// The payload examples of docs/protocol.md (claims, a membership message, a parameters object),
/// rebuilt from their fixed inputs: the page is what another implementation is written from.
enum PayloadExamples {
    static let alice = try! SigningKey(seed: [UInt8](repeating: 0x0a, count: 32))
    static let bob = try! SigningKey(seed: [UInt8](repeating: 0x0b, count: 32))
    static let aliceIncarnation: UInt64 = 1000 << 16

    static var all: [(name: String, bytes: [UInt8])] {
        let alive = Claim.make(.alive, subject: alice.peerID, incarnation: aliceIncarnation, address: "10.0.0.1:7000", key: alice)
        let suspect = Claim.make(.suspect, subject: alice.peerID, incarnation: aliceIncarnation, key: bob)
        // The authority of the admission examples (seed a0 × 32) revokes Bob.
        let revoked = Claim.make(.revoked, subject: bob.peerID, incarnation: 0, key: try! SigningKey(seed: [UInt8](repeating: 0xa0, count: 32)))
        func encoded(_ claim: Claim) -> [UInt8] {
            var w = ByteWriter(capacity: 200)
            claim.write(to: &w)
            return w.bytes
        }
        return [
            ("claim-alive", encoded(alive)),
            ("claim-suspect", encoded(suspect)),
            ("claim-revoked", encoded(revoked)),
            ("membership-ping", MembershipMessage.ping(sequence: 7, claims: [suspect]).encoded()),
            ("parameters", ParametersMessage(round: 17_800_000_000, step: 1234, degree: 3, parameters: [1.0, -0.5, 0.25]).encoded()),
            ("parameters-push-sum", ParametersMessage(round: 17_800_000_000, step: 1234, degree: 3, stream: StreamID(epoch: 1_780_000_000, counter: 2),
                                                      sequence: 41, weight: 10.5, values: [20.0, -5.0], float64: true).encoded()),
        ]
    }

    /// Reads ```hex example=NAME blocks from docs/protocol.md (text after # is a comment).
    static func fromDocs() throws -> [String: [UInt8]] {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/protocol.md")
        var out: [String: [UInt8]] = [:]
        var current: String?
        var hex = ""
        for line in try String(contentsOf: docs, encoding: .utf8).split(separator: "\n", omittingEmptySubsequences: false) {
            if let name = current {
                if line.hasPrefix("```") {
                    out[name] = Hex.decode(hex)
                    (current, hex) = (nil, "")
                } else {
                    hex += line.split(separator: "#", omittingEmptySubsequences: false)[0].filter { !$0.isWhitespace }
                }
            } else if line.hasPrefix("```hex example=") {
                current = String(line.dropFirst("```hex example=".count))
            }
        }
        return out
    }
}

@Test("the claim, membership and parameters examples of docs/protocol.md are what the code writes, and decode back")
func payloadExamplesMatchTheDocs() throws {
    let docs = try PayloadExamples.fromDocs()
    for (name, bytes) in PayloadExamples.all {
        guard let documented = docs[name] else {
            Issue.record("docs/protocol.md has no example \(name); it should be:\n\(Hex.encode(bytes))")
            continue
        }
        #expect(documented == bytes, "example \(name) differs from the code:\n\(Hex.encode(bytes))")
    }
    guard PayloadExamples.all.allSatisfy({ docs[$0.name] != nil }) else { return }
    // And they read back, with valid signatures.
    var reader = ByteReader(try #require(docs["claim-alive"]))
    let alive = try #require(Claim.read(from: &reader))
    #expect(alive.signatureIsValid() && alive.address == "10.0.0.1:7000" && alive.incarnation == PayloadExamples.aliceIncarnation)
    reader = ByteReader(try #require(docs["claim-suspect"]))
    let suspect = try #require(Claim.read(from: &reader))
    #expect(suspect.signatureIsValid() && suspect.accuser == PayloadExamples.bob.peerID)
    #expect(MembershipMessage.decode(try #require(docs["membership-ping"])) == .ping(sequence: 7, claims: [suspect]))
    #expect(ParametersMessage.decode(try #require(docs["parameters"]))?.parameters == [1.0, -0.5, 0.25])
    let pushBytes = try #require(docs["parameters-push-sum"])
    let push = try #require(ParametersMessage.decode(pushBytes))
    #expect(push.stream == StreamID(epoch: 1_780_000_000, counter: 2) && push.sequence == 41 && push.weight == 10.5 && push.values == [20, -5])
}
