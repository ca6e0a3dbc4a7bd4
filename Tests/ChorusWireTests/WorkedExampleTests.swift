import ChorusCrypto
import Foundation
import Testing
@testable import ChorusWire

/// The worked examples of docs/protocol.md, rebuilt from their fixed inputs.
enum WorkedExamples {
    static let aliceEpoch: UInt64 = 1000
    static let bobEpoch: UInt64 = 2000
    static let objectBytes: [UInt8] = Array(0..<10)

    static func header(_ kind: DatagramKind, from key: SigningKey, epoch: UInt64, to recipientEpoch: UInt64, counter: UInt64) -> DatagramHeader {
        DatagramHeader(kind: kind, keyID: Fixture.network.keyID, sender: key.peerID, senderEpoch: epoch, recipientEpoch: recipientEpoch, counter: counter)
    }

    /// The network authority of the admission examples: Ed25519 seed `a0` × 32.
    static let authority = try! SigningKey(seed: [UInt8](repeating: 0xa0, count: 32))
    static let aliceCertificate = Certificate(subject: Fixture.alice.peerID, authority: authority)

    /// The boot keys of the session-key examples: X25519 from the seeds `a1` × 32 and `b0` × 32.
    static let aliceBootSeed = [UInt8](repeating: 0xa1, count: 32), bobBootSeed = [UInt8](repeating: 0xb0, count: 32)
    static let aliceBoot = BootKey(seed: aliceBootSeed), bobBoot = BootKey(seed: bobBootSeed)
    static let aliceToBob = try! PairCipher(own: aliceBoot, ownID: Fixture.alice.peerID, theirs: bobBoot.publicKey, theirID: Fixture.bob.peerID)
    static let bobFromAlice = try! PairCipher(own: bobBoot, ownID: Fixture.bob.peerID, theirs: aliceBoot.publicKey, theirID: Fixture.alice.peerID)
    /// Their addresses, as each sees the other's datagrams come from (documentation addresses).
    static let aliceAddress = "192.0.2.1:7000", bobAddress = "192.0.2.2:7000"
    static let bobCookieForAlice = bobBoot.cookie(for: aliceAddress), aliceCookieForBob = aliceBoot.cookie(for: bobAddress)
    /// Alice's first hello answers nothing: her cookie in it carries the mark.
    static let aliceFirstCookie = aliceCookieForBob | KeyedHello.unansweredBit

    static var all: [(name: String, bytes: [UInt8])] {
        let hash = try! Blake2b.hash(objectBytes, outputLength: 32)
        return [
            ("hello", DatagramCodec.seal(
                header: header(.hello, from: Fixture.alice, epoch: aliceEpoch, to: 0, counter: 1),
                body: .hello, identity: Fixture.alice, key: Fixture.network)),
            ("hello-reply", DatagramCodec.seal(
                header: header(.hello, from: Fixture.bob, epoch: bobEpoch, to: aliceEpoch, counter: 1),
                body: .hello, identity: Fixture.bob, key: Fixture.network)),
            ("message", DatagramCodec.seal(
                header: header(.message, from: Fixture.alice, epoch: aliceEpoch, to: bobEpoch, counter: 2),
                body: .message(channel: 7, payload: Array("hi bob".utf8)), identity: Fixture.alice, key: Fixture.network)),
            ("manifest", DatagramCodec.seal(
                header: header(.manifest, from: Fixture.alice, epoch: aliceEpoch, to: bobEpoch, counter: 3),
                body: .manifest(ObjectManifest(objectID: 0x0102030405060708, channel: 3, totalLength: 10, chunkSize: 8, hash: hash,
                                               firstChunk: objectBytes[..<8])),
                identity: Fixture.alice, key: Fixture.network)),
            ("chunk", DatagramCodec.seal(
                header: header(.chunk, from: Fixture.alice, epoch: aliceEpoch, to: bobEpoch, counter: 4),
                body: .chunk(ObjectChunk(objectID: 0x0102030405060708, totalLength: 10, chunkSize: 8, index: 1, data: Array(objectBytes[8...]))),
                identity: nil, key: Fixture.network)),
            ("certificate", aliceCertificate.bytes),
            ("certified-hello", DatagramCodec.seal(
                header: header(.hello, from: Fixture.alice, epoch: aliceEpoch, to: 0, counter: 1),
                body: .helloWith(keyed: nil, certificate: aliceCertificate), identity: Fixture.alice, key: Fixture.network)),
            ("keyed-hello", DatagramCodec.seal(
                header: header(.hello, from: Fixture.alice, epoch: aliceEpoch, to: 0, counter: 1),
                body: .helloWith(keyed: KeyedHello(bootKey: aliceBoot.publicKey, cookie: aliceFirstCookie), certificate: nil),
                identity: Fixture.alice, key: Fixture.network)),
            ("keyed-hello-reply", DatagramCodec.seal(
                header: header(.hello, from: Fixture.bob, epoch: bobEpoch, to: aliceEpoch, counter: 1),
                body: .helloWith(keyed: KeyedHello(bootKey: bobBoot.publicKey, cookie: bobCookieForAlice, echo: aliceFirstCookie), certificate: nil),
                identity: Fixture.bob, key: Fixture.network)),
            ("keyed-hello-echo", DatagramCodec.seal(
                header: header(.hello, from: Fixture.alice, epoch: aliceEpoch, to: bobEpoch, counter: 2),
                body: .helloWith(keyed: KeyedHello(bootKey: aliceBoot.publicKey, cookie: aliceCookieForBob, echo: bobCookieForAlice, proven: true),
                                 certificate: nil),
                identity: Fixture.alice, key: Fixture.network)),
            ("paired-message", PairedDatagram.seal(kind: .message, sender: Fixture.alice.peerID, counter: 3, cipher: aliceToBob, capacity: 7) {
                DatagramCodec.writeBody(.message(channel: 7, payload: Array("hi bob".utf8)), to: &$0)
            }),
            ("paired-manifest", PairedDatagram.seal(kind: .manifest, sender: Fixture.alice.peerID, counter: 4, cipher: aliceToBob,
                                                    capacity: ObjectManifest.byteCount + 8) {
                DatagramCodec.writeBody(.manifest(ObjectManifest(objectID: 0x0102030405060708, channel: 3, totalLength: 10, chunkSize: 8, hash: hash,
                                                                 firstChunk: objectBytes[..<8])), to: &$0)
            }),
            ("paired-chunk", PairedDatagram.seal(kind: .chunk, sender: Fixture.alice.peerID, counter: 5, cipher: aliceToBob,
                                                 capacity: ObjectChunk.headerByteCount + 2) {
                DatagramCodec.writeBody(.chunk(ObjectChunk(objectID: 0x0102030405060708, totalLength: 10, chunkSize: 8, index: 1,
                                                           data: Array(objectBytes[8...]))), to: &$0)
            }),
        ]
    }

    /// A paired example as Bob's receive key opens it (its listing in clear), or nil.
    static func pairedClear(_ sealed: [UInt8]) -> [UInt8]? {
        guard case let .success((kind, _, counter)) = PairedDatagram.header(of: sealed) else { return nil }
        var clear = sealed
        guard case .success = PairedDatagram.open(&clear, kind: kind, counter: counter, cipher: bobFromAlice, maxObjectBytes: 1 << 20) else { return nil }
        return clear
    }

    /// Reads ```hex example=NAME blocks from docs/protocol.md.
    static func fromDocs() throws -> [String: [UInt8]] {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("docs/protocol.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        var out: [String: [UInt8]] = [:]
        var current: String?
        var hex = ""
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            if let name = current {
                if line.hasPrefix("```") {
                    out[name] = Hex.decode(hex)
                    current = nil
                    hex = ""
                } else {
                    hex += line.split(separator: "#")[0].filter { !$0.isWhitespace }
                }
            } else if line.hasPrefix("```hex example=") {
                current = String(line.dropFirst("```hex example=".count))
            }
        }
        return out
    }
}

@Test("the code produces exactly the datagram bytes printed in docs/protocol.md")
func workedExamplesMatchDocs() throws {
    let documented = try WorkedExamples.fromDocs()
    if ProcessInfo.processInfo.environment["CHORUS_PRINT_EXAMPLES"] != nil {
        for (name, bytes) in WorkedExamples.all {
            print("EXAMPLE \(name) \(Hex.encode(bytes))")
            if case let .success(opened) = DatagramCodec.open(bytes, keyring: NetworkKeyring([Fixture.network]), maxDatagramSize: 1200, maxObjectBytes: 1 << 20) {
                print("CLEAR \(name) \(Hex.encode(opened.bytes))")  // decrypted, for the page's "in clear" listings
            }
            if let clear = WorkedExamples.pairedClear(bytes) { print("CLEAR \(name) \(Hex.encode(clear))") }
        }
    }
    for (name, bytes) in WorkedExamples.all {
        #expect(documented[name] == bytes, "example \(name) differs from docs/protocol.md")
        // A datagram's listing in clear is what it decrypts to (the tag bytes stay as sealed).
        if case let .success(opened) = DatagramCodec.open(bytes, keyring: NetworkKeyring([Fixture.network]), maxDatagramSize: 1200, maxObjectBytes: 1 << 20) {
            #expect(documented[name + "-clear"] == opened.bytes, "example \(name)-clear differs from docs/protocol.md")
            #expect(opened.bytes[..<DatagramHeader.byteCount] == bytes[..<DatagramHeader.byteCount], "the header travels in clear")
        }
        if let clear = WorkedExamples.pairedClear(bytes) {
            #expect(documented[name + "-clear"] == clear, "example \(name)-clear differs from docs/protocol.md")
            #expect(clear[..<PairedDatagram.headerByteCount] == bytes[..<PairedDatagram.headerByteCount], "the header travels in clear")
        }
    }
}

@Test("captured traffic reveals no parameter values: no 8-byte run of a known vector is in the datagrams that carry it",
      arguments: [true, false])
func capturedTrafficRevealsNoParameters(sessionKeys: Bool) throws {
    var settings = WireSettings()
    settings.sessionKeys = sessionKeys
    var (alice, bob) = Fixture.connectedPair(settings: settings)
    #expect(alice.isPaired(with: bob.localID) == sessionKeys)
    let vector = (0..<5000).map { Float($0) * 0.001 - 2.5 }.withUnsafeBytes { Array($0) }
    let datagrams = alice.send(.object(PreparedObject(channel: 1, bytes: vector)), to: bob.localID, now: 1)
        + alice.send(.message(channel: 2, payload: Array(vector[..<400])), to: bob.localID, now: 1)
    #expect(datagrams.count > 10)
    let runs = Set(stride(from: 0, to: vector.count - 8, by: 4).map { Array(vector[$0..<$0 + 8]) })
    var found = 0
    for d in datagrams where d.count >= 8 {
        for start in 0...(d.count - 8) where runs.contains(Array(d[start..<start + 8])) { found += 1 }
    }
    #expect(found == 0, "\(found) runs of the vector readable on the wire")
    // And the receiver gets it all back.
    var delivered = 0
    for d in datagrams { delivered += bob.receive(d, now: 1).deliveries.count }
    #expect(delivered == 2)
}

@Test("a receiver accepts the documented datagrams in order and delivers what they say")
func workedExamplesAccepted() throws {
    let documented = try WorkedExamples.fromDocs()
    var bob = Fixture.endpoint(Fixture.bob, epoch: WorkedExamples.bobEpoch)
    var alice = Fixture.endpoint(Fixture.alice, epoch: WorkedExamples.aliceEpoch)
    let hello = bob.receive(try #require(documented["hello"]), now: 0)
    #expect(hello.deliveries == [.hello(Fixture.alice.peerID)])
    #expect(hello.replies.first == documented["hello-reply"])
    #expect(alice.receive(try #require(documented["hello-reply"]), now: 0).deliveries == [.hello(Fixture.bob.peerID)])
    let message = bob.receive(try #require(documented["message"]), now: 0)
    #expect(message.deliveries == [.message(from: Fixture.alice.peerID, channel: 7, payload: Array("hi bob".utf8))])
    #expect(bob.receive(try #require(documented["manifest"]), now: 0).deliveries.isEmpty)
    let chunk = bob.receive(try #require(documented["chunk"]), now: 0)
    #expect(chunk.deliveries == [.object(CompletedObject(sender: Fixture.alice.peerID, channel: 3, bytes: WorkedExamples.objectBytes))])
}

@Test("""
      with session keys, Alice and Bob exchange the three documented hellos (cookies and echoes), Alice then sends paired, \
      and Bob opens the documented paired message and object
      """)
func sessionKeyExamplesAccepted() throws {
    let documented = try WorkedExamples.fromDocs()
    var settings = WireSettings()
    settings.sessionKeys = true
    var bob = WireEndpoint(identity: Fixture.bob, keyring: NetworkKeyring([Fixture.network]), epoch: WorkedExamples.bobEpoch,
                           settings: settings, bootKeySeed: WorkedExamples.bobBootSeed)
    var alice = WireEndpoint(identity: Fixture.alice, keyring: NetworkKeyring([Fixture.network]), epoch: WorkedExamples.aliceEpoch,
                             settings: settings, bootKeySeed: WorkedExamples.aliceBootSeed)
    let (alicesAddress, bobsAddress) = (WorkedExamples.aliceAddress, WorkedExamples.bobAddress)
    // Alice has "hi bob" for Bob: it waits, and her first hello goes out.
    #expect(alice.send(.message(channel: 7, payload: Array("hi bob".utf8)), to: Fixture.bob.peerID, at: bobsAddress, now: 0)
            == [try #require(documented["keyed-hello"])])
    let hello = bob.receive(try #require(documented["keyed-hello"]), from: alicesAddress, now: 0)
    #expect(hello.deliveries == [.hello(Fixture.alice.peerID)])
    #expect(hello.replies == [try #require(documented["keyed-hello-reply"])])
    let reply = alice.receive(try #require(documented["keyed-hello-reply"]), from: bobsAddress, now: 0)
    #expect(reply.replies == [try #require(documented["keyed-hello-echo"])])
    let message = try #require(documented["paired-message"])
    #expect(reply.flushed == [message], "Alice's waiting message goes paired once Bob has echoed her cookie")
    let echo = bob.receive(try #require(documented["keyed-hello-echo"]), from: alicesAddress, now: 0)
    #expect(echo.replies.isEmpty, "both proved: the exchange ends")
    #expect(bob.isProven(Fixture.alice.peerID, at: alicesAddress) && !bob.isProven(Fixture.alice.peerID, at: bobsAddress))
    #expect(bob.receive(message, from: alicesAddress, now: 0).deliveries == [.message(from: Fixture.alice.peerID, channel: 7, payload: Array("hi bob".utf8))])
    #expect(bob.receive(try #require(documented["paired-manifest"]), now: 0).deliveries.isEmpty)
    let chunk = bob.receive(try #require(documented["paired-chunk"]), now: 0)
    #expect(chunk.deliveries == [.object(CompletedObject(sender: Fixture.alice.peerID, channel: 3, bytes: WorkedExamples.objectBytes))])
    #expect(documented["alice-boot-key"] == WorkedExamples.aliceBoot.publicKey && documented["bob-boot-key"] == WorkedExamples.bobBoot.publicKey)
}

@Test("a receiver with admission admits Alice from the documented certified hello, and only from it")
func certifiedHelloExampleAdmits() throws {
    let documented = try WorkedExamples.fromDocs()
    let admission = Admission(authority: WorkedExamples.authority.peerID,
                              certificate: Certificate(subject: Fixture.bob.peerID, authority: WorkedExamples.authority))
    var bob = WireEndpoint(identity: Fixture.bob, keyring: NetworkKeyring([Fixture.network]), epoch: WorkedExamples.bobEpoch, admission: admission)
    #expect(bob.receive(try #require(documented["hello"]), now: 0).rejection == .notAdmitted)
    let certified = bob.receive(try #require(documented["certified-hello"]), now: 0)
    #expect(certified.rejection == nil && certified.deliveries == [.hello(Fixture.alice.peerID)])
    #expect(Certificate(bytes: try #require(documented["certificate"]))?.isValid(authority: WorkedExamples.authority.peerID) == true)
}
