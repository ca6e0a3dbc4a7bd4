import ChorusCrypto
import ChorusWire
import FuzzSupport

/// libFuzzer target `datagram`: `DatagramCodec.open`, the first code every received datagram meets.
///
/// The input is one whole datagram. It is opened twice: as it came (nearly always refused at the
/// tag, which covers the length, version, kind and key-id checks), then taken as a datagram in clear and sealed with the fixed
/// network key, so the body decoder behind the MAC sees the fuzzer's bytes. A datagram that
/// opens must be the one encoding of what it decoded to: sealing the decoded header and body again
/// gives the same bytes up to the signature (strict decoding, docs/protocol.md).

private let maxObjectBytes = WireSettings().maxObjectBytes
/// Seals the decoded body again; only its length and the bytes before the signature are compared.
private let resealer = try! SigningKey(seed: [UInt8](repeating: 0x5e, count: 32), mode: .simulated)

/// Alice's and Bob's keys for their pair (session keys, `PairedDatagram`), from fixed boot keys.
private let aliceBoot = BootKey(seed: [UInt8](repeating: 0xa1, count: 32)), bobBoot = BootKey(seed: [UInt8](repeating: 0xb0, count: 32))
private let aliceToBob = try! PairCipher(own: aliceBoot, ownID: Fuzz.alice.peerID, theirs: bobBoot.publicKey, theirID: Fuzz.bob.peerID)
private let bobFromAlice = try! PairCipher(own: bobBoot, ownID: Fuzz.bob.peerID, theirs: aliceBoot.publicKey, theirID: Fuzz.alice.peerID)

/// A paired datagram in clear (kind byte with 0x80): sealed with Alice's send key, opened with
/// Bob's receive key; a body that decodes must be the one encoding of what it decoded to.
private func fuzzPaired(_ input: [UInt8]) {
    guard input.count >= PairedDatagram.overhead, case let .success(header) = PairedDatagram.header(of: input) else { return }
    var bytes = input
    let end = bytes.count - DatagramCodec.tagByteCount, headerCount = PairedDatagram.headerByteCount
    let tag = bytes.withUnsafeMutableBytes { all in
        aliceToBob.seal(UnsafeMutableRawBufferPointer(rebasing: all[headerCount..<end]),
                        header: UnsafeRawBufferPointer(rebasing: all[..<headerCount]), counter: header.counter)
    }
    bytes.replaceSubrange(end..., with: tag)
    guard case let .success(body) = PairedDatagram.open(&bytes, kind: header.kind, counter: header.counter, cipher: bobFromAlice,
                                                          maxObjectBytes: maxObjectBytes) else { return }
    var w = ByteWriter()
    DatagramCodec.writeBody(body, to: &w)
    Fuzz.check(w.bytes[...] == input[headerCount..<end], "a paired \(header.kind) decoded to a body that encodes to other bytes")
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzDatagram(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = Array(UnsafeBufferPointer(start: data, count: size))
    if input.count >= 2 && input[1] & PairedDatagram.flag != 0 {
        fuzzPaired(input)
        return 0
    }
    _ = DatagramCodec.open(input, keyring: Fuzz.keyring, maxDatagramSize: DatagramCodec.maximumDatagramSize, maxObjectBytes: maxObjectBytes)
    var bytes = input
    Fuzz.reseal(&bytes)
    guard case let .success(opened) = DatagramCodec.open(
        bytes, keyring: Fuzz.keyring, maxDatagramSize: DatagramCodec.maximumDatagramSize, maxObjectBytes: maxObjectBytes)
    else { return 0 }
    let again = DatagramCodec.seal(header: opened.header, body: opened.body, identity: resealer, key: Fuzz.network)
    let signed = opened.header.kind != .chunk
    let compared = bytes.count - DatagramCodec.tagByteCount - (signed ? DatagramCodec.signatureByteCount : 0)
    Fuzz.check(again.count == bytes.count, "re-sealed \(opened.header.kind) has \(again.count) bytes, the input \(bytes.count)")
    Fuzz.check(again[..<compared] == bytes[..<compared], "re-sealed \(opened.header.kind) differs from the input before the signature")
    if case let .manifest(m) = opened.body {
        Fuzz.check(m.chunkSize > 0, "manifest with 0-byte chunks")  // an empty object (0 chunks) is valid
        Fuzz.check(m.firstChunk.count == min(Int(m.chunkSize), Int(m.totalLength)), "manifest's first chunk has the wrong length")
    }
    if case let .chunk(c) = opened.body {
        Fuzz.check(c.index > 0 && UInt64(c.index) * UInt64(c.chunkSize) < UInt64(c.totalLength), "chunk \(c.index) outside its object")
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    Fuzz.writeSeedsIfAsked {
        // Every kind, as Alice sends them to Bob after the hellos: a message, a one-chunk object
        // (manifest only) and a three-chunk object (manifest and two chunks).
        var (alice, bob, hellos) = Fuzz.connectedPair()
        var seeds: [(String, [UInt8])] = zip(["hello", "hello-reply", "message-flushed"], hellos).map { ($0, $1) }
        // A hello with a certificate (admission), from an endpoint that has one.
        let authority = try! SigningKey(seed: [UInt8](repeating: 0xa0, count: 32))
        var certified = WireEndpoint(identity: Fuzz.alice, keyring: Fuzz.keyring, epoch: 1000,
                                     admission: Admission(authority: authority.peerID, certificate: Certificate(subject: Fuzz.alice.peerID, authority: authority)))
        seeds.append(("hello-certified", certified.hello(now: 0)))
        seeds.append(("message", alice.send(.message(channel: 2, payload: Fuzz.pattern(40)), to: bob.localID, now: 1)[0]))
        seeds.append(("message-empty", alice.send(.message(channel: 4, payload: []), to: bob.localID, now: 1)[0]))
        let small = PreparedObject(channel: 1, bytes: Fuzz.pattern(300), objectID: 7)
        seeds.append(("manifest-whole", alice.send(.object(small), to: bob.localID, now: 1)[0]))
        let large = PreparedObject(channel: 3, bytes: Fuzz.pattern(2500, seed: 9), objectID: 8)
        for (i, d) in alice.send(.object(large), to: bob.localID, now: 1).enumerated() {
            seeds.append((i == 0 ? "manifest-of-3" : "chunk-\(i)-of-3", d))
        }
        var clear = seeds.map { ($0.0, Fuzz.unseal($0.1)) }  // in clear: the input is resealed
        // Paired datagrams (session keys), in clear: a message, a manifest and a chunk.
        func paired(_ kind: DatagramKind, _ body: DatagramBody, counter: UInt64) -> [UInt8] {
            var w = ByteWriter()
            w.u8(DatagramHeader.version)
            w.u8(kind.rawValue | PairedDatagram.flag)
            w.u64(Fuzz.alice.peerID.leadingWord.byteSwapped)
            w.u64(counter)
            DatagramCodec.writeBody(body, to: &w)
            w.raw([UInt8](repeating: 0, count: DatagramCodec.tagByteCount))
            return w.bytes
        }
        clear.append(("paired-message", paired(.message, .message(channel: 2, payload: Fuzz.pattern(40)), counter: 9)))
        clear.append(("paired-manifest", paired(.manifest, .manifest(ObjectManifest(objectID: 5, channel: 1, totalLength: 2000, chunkSize: 1000,
                                                                                     hash: [UInt8](repeating: 7, count: 32), firstChunk: Fuzz.pattern(1000)[...])), counter: 10)))
        clear.append(("paired-chunk", paired(.chunk, .chunk(ObjectChunk(objectID: 5, totalLength: 2000, chunkSize: 1000, index: 1, data: Fuzz.pattern(1000, seed: 3))), counter: 11)))
        return clear
    } valid: { bytes in
        if bytes[1] & PairedDatagram.flag != 0 { return true }  // checked by fuzzPaired's own re-encoding
        var sealed = bytes
        Fuzz.reseal(&sealed)
        if case .success = DatagramCodec.open(sealed, keyring: Fuzz.keyring, maxDatagramSize: DatagramCodec.maximumDatagramSize,
                                              maxObjectBytes: maxObjectBytes) { return true }
        return false
    }
    return 0
}
