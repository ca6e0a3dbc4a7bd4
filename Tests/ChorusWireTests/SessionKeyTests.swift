import ChorusCrypto
import Testing
@_spi(Simulation) @testable import ChorusWire

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

    /// Alice and Bob after the four hellos of the return-address handshake: the first item Alice
    /// sends waits for them.
    static func pair() -> (WireEndpoint, WireEndpoint) {
        var alice = endpoint(Fixture.alice, epoch: 100, seed: 1), bob = endpoint(Fixture.bob, epoch: 200, seed: 2)
        let hello = alice.send(.message(channel: 9, payload: [1]), to: bob.localID, now: 0)
        #expect(hello.count == 1 && hello[0][1] == DatagramKind.hello.rawValue)
        let atBob = bob.receive(hello[0], from: "a", now: 0)
        #expect(atBob.rejection == nil && bob.isPaired(with: alice.localID) && !bob.isConfirmed(alice.localID))
        let atAlice = alice.receive(atBob.replies[0], from: "b", now: 0)
        #expect(atAlice.rejection == nil && alice.isPaired(with: bob.localID))
        #expect(atAlice.flushed.isEmpty, "Bob has not echoed a cookie of Alice's yet")
        let echo = bob.receive(try! #require(atAlice.replies.first), from: "a", now: 0)
        #expect(bob.isProven(alice.localID, at: "a") && !bob.isProven(alice.localID, at: "b"))
        let proven = alice.receive(try! #require(echo.replies.first), from: "b", now: 0)
        #expect(proven.replies.isEmpty && alice.isProven(bob.localID, at: "b"))
        #expect(proven.flushed.count == 1 && proven.flushed[0][1] == DatagramKind.message.rawValue | PairedDatagram.flag)
        #expect(bob.receive(proven.flushed[0], from: "a", now: 0).deliveries == [.message(from: alice.localID, channel: 9, payload: [1])])
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
        #expect(bob.receive(small, from: "a", now: 1).replies.isEmpty)
        let lost = alice.send(.message(channel: 7, payload: [UInt8](repeating: 1, count: 100)), to: bob.localID, now: 1)[0]
        let refused = bob.receive(lost, from: "a", now: 1)
        #expect(refused.rejection == .noSession)
        let ask = try #require(refused.replies.first, "no hello back")
        #expect(ask.count <= 2 * lost.count)
        // Alice answers with the echo of Bob's cookie: keyed and proved again in one hello.
        let answer = try #require(alice.receive(ask, from: "b", now: 1).replies.first)
        let rekeyed = bob.receive(answer, from: "a", now: 1)
        #expect(rekeyed.rejection == nil && bob.isPaired(with: alice.localID) && bob.isProven(alice.localID, at: "a"))
        #expect(rekeyed.replies.isEmpty, "both proved: nothing more to say")
        #expect(bob.receive(alice.send(.message(channel: 7, payload: [2]), to: bob.localID, now: 2)[0], now: 2).deliveries.count == 1)

        // Alice restarts: her later boot has another key. Her earlier boot's datagrams no longer open.
        let earlier = alice.send(.message(channel: 7, payload: [3]), to: bob.localID, now: 3)[0]
        var later = Self.endpoint(Fixture.alice, epoch: 101, seed: 9)
        let hello = later.send(.message(channel: 7, payload: [4]), to: bob.localID, now: 4)
        let atBob = bob.receive(hello[0], from: "a", now: 4)
        #expect(atBob.rejection == nil && !bob.isConfirmed(Fixture.alice.peerID), "a later boot proves itself again")
        #expect(bob.receive(earlier, from: "a", now: 4).deliveries.isEmpty, "the earlier boot's datagram opened under the later pair")
        let delivered = Fixture.exchange(atBob.replies, from: &bob, to: &later, now: 4, aAddress: "b", bAddress: "a")
        #expect(delivered.atA.contains(.message(from: Fixture.alice.peerID, channel: 7, payload: [4])))
    }

    @Test("both sides derive the same keys whoever speaks first (crossing hellos)")
    func crossingHellos() throws {
        var alice = Self.endpoint(Fixture.alice, epoch: 100, seed: 1), bob = Self.endpoint(Fixture.bob, epoch: 200, seed: 2)
        let fromAlice = alice.hello(now: 0), fromBob = bob.hello(now: 0)
        let atBob = bob.receive(fromAlice, now: 0)
        let atAlice = alice.receive(fromBob, now: 0)
        #expect(alice.isPaired(with: bob.localID) && bob.isPaired(with: alice.localID))
        // Each answer carries a cookie; the answers to those echo them, and both are proved.
        Fixture.exchange([try #require(atBob.replies.first)], from: &bob, to: &alice, now: 0)
        Fixture.exchange([try #require(atAlice.replies.first)], from: &alice, to: &bob, now: 0)
        #expect(alice.isProven(bob.localID, at: "") && bob.isProven(alice.localID, at: ""))
        let d = alice.send(.message(channel: 1, payload: [7]), to: bob.localID, now: 1)
        #expect(d.count == 1 && d[0][1] & PairedDatagram.flag != 0)
        #expect(bob.receive(d[0], now: 1).deliveries.count == 1)
        let e = bob.send(.message(channel: 1, payload: [8]), to: alice.localID, now: 1)
        #expect(e.count == 1 && e[0][1] & PairedDatagram.flag != 0)
        #expect(alice.receive(e[0], now: 1).deliveries.count == 1)
    }

    /// Two peer processes lost a datagram in every other start: the side that learnt the other's
    /// key from its hello sent paired datagrams at once, and one overtook the hello carrying its
    /// own key (`noSession` at the other). As in WireGuard, the responder waits until the
    /// initiator shows it holds the keys, which its echo of the responder's cookie does.
    @Test("the side that learns the pair's keys from a hello sends nothing paired until the other has echoed its cookie")
    func responderWaitsForConfirmation() throws {
        var alice = Self.endpoint(Fixture.alice, epoch: 100, seed: 1), bob = Self.endpoint(Fixture.bob, epoch: 200, seed: 2)
        _ = bob.send(.message(channel: 1, payload: [8]), to: alice.localID, now: 0)  // its hello is lost
        let hello = alice.send(.message(channel: 1, payload: [7]), to: bob.localID, now: 0)
        let atBob = bob.receive(hello[0], now: 0)
        #expect(bob.isPaired(with: alice.localID))
        #expect(atBob.flushed.isEmpty, "bob sent paired datagrams before alice could hold his key")
        let atAlice = alice.receive(try #require(atBob.replies.first), now: 0)
        #expect(atAlice.flushed.isEmpty, "alice sent paired datagrams before bob echoed her cookie")
        let echoed = bob.receive(try #require(atAlice.replies.first), now: 0)  // alice's echo of bob's cookie
        #expect(echoed.flushed.count == 1 && echoed.flushed[0][1] & PairedDatagram.flag != 0)
        let proven = alice.receive(try #require(echoed.replies.first), now: 0)  // bob's echo of alice's
        #expect(proven.flushed.count == 1 && proven.flushed[0][1] & PairedDatagram.flag != 0)
        #expect(alice.receive(echoed.flushed[0], now: 0).deliveries == [.message(from: bob.localID, channel: 1, payload: [8])])
        #expect(bob.receive(proven.flushed[0], now: 0).deliveries == [.message(from: alice.localID, channel: 1, payload: [7])])
        #expect(alice.totalRejected == 0 && bob.totalRejected == 0)
    }

    @Test("a first hello to an address's own text proves the peer in three hellos; to a host name it takes a fourth, and ends")
    func firstHelloCookies() throws {
        for (name, hellos) in [("192.0.2.2:7000", 3), ("bob.example:7000", 4)] {
            var alice = Self.endpoint(Fixture.alice, epoch: 100, seed: 1), bob = Self.endpoint(Fixture.bob, epoch: 200, seed: 2)
            let first = alice.send(.message(channel: 3, payload: [5]), to: bob.localID, at: name, now: 0)
            var count = 1, atBob: [Delivery] = []
            // Carried by hand to count the hellos; Alice's datagrams come from 192.0.2.1, Bob's from 192.0.2.2.
            var toBob = first, toAlice: [[UInt8]] = []
            while !toBob.isEmpty || !toAlice.isEmpty {
                for d in toBob {
                    let r = bob.receive(d, from: "192.0.2.1:7000", now: 0)
                    atBob += r.deliveries
                    toAlice += r.replies + r.flushed
                }
                toBob = []
                for d in toAlice {
                    let r = alice.receive(d, from: "192.0.2.2:7000", now: 0)
                    toBob += r.replies + r.flushed
                }
                count += (toAlice + toBob).filter { $0[1] == DatagramKind.hello.rawValue }.count
                toAlice = []
                #expect(count < 10, "the hellos do not end")
                if count >= 10 { break }
            }
            #expect(count == hellos, "\(name): \(count) hellos")
            #expect(atBob.contains(.message(from: alice.localID, channel: 3, payload: [5])), "\(name)")
            #expect(alice.isProven(bob.localID, at: "192.0.2.2:7000") && bob.isProven(alice.localID, at: "192.0.2.1:7000"))
            #expect(!alice.isProven(bob.localID, at: name) || name == "192.0.2.2:7000")
        }
    }

    /// A peer sends its echo and, right after it, what waited for the proof; the receiver may get
    /// them in either order (the simulator's latency reorders them; so may a network).
    @Test("what a peer sends paired before its echo arrives is held, and acted on once the echo proves it, from that source only")
    func pairedBeforeEchoIsHeld() throws {
        var alice = Self.endpoint(Fixture.alice, epoch: 100, seed: 1), bob = Self.endpoint(Fixture.bob, epoch: 200, seed: 2)
        let first = alice.send(.message(channel: 3, payload: [1]), to: bob.localID, at: "b", now: 0)
        let reply = bob.receive(first[0], from: "a", now: 0).replies
        let atAlice = alice.receive(reply[0], from: "b", now: 0)
        let echo = try #require(atAlice.replies.first), message = try #require(atAlice.flushed.first)
        let later = alice.send(.message(channel: 3, payload: [2]), to: bob.localID, now: 0)[0]
        let early = bob.receive(message, from: "a", now: 0)
        #expect(early.rejection == nil && early.deliveries.isEmpty, "held: alice has not proved an address yet")
        #expect(bob.receive(later, from: "elsewhere", now: 0).deliveries.isEmpty)
        let proved = bob.receive(echo, from: "a", now: 0.01)
        #expect(proved.deliveries == [.hello(alice.localID), .message(from: alice.localID, channel: 3, payload: [1])],
                "the held message is delivered with the echo; the one from another source is not")
        #expect(bob.rejections[.unproven] == 1)
        #expect(bob.receive(alice.send(.message(channel: 3, payload: [3]), to: bob.localID, now: 1)[0], from: "a", now: 1).deliveries.count == 1)
    }

    /// An insider sees every member's boot key in its hellos, so it can derive the keys of a pair
    /// in a fresh name with any member without ever receiving a datagram, and send paired ones
    /// from a third party's address (issue 21: a view sent back there for a few bytes).
    @Test("""
      an insider that keys a pair from a spoofed source without receiving there gets one hello back there, \
      nothing paired, and is never proved at it
      """)
    func spoofedSourceIsNeverProved() throws {
        var bob = Self.endpoint(Fixture.bob, epoch: 200, seed: 2)
        var carol = Self.endpoint(Self.carol, epoch: 300, seed: 3)
        // Carol's hello "from" the victim's address: Bob's answer (with his cookie) goes there.
        let atBob = bob.receive(carol.hello(now: 0), from: "victim", now: 0)
        let answer = try #require(atBob.replies.first)
        #expect(atBob.replies.count == 1 && answer.count <= 2 * 190)
        // Without that answer Carol still derives the pair's keys (Bob's boot key is public) and
        // makes up the rest of the handshake: a hello naming Bob's epoch, claiming to have proved
        // him, with a guessed echo; then paired datagrams.
        let bobsKey = try #require(bob.bootPublicKey)
        var guessed = 0
        for guess: UInt64 in [0, 1, 12345, 1 << 62] {
            let header = DatagramHeader(kind: .hello, keyID: Fixture.network.keyID, sender: Self.carol.peerID, senderEpoch: 300,
                                        recipientEpoch: 200, counter: 10 + guess % 1000)
            let forged = DatagramCodec.seal(header: header, body: .helloWith(keyed: KeyedHello(bootKey: try #require(carol.bootPublicKey),
                                            cookie: 7, echo: guess, proven: true), certificate: nil), identity: Self.carol, key: Fixture.network)
            let r = bob.receive(forged, from: "victim", now: 1 + Double(guessed))
            guessed += 1
            #expect(r.flushed.isEmpty && r.replies.allSatisfy { $0.count <= 190 })
        }
        #expect(!bob.isConfirmed(Self.carol.peerID) && !bob.isProven(Self.carol.peerID, at: "victim"))
        let cipher = try #require(carol.pairCipher(for: bob.localID, bootKey: bobsKey))
        let paired = PairedDatagram.seal(kind: .message, sender: Self.carol.peerID, counter: 100, cipher: cipher, capacity: 3) {
            DatagramCodec.writeBody(.message(channel: 2, payload: [1, 2]), to: &$0)
        }
        let opened = bob.receive(paired, from: "victim", now: 9)
        #expect(opened.rejection == nil && opened.deliveries.isEmpty, "it opens (the keys are Carol's to use), and waits for a proof")
        #expect(opened.flushed.isEmpty && opened.replies.allSatisfy { $0.count <= 190 } && !bob.isProven(Self.carol.peerID, at: "victim"),
                "opening a paired datagram proves nothing about its source")
        _ = bob.tick(now: 12)
        #expect(bob.rejections[.unproven] == 1, "dropped when no proof came")
        // Bob's items for Carol wait: nothing paired goes anywhere until she echoes a cookie.
        let queued = bob.send(.message(channel: 2, payload: [UInt8](repeating: 1, count: 1000)), to: Self.carol.peerID, now: 10)
        #expect(queued.allSatisfy { $0[1] == DatagramKind.hello.rawValue && $0.count <= 190 })
    }
}
