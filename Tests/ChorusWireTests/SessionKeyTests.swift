import ChorusCrypto
import Testing
@testable import ChorusWire

/// Per-pair session keys (`WireSettings.sessionKeys`, `PairedDatagram`): hellos carry each boot's
/// key-exchange key; everything else between two boots goes sealed with their pair's keys.
@Suite("session keys")
struct SessionKeyTests {
    static var settings: WireSettings {
        var s = WireSettings()
        s.sessionKeys = true
        return s
    }
    static let carol = try! SigningKey(seed: [UInt8](repeating: 0x0c, count: 32))

    static func endpoint(_ key: SigningKey, epoch: UInt64, seed: UInt8) -> WireEndpoint {
        WireEndpoint(identity: key, keyring: NetworkKeyring([Fixture.network]), epoch: epoch, settings: settings,
                     bootKeySeed: [UInt8](repeating: seed, count: 32))
    }

    /// Alice and Bob after the hellos: the first item Alice sends waits for them.
    static func pair() -> (WireEndpoint, WireEndpoint) {
        var alice = endpoint(Fixture.alice, epoch: 100, seed: 1), bob = endpoint(Fixture.bob, epoch: 200, seed: 2)
        let hello = alice.send(.message(channel: 9, payload: [1]), to: bob.localID, now: 0)
        #expect(hello.count == 1 && hello[0][1] == DatagramKind.hello.rawValue)
        let atBob = bob.receive(hello[0], now: 0)
        #expect(atBob.rejection == nil && bob.isPaired(with: alice.localID))
        let atAlice = alice.receive(atBob.replies[0], now: 0)
        #expect(atAlice.rejection == nil && alice.isPaired(with: bob.localID))
        #expect(atAlice.flushed.count == 1 && atAlice.flushed[0][1] == DatagramKind.message.rawValue | PairedDatagram.flag)
        #expect(bob.receive(atAlice.flushed[0], now: 0).deliveries == [.message(from: alice.localID, channel: 9, payload: [1])])
        return (alice, bob)
    }

    @Test("after the hellos, messages and objects travel sealed with the pair's keys: 34 bytes of header and tag, no signature")
    func pairedTraffic() throws {
        var (alice, bob) = Self.pair()
        let payload = Array("hi bob".utf8)
        let message = alice.send(.message(channel: 7, payload: payload), to: bob.localID, now: 1)
        #expect(message.count == 1 && message[0].count == PairedDatagram.overhead + 1 + payload.count)
        #expect(bob.receive(message[0], now: 1).deliveries == [.message(from: alice.localID, channel: 7, payload: payload)])
        let object = (0..<5000).map { UInt8(truncatingIfNeeded: $0 * 7) }
        var delivered: [Delivery] = []
        for d in alice.send(.object(PreparedObject(channel: 1, bytes: object)), to: bob.localID, now: 2) {
            #expect(d[1] & PairedDatagram.flag != 0)
            delivered += bob.receive(d, now: 2).deliveries
        }
        #expect(delivered == [.object(CompletedObject(sender: alice.localID, channel: 1, bytes: object))])
        // Replayed, or with any bit flipped: refused.
        #expect(bob.receive(message[0], now: 3).rejection == .replayed)
        let again = alice.send(.message(channel: 7, payload: payload), to: bob.localID, now: 3)[0]
        for i in 0..<again.count {
            var flipped = again
            flipped[i] ^= 0x10
            #expect(bob.receive(flipped, now: 3).deliveries.isEmpty, "bit flipped at byte \(i) was accepted")
        }
        #expect(bob.receive(again, now: 3).deliveries.count == 1)
    }

    @Test("an insider holding the network key can neither read a pair's datagrams nor forge a chunk into it")
    func insiderLockedOut() throws {
        var (alice, bob) = Self.pair()
        var carol = Self.endpoint(Self.carol, epoch: 300, seed: 3)
        let secret = [UInt8](repeating: 0x5a, count: 200)
        let datagram = alice.send(.message(channel: 7, payload: secret), to: bob.localID, now: 1)[0]
        #expect(carol.receive(datagram, now: 1).deliveries.isEmpty, "a third party opened the pair's datagram")
        #expect(!datagram.indices.dropLast(8).contains { datagram[$0..<$0 + 8].allSatisfy { $0 == 0x5a } })
        // A chunk under the network key in Alice's name (unsigned, so anyone could make it): refused.
        let header = DatagramHeader(kind: .chunk, keyID: Fixture.network.keyID, sender: alice.localID, senderEpoch: 100,
                                    recipientEpoch: 200, counter: 1 << 40)
        let forged = DatagramCodec.seal(header: header, body: .chunk(ObjectChunk(objectID: 1, totalLength: 2000, chunkSize: 1000, index: 1,
                                                                               data: [UInt8](repeating: 1, count: 1000))),
                                        identity: nil, key: Fixture.network)
        #expect(bob.receive(forged, now: 1).rejection == .noSession)
        #expect(bob.receive(alice.send(.message(channel: 7, payload: [2]), to: bob.localID, now: 2)[0], now: 2).deliveries.count == 1)
    }

    @Test("a receiver that lost the pair (forgot, or a sender's later boot) answers with a hello, and the pair is keyed again")
    func rekeying() throws {
        var (alice, bob) = Self.pair()
        bob.forget(alice.localID)
        // One it cannot open is answered only when the hello is at most twice its size (it may
        // come from anywhere): a small one is dropped without an answer, a membership-sized one asks.
        let small = alice.send(.message(channel: 7, payload: [1]), to: bob.localID, now: 1)[0]
        #expect(bob.receive(small, now: 1).replies.isEmpty)
        let lost = alice.send(.message(channel: 7, payload: [UInt8](repeating: 1, count: 100)), to: bob.localID, now: 1)[0]
        let refused = bob.receive(lost, now: 1)
        #expect(refused.rejection == .noSession)
        let ask = try #require(refused.replies.first, "no hello back")
        #expect(ask.count <= 2 * lost.count)
        let answer = try #require(alice.receive(ask, now: 1).replies.first)
        #expect(bob.receive(answer, now: 1).rejection == nil && bob.isPaired(with: alice.localID))
        #expect(bob.receive(alice.send(.message(channel: 7, payload: [2]), to: bob.localID, now: 2)[0], now: 2).deliveries.count == 1)

        // Alice restarts: her later boot has another key. Her earlier boot's datagrams no longer open.
        let earlier = alice.send(.message(channel: 7, payload: [3]), to: bob.localID, now: 3)[0]
        var later = Self.endpoint(Fixture.alice, epoch: 101, seed: 9)
        let hello = later.send(.message(channel: 7, payload: [4]), to: bob.localID, now: 4)
        let atBob = bob.receive(hello[0], now: 4)
        #expect(atBob.rejection == nil)
        #expect(bob.receive(earlier, now: 4).deliveries.isEmpty, "the earlier boot's datagram opened under the later pair")
        let flushed = later.receive(atBob.replies[0], now: 4).flushed
        #expect(bob.receive(flushed[0], now: 4).deliveries == [.message(from: Fixture.alice.peerID, channel: 7, payload: [4])])
    }

    @Test("both sides derive the same keys whoever speaks first (crossing hellos)")
    func crossingHellos() throws {
        var alice = Self.endpoint(Fixture.alice, epoch: 100, seed: 1), bob = Self.endpoint(Fixture.bob, epoch: 200, seed: 2)
        let fromAlice = alice.hello(now: 0), fromBob = bob.hello(now: 0)
        let atBob = bob.receive(fromAlice, now: 0)
        let atAlice = alice.receive(fromBob, now: 0)
        #expect(alice.isPaired(with: bob.localID) && bob.isPaired(with: alice.localID))
        // Each answers a hello naming no epoch with one naming the other's: that confirms the keys.
        _ = alice.receive(try #require(atBob.replies.first), now: 0)
        _ = bob.receive(try #require(atAlice.replies.first), now: 0)
        let d = alice.send(.message(channel: 1, payload: [7]), to: bob.localID, now: 1)
        #expect(d.count == 1 && d[0][1] & PairedDatagram.flag != 0)
        #expect(bob.receive(d[0], now: 1).deliveries.count == 1)
        let e = bob.send(.message(channel: 1, payload: [8]), to: alice.localID, now: 1)
        #expect(e.count == 1 && e[0][1] & PairedDatagram.flag != 0)
        #expect(alice.receive(e[0], now: 1).deliveries.count == 1)
    }

    /// Two peer processes lost a datagram in every other start: the side that learnt the other's
    /// key from its hello sent paired datagrams at once, and one overtook the hello carrying its
    /// own key (`noSession` at the other). As in WireGuard, the responder now waits until the
    /// initiator shows it holds the keys.
    @Test("the side that learns the pair's keys from a hello sends nothing paired until the other confirms it holds them")
    func responderWaitsForConfirmation() throws {
        var alice = Self.endpoint(Fixture.alice, epoch: 100, seed: 1), bob = Self.endpoint(Fixture.bob, epoch: 200, seed: 2)
        _ = bob.send(.message(channel: 1, payload: [8]), to: alice.localID, now: 0)  // its hello is lost
        let hello = alice.send(.message(channel: 1, payload: [7]), to: bob.localID, now: 0)
        let atBob = bob.receive(hello[0], now: 0)
        #expect(bob.isPaired(with: alice.localID))
        #expect(atBob.flushed.isEmpty, "bob sent paired datagrams before alice could hold his key")
        let reply = try #require(atBob.replies.first)
        let atAlice = alice.receive(reply, now: 0)  // names alice's epoch: bob holds her key
        #expect(atAlice.flushed.count == 1 && atAlice.flushed[0][1] & PairedDatagram.flag != 0)
        let opened = bob.receive(atAlice.flushed[0], now: 0)  // it opened: alice holds his
        #expect(opened.deliveries == [.message(from: alice.localID, channel: 1, payload: [7])])
        #expect(opened.flushed.count == 1 && opened.flushed[0][1] & PairedDatagram.flag != 0)
        #expect(alice.receive(opened.flushed[0], now: 0).deliveries == [.message(from: bob.localID, channel: 1, payload: [8])])
        #expect(alice.totalRejected == 0 && bob.totalRejected == 0)
    }
}
