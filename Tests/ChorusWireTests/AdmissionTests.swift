import ChorusCrypto
import Testing
@testable import ChorusWire

/// Admission at the datagram layer: certified hellos, the hello that asks a peer to show its
/// certificate, and revoked identities (docs/security.md, "Admission and revocation").
@Suite("Admission")
struct AdmissionTests {
    static let authority = try! SigningKey(seed: [UInt8](repeating: 0xa0, count: 32))
    static let otherAuthority = try! SigningKey(seed: [UInt8](repeating: 0xa1, count: 32))
    static let carol = try! SigningKey(seed: [UInt8](repeating: 0x0c, count: 32))

    static func admission(_ key: SigningKey, by authority: SigningKey = AdmissionTests.authority, for subject: PeerID? = nil) -> Admission {
        Admission(authority: Self.authority.peerID, certificate: Certificate(subject: subject ?? key.peerID, authority: authority))
    }

    /// With or without session keys (the default, and the format under the network key).
    static func endpoint(_ key: SigningKey, epoch: UInt64, admission: Admission?, sessionKeys: Bool = true) -> WireEndpoint {
        var settings = WireSettings()
        settings.sessionKeys = sessionKeys
        return WireEndpoint(identity: key, keyring: NetworkKeyring([Fixture.network]), epoch: epoch, settings: settings, admission: admission)
    }

    @Test("a certified hello admits its sender; none, another authority's or another peer's certificate is refused as notAdmitted",
          arguments: [true, false])
    func certifiedHelloAdmits(sessionKeys: Bool) throws {
        var bob = Self.endpoint(Fixture.bob, epoch: 200, admission: Self.admission(Fixture.bob), sessionKeys: sessionKeys)

        var alice = Self.endpoint(Fixture.alice, epoch: 100, admission: Self.admission(Fixture.alice), sessionKeys: sessionKeys)
        let hello = alice.hello(now: 0)
        #expect(hello.count == DatagramHeader.byteCount + (sessionKeys ? KeyedHello.byteCount : 0) + Certificate.byteCount + 64 + 16)
        let accepted = bob.receive(hello, now: 0)
        #expect(accepted.rejection == nil && accepted.deliveries == [.hello(Fixture.alice.peerID)])
        #expect(accepted.replies.count == 1, "answered with bob's own certified hello")
        #expect(alice.receive(accepted.replies[0], now: 0).rejection == nil, "and alice admits bob from it")
        #expect(alice.totalRejected == 0 && bob.totalRejected == 0)

        let refusedBy: [(String, WireEndpoint)] = [
            ("no certificate", Self.endpoint(Fixture.alice, epoch: 101, admission: nil, sessionKeys: sessionKeys)),
            ("another authority's", Self.endpoint(Self.carol, epoch: 100, admission: Self.admission(Self.carol, by: Self.otherAuthority), sessionKeys: sessionKeys)),
            ("another peer's", Self.endpoint(Self.carol, epoch: 100, admission: Self.admission(Self.carol, for: Fixture.alice.peerID), sessionKeys: sessionKeys)),
        ]
        for (what, var sender) in refusedBy {
            var fresh = Self.endpoint(Fixture.bob, epoch: 200, admission: Self.admission(Fixture.bob), sessionKeys: sessionKeys)
            let reception = fresh.receive(sender.hello(now: 0), now: 0)
            #expect(reception.rejection == .notAdmitted, "\(what)")
            #expect(reception.deliveries.isEmpty && reception.replies.isEmpty, "\(what): a hello is not answered")
            #expect(fresh.sessionCount == 0, "\(what): no state kept")
            #expect(fresh.rejections[.notAdmitted] == 1)
        }
    }

    /// Under the network key the datagram is authentic but its sender not admitted; with session
    /// keys bob has no keys for it any more (`noSession`): either way bob's hello asks again.
    @Test("an authentic datagram from an identity not admitted here is answered with a hello, and the answer to it admits the sender",
          arguments: [true, false])
    func forgottenPeerIsAdmittedAgain(sessionKeys: Bool) throws {
        var alice = Self.endpoint(Fixture.alice, epoch: 100, admission: Self.admission(Fixture.alice), sessionKeys: sessionKeys)
        var bob = Self.endpoint(Fixture.bob, epoch: 200, admission: Self.admission(Fixture.bob), sessionKeys: sessionKeys)
        // Connect, then bob forgets alice (as after her tombstone expired); alice still knows bob.
        Fixture.exchange([alice.hello(now: 0)], from: &alice, to: &bob, now: 0)
        #expect(alice.knowsEpoch(of: Fixture.bob.peerID) && alice.isConfirmed(Fixture.bob.peerID))
        bob.forget(Fixture.alice.peerID)

        // Large enough for bob's hello (with certificate and keyed part, 286 bytes) to be at most twice its size.
        let message = alice.send(.message(channel: 7, payload: Array(repeating: 1, count: 120)), to: Fixture.bob.peerID, now: 1)
        let refused = bob.receive(message[0], now: 1)
        #expect(refused.rejection == (sessionKeys ? .noSession : .notAdmitted) && refused.deliveries.isEmpty)
        let ask = try #require(refused.replies.first, "bob asks alice to show her certificate")
        #expect(ask.count <= 2 * message[0].count)

        let atAlice = alice.receive(ask, now: 1)
        #expect(atAlice.rejection == nil)
        let answer = try #require(atAlice.replies.first, "a hello naming no epoch of hers is answered")
        #expect(bob.receive(answer, now: 1).rejection == nil)
        #expect(!sessionKeys || bob.isProven(Fixture.alice.peerID, at: ""), "with session keys the answer echoes bob's cookie")
        let again = alice.send(.message(channel: 7, payload: [2]), to: Fixture.bob.peerID, now: 2)
        #expect(bob.receive(again[0], now: 2).deliveries == [.message(from: Fixture.alice.peerID, channel: 7, payload: [2])])
    }

    @Test("a revoked identity's datagrams are dropped before any signature work, and its session is gone",
          arguments: [true, false])
    func revokedIsDropped(sessionKeys: Bool) throws {
        var alice = Self.endpoint(Fixture.alice, epoch: 100, admission: Self.admission(Fixture.alice), sessionKeys: sessionKeys)
        var bob = Self.endpoint(Fixture.bob, epoch: 200, admission: Self.admission(Fixture.bob), sessionKeys: sessionKeys)
        Fixture.exchange([alice.hello(now: 0)], from: &alice, to: &bob, now: 0)
        #expect(bob.sessionCount == 1)
        bob.revoke(Fixture.alice.peerID)
        #expect(bob.sessionCount == 0)
        let message = alice.send(.message(channel: 7, payload: [1]), to: Fixture.bob.peerID, now: 1)
        #expect(message.count == 1 && (message[0][1] & PairedDatagram.flag != 0) == sessionKeys, "paired with session keys")
        for datagram in [alice.hello(now: 1)] + message {
            let reception = bob.receive(datagram, now: 1)
            #expect(reception.rejection == .revoked && reception.replies.isEmpty && reception.deliveries.isEmpty)
        }
        #expect(bob.rejections[.revoked] == 2)
        #expect(bob.sessionCount == 0)
    }

    @Test("a hello body is empty, a keyed part, a certificate, or both: no other length")
    func helloBodyIsStrict() {
        for length in [1, 31, 32, 33, 47, 49, Certificate.byteCount - 1, Certificate.byteCount + 1, 128, 143, 145] {
            let header = DatagramHeader(kind: .hello, keyID: Fixture.network.keyID, sender: Fixture.alice.peerID, senderEpoch: 100,
                                        recipientEpoch: 0, counter: 1)
            // A message body sealed under the hello kind: the bytes after the header are `length` long.
            let datagram = DatagramCodec.seal(header: header, body: .message(channel: 0, payload: Array(repeating: 0, count: length - 1)),
                                              identity: Fixture.alice, key: Fixture.network)
            let opened = DatagramCodec.open(datagram, keyring: NetworkKeyring([Fixture.network]), maxDatagramSize: 1200, maxObjectBytes: 1 << 20)
            guard case .failure(.malformedBody) = opened else { Issue.record("a hello of \(length) body bytes: \(opened)"); continue }
        }
    }
}
