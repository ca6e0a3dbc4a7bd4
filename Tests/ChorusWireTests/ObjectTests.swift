import ChorusCrypto
import Testing
@testable import ChorusWire

private func transfer(_ bytes: [UInt8], settings: WireSettings = .init(), shuffle: Bool = false) -> [UInt8]? {
    var (a, b) = Fixture.connectedPair(settings: settings)
    var datagrams = a.send(.object(PreparedObject(channel: 4, bytes: bytes)), to: Fixture.bob.peerID, now: 1)
    if shuffle {
        var rng = SystemRandomNumberGenerator()
        datagrams.shuffle(using: &rng)
    }
    var result: [UInt8]?
    for datagram in datagrams {
        #expect(datagram.count <= settings.maxDatagramSize)
        let r = b.receive(datagram, now: 1)
        #expect(r.rejection == nil)
        for case let .object(object) in r.deliveries {
            #expect(result == nil)
            #expect(object.sender == Fixture.alice.peerID && object.channel == 4)
            result = object.bytes
        }
    }
    #expect(b.reassemblyBytesInUse == 0)
    return result
}

@Test("objects round-trip at sizes 0, 1 and around the one-datagram boundary",
      arguments: [0, 1, WireSettings().chunkDataSize - 1, WireSettings().chunkDataSize, WireSettings().chunkDataSize + 1, 3 * WireSettings().chunkDataSize])
func roundTrip(size: Int) {
    let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ 7) }
    #expect(transfer(bytes) == bytes)
    #expect(transfer(bytes, shuffle: true) == bytes)
}

/// Chunks fill the datagram beside the manifest's fields: 1200 − 62 header − 47 manifest fields −
/// 64 signature − 16 tag = 1011 under the network key; 1200 − 18 header − 47 − 16 tag = 1119 as
/// paired datagrams (session keys, the default).
@Test("an object of n chunks is n datagrams: the manifest carries chunk 0", arguments: [false, true])
func oneDatagramPerChunk(sessionKeys: Bool) throws {
    var settings = WireSettings()
    settings.sessionKeys = sessionKeys
    let chunk = settings.chunkDataSize
    #expect(chunk == (sessionKeys ? 1119 : 1011))
    for size in [0, 1, chunk, chunk + 1, 2600, 3 * chunk, 3 * chunk + 1] {
        var (a, b) = Fixture.connectedPair(settings: settings)
        let bytes = (0..<size).map { UInt8(truncatingIfNeeded: $0) }
        let datagrams = a.send(.object(PreparedObject(channel: 4, bytes: bytes)), to: Fixture.bob.peerID, now: 1)
        #expect(datagrams.count == max(1, (size + chunk - 1) / chunk), "\(size) bytes")
        #expect(datagrams.allSatisfy { $0.count <= 1200 })
        #expect(size < chunk || datagrams[0].count == 1200, "a full first chunk fills the datagram")
        // The manifest alone completes an object of one chunk; otherwise the last chunk does.
        var deliveries: [Delivery] = []
        for (i, datagram) in datagrams.enumerated() {
            let r = b.receive(datagram, now: 1)
            #expect(r.deliveries.isEmpty == (i < datagrams.count - 1))
            deliveries += r.deliveries
        }
        #expect(deliveries == [.object(CompletedObject(sender: Fixture.alice.peerID, channel: 4, bytes: bytes))], "\(size) bytes")
    }
}

@Test("a duplicated manifest or chunk is harmless and the object is delivered once")
func duplicates() {
    var (a, _) = Fixture.connectedPair()
    let bytes = (0..<3000).map { UInt8(truncatingIfNeeded: $0 &* 7) }
    let datagrams = a.send(.object(PreparedObject(channel: 4, bytes: bytes)), to: Fixture.bob.peerID, now: 1)
    var reassembler = Reassembler(settings: WireSettings().reassembly(mode: .real))
    var outcomes: [Reassembler.Outcome] = []
    // The reassembler itself (the endpoint's replay window would drop a replayed datagram first).
    for datagram in [datagrams[1], datagrams[0], datagrams[1], datagrams[0], datagrams[2]] {
        guard case let .success(opened) = DatagramCodec.open(datagram, keyring: NetworkKeyring([Fixture.network]),
                                                              maxDatagramSize: 1200, maxObjectBytes: 1 << 20)
        else { Issue.record("did not open"); return }
        switch opened.body {
        case let .manifest(m): outcomes.append(reassembler.add(manifest: m, from: Fixture.alice.peerID, now: 1))
        case let .chunk(c): outcomes.append(reassembler.add(chunk: c, from: Fixture.alice.peerID, now: 1))
        default: Issue.record("not an object datagram")
        }
    }
    #expect(outcomes.dropLast().allSatisfy { $0 == .pending })
    #expect(outcomes.last == .complete(CompletedObject(sender: Fixture.alice.peerID, channel: 4, bytes: bytes)))
    #expect(reassembler.objectsInProgress == 0 && reassembler.bytesInUse == 0)
}

@Test("a vector of 4 million float32s round-trips through 1200-byte datagrams")
func fourMillionFloats() {
    let floats = (0..<4_000_000).map { Float($0) * 0.25 - 1 }
    let bytes = floats.withUnsafeBytes { Array($0) }
    let received = transfer(bytes)
    #expect(received?.count == 16_000_000)
    #expect(received == bytes)
}

@Test("an object whose data does not match the signed hash is dropped")
func hashMismatch() {
    var (a, b) = Fixture.connectedPair()
    let object = PreparedObject(channel: 1, bytes: [UInt8](repeating: 1, count: 3000))
    let datagrams = a.send(.object(object), to: Fixture.bob.peerID, now: 1)
    // An insider (who holds the network key) substitutes one chunk's data; the tag is recomputed.
    let original = DatagramCodec.open(datagrams[2], keyring: NetworkKeyring([Fixture.network]), maxDatagramSize: 1200, maxObjectBytes: 1 << 26)
    guard case let .success(opened) = original, case var .chunk(chunk) = opened.body else { Issue.record("no chunk"); return }
    chunk.data[0] ^= 0xff
    let substituted = DatagramCodec.seal(header: opened.header, body: .chunk(chunk), identity: nil, key: Fixture.network)
    var deliveries: [Delivery] = []
    #expect(datagrams.count == 3)  // the manifest with chunk 0, then chunks 1 and 2
    for datagram in [datagrams[0], datagrams[1], substituted] {
        deliveries += b.receive(datagram, now: 1).deliveries
    }
    #expect(deliveries.isEmpty)
    #expect(b.rejections[.objectHashMismatch] == 1)
}

@Test("a flood of chunks for objects that never complete stays within the memory budget")
func floodStaysBounded() throws {
    var settings = WireSettings()
    settings.maxObjectBytes = 1 << 20
    settings.perSenderBudgetBytes = 4 << 20
    settings.reassemblyBudgetBytes = 8 << 20
    var (a, b) = Fixture.connectedPair(settings: settings)
    var peak = 0
    // 200 objects of 1 MiB, only the first chunk of each: 200 MiB if nothing were bounded.
    for i in 0..<200 {
        let object = PreparedObject(channel: 1, bytes: [UInt8](repeating: UInt8(i & 0xff), count: 1 << 20))
        let datagrams = a.send(.object(object), to: Fixture.bob.peerID, now: Double(i) * 0.01)
        _ = b.receive(datagrams[1], now: Double(i) * 0.01)
        peak = max(peak, b.reassemblyBytesInUse)
    }
    #expect(peak <= settings.perSenderBudgetBytes)
    #expect(peak >= 3 << 20)  // it did buffer up to the budget
    // And incomplete objects are dropped after the timeout.
    _ = b.tick(now: 100)
    #expect(b.reassemblyBytesInUse == 0)
    #expect((b.rejections[.objectTimedOut] ?? 0) > 0)
}

@Test("many senders together cannot exceed the global budget")
func globalBudget() {
    var reassembler = Reassembler(settings: .init(maxObjectBytes: 1 << 20, budgetBytes: 3 << 20, perSenderBudgetBytes: 2 << 20, timeout: 5))
    for s in 0..<50 {
        let sender = try! PeerID(bytes: [UInt8](repeating: UInt8(s), count: 32))
        let chunk = ObjectChunk(objectID: UInt64(s), totalLength: 1 << 20, chunkSize: 1000, index: 1, data: [UInt8](repeating: 0, count: 1000))
        _ = reassembler.add(chunk: chunk, from: sender, now: Double(s))
        #expect(reassembler.bytesInUse <= 3 << 20)
    }
    #expect(reassembler.evictions >= 47)
}

@Test("chunks inconsistent with their object are dropped")
func inconsistentChunks() {
    var reassembler = Reassembler(settings: .init(maxObjectBytes: 1 << 20, budgetBytes: 8 << 20, perSenderBudgetBytes: 4 << 20, timeout: 5))
    let sender = Fixture.alice.peerID
    let first = ObjectChunk(objectID: 1, totalLength: 2500, chunkSize: 1000, index: 1, data: [UInt8](repeating: 0, count: 1000))
    #expect(reassembler.add(chunk: first, from: sender, now: 0) == .pending)
    let otherLength = ObjectChunk(objectID: 1, totalLength: 3000, chunkSize: 1000, index: 2, data: [UInt8](repeating: 0, count: 1000))
    #expect(reassembler.add(chunk: otherLength, from: sender, now: 0) == .rejected(.objectInconsistent))
    #expect(reassembler.objectsInProgress == 0)
    let tooLarge = ObjectChunk(objectID: 2, totalLength: 2 << 20, chunkSize: 1000, index: 1, data: [UInt8](repeating: 0, count: 1000))
    #expect(reassembler.add(chunk: tooLarge, from: sender, now: 0) == .rejected(.objectTooLarge))
}

@Test("settings outside their valid ranges are reported by field name")
func settingsValidation() {
    var s = WireSettings()
    s.maxDatagramSize = 100
    s.objectTimeout = 0
    let problems = s.problems()
    #expect(problems.contains { $0.hasPrefix("maxDatagramSize must be between 256 and 65507") })
    #expect(problems.contains { $0.hasPrefix("objectTimeout") })
    #expect(WireSettings().problems().isEmpty)
}

@Test("smaller and larger datagram sizes still round-trip, never exceeding the limit", arguments: [256, 512, 9000])
func otherSizes(size: Int) {
    var settings = WireSettings()
    settings.maxDatagramSize = size
    let bytes = (0..<20_000).map { UInt8(truncatingIfNeeded: $0) }
    #expect(transfer(bytes, settings: settings) == bytes)
}
