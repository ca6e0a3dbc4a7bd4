import ChorusCrypto

/// What a datagram carries. The numbers are on the wire (docs/protocol.md).
public enum DatagramKind: UInt8, Sendable, CaseIterable {
    /// Announces the sender's identity and epoch; answered when the sender did not know ours.
    case hello = 1
    /// One signed application message that fits in a single datagram.
    case message = 2
    /// The signed description of an object (id, channel, length, chunk size, BLAKE2b-256) with
    /// its first chunk, so an object of n chunks takes n datagrams.
    case manifest = 3
    /// One further piece of an object, index 1 or more (not signed itself: bound to the manifest
    /// by the hash).
    case chunk = 4

    /// Kinds whose body ends in an Ed25519 signature by the sender.
    var isSigned: Bool { self != .chunk }
}

/// The fixed 62-byte header in front of every datagram (in clear; the rest is encrypted).
public struct DatagramHeader: Equatable, Sendable {
    public static let byteCount = 62
    /// 3 since bodies are encrypted (2: only authenticated; 1: chunk 0 in a chunk of its own).
    public static let version: UInt8 = 3

    public var kind: DatagramKind
    public var keyID: [UInt8]
    public var sender: PeerID
    /// The sender's boot epoch; strictly larger after every restart.
    public var senderEpoch: UInt64
    /// The recipient's epoch as the sender knows it; 0 (unknown) is allowed only in a hello.
    public var recipientEpoch: UInt64
    /// Per sender epoch, one counter across all recipients (it is part of the MAC nonce).
    public var counter: UInt64

    public init(kind: DatagramKind, keyID: [UInt8], sender: PeerID, senderEpoch: UInt64, recipientEpoch: UInt64, counter: UInt64) {
        self.kind = kind
        self.keyID = keyID
        self.sender = sender
        self.senderEpoch = senderEpoch
        self.recipientEpoch = recipientEpoch
        self.counter = counter
    }

    func write(to w: inout ByteWriter) {
        w.u8(Self.version)
        w.u8(kind.rawValue)
        w.raw(keyID)
        w.peerID(sender)
        w.u64(senderEpoch)
        w.u64(recipientEpoch)
        w.u64(counter)
    }

    /// The 24-byte XChaCha20-Poly1305 nonce: sender id[0..<8] ‖ sender epoch ‖ counter (LE).
    func withNonce<R>(_ body: (UnsafeRawBufferPointer) -> R) -> R {
        // On the stack: every datagram sealed or opened needs one.
        let words = (sender.leadingWord.bigEndian, senderEpoch.littleEndian, counter.littleEndian)
        return withUnsafeBytes(of: words, body)
    }
}

/// What a hello carries with session keys: the boot's key, from which the pair's keys come, and
/// the return-address handshake: a peer sends paired datagrams only to a peer that has echoed a
/// cookie it sent to the address the echo came from (docs/protocol.md, "Session keys").
public struct KeyedHello: Equatable, Sendable {
    /// The sender boot's key-exchange public key (`BootKey`, 32 bytes).
    public var bootKey: [UInt8]
    /// The sender's cookie for the address this hello goes to (`BootKey.cookie(for:)`, 62 bits),
    /// for the recipient to echo; with `KeyedHello.unansweredBit` set in a hello that answers
    /// nothing (sent to an address a member or a configuration gave, whose text may differ from
    /// the source its answer comes from: "host:7000" and "10.0.0.5:7000"); 0 when the sender
    /// had no address for it.
    public var cookie: UInt64
    /// The cookie of the hello this one answers (0: none).
    public var echo: UInt64
    /// The sender has seen the recipient echo one of its cookies from the address this hello
    /// goes to (in an answer: the datagram's source): the recipient need not prove it again.
    public var proven: Bool

    public init(bootKey: [UInt8], cookie: UInt64, echo: UInt64 = 0, proven: Bool = false) {
        precondition(cookie >> 63 == 0 && echo >> 63 == 0, "cookies are 63 bits")
        self.bootKey = bootKey
        self.cookie = cookie
        self.echo = echo
        self.proven = proven
    }

    /// key (32) ‖ cookie (u64) ‖ echo (u64, top bit: `proven`).
    public static let byteCount = 48
    static let provenBit: UInt64 = 1 << 63
    /// Set in the cookie of a hello that answers nothing: an echo of it that does not match
    /// (the address it went to was a host name) is answered at once with a cookie for the
    /// source, without which two peers would retry the same mismatch forever.
    public static let unansweredBit: UInt64 = 1 << 62
}

/// The decoded body of a datagram.
public enum DatagramBody: Equatable, Sendable {
    case hello
    /// A hello with the sender boot's key-exchange key and return-address handshake
    /// (`KeyedHello`, with session keys) and its certificate from the network authority
    /// (`Admission`), each when it has one; body: keyed part (48) ‖ certificate (96), so its
    /// length (0, 48, 96 or 144) says which. Decoding gives `.hello` for an empty body.
    case helloWith(keyed: KeyedHello?, certificate: Certificate?)
    case message(channel: UInt8, payload: [UInt8])
    case manifest(ObjectManifest)
    case chunk(ObjectChunk)
}

public struct ObjectManifest: Equatable, Sendable {
    /// The fields before the first chunk's data.
    public static let byteCount = 8 + 1 + 4 + 2 + 32
    public var objectID: UInt64
    public var channel: UInt8
    public var totalLength: UInt32
    public var chunkSize: UInt16
    public var hash: [UInt8]  // BLAKE2b-256 of the whole object
    /// Chunk 0: exactly `min(chunkSize, totalLength)` bytes. Carrying it here saves a datagram per
    /// object (a quarter of all datagrams for a 2.6 KB parameter vector) and makes an object that
    /// fits one chunk a single datagram. A received one is a slice of its datagram.
    public var firstChunk: ArraySlice<UInt8>

    public init(objectID: UInt64, channel: UInt8, totalLength: UInt32, chunkSize: UInt16, hash: [UInt8],
                firstChunk: ArraySlice<UInt8> = []) {
        self.objectID = objectID
        self.channel = channel
        self.totalLength = totalLength
        self.chunkSize = chunkSize
        self.hash = hash
        self.firstChunk = firstChunk
    }

    public var chunkCount: Int { chunkSize == 0 ? 0 : (Int(totalLength) + Int(chunkSize) - 1) / Int(chunkSize) }
}

public struct ObjectChunk: Equatable, Sendable {
    public static let headerByteCount = 8 + 4 + 2 + 4
    public var objectID: UInt64
    public var totalLength: UInt32
    public var chunkSize: UInt16
    public var index: UInt32
    /// The piece itself. A received chunk's is a slice of its datagram: it goes straight into the
    /// reassembly buffer, so copying it into an array of its own first (a kilobyte allocated and
    /// freed per chunk) is not needed.
    public var bytes: ArraySlice<UInt8>
    public var data: [UInt8] {
        get { Array(bytes) }
        set { bytes = newValue[...] }
    }

    public init(objectID: UInt64, totalLength: UInt32, chunkSize: UInt16, index: UInt32, data: [UInt8]) {
        self.init(objectID: objectID, totalLength: totalLength, chunkSize: chunkSize, index: index, bytes: data[...])
    }

    public init(objectID: UInt64, totalLength: UInt32, chunkSize: UInt16, index: UInt32, bytes: ArraySlice<UInt8>) {
        self.objectID = objectID
        self.totalLength = totalLength
        self.chunkSize = chunkSize
        self.index = index
        self.bytes = bytes
    }

    /// The only valid data length for this index: full chunks, then the remainder (index 0 is the
    /// manifest's `firstChunk`; a chunk datagram carries index 1 or more).
    static func expectedLength(totalLength: UInt32, chunkSize: UInt16, index: UInt32) -> Int? {
        guard chunkSize > 0 else { return nil }
        let start = UInt64(index) * UInt64(chunkSize)
        guard start < UInt64(totalLength) else { return nil }
        return Int(min(UInt64(chunkSize), UInt64(totalLength) - start))
    }
}

/// A datagram that passed the tag check and strict decoding. Its signature (for signed kinds)
/// is checked by `WireEndpoint` after the replay check.
public struct OpenedDatagram: Sendable {
    public var header: DatagramHeader
    public var body: DatagramBody
    /// The whole datagram and where a signed kind's signature starts: the signature covers
    /// domain ‖ bytes[..<signatureStart], read in place only if the replay check passes.
    var bytes: [UInt8]
    var signatureStart: Int
    /// The mode of the network key that opened it: signatures are checked the same way.
    var mode: CryptoMode = .real

    func signatureVerifies() -> Bool {
        let end = signatureStart + DatagramCodec.signatureByteCount
        guard header.kind.isSigned, signatureStart >= 0, end <= bytes.count else { return false }
        return bytes.withUnsafeBytes { all in
            DatagramCodec.withSignedBytes(UnsafeRawBufferPointer(rebasing: all[..<signatureStart])) { signed in
                header.sender.verify(signature: UnsafeRawBufferPointer(rebasing: all[signatureStart..<end]), of: signed, mode: mode)
            }
        }
    }
}

/// Why a datagram was dropped. Every drop is counted under one of these; none is answered.
public enum WireRejection: String, Error, Sendable, CaseIterable, Comparable {
    case tooShort, tooLong, unsupportedVersion, unknownKind, unknownNetwork, badTag, malformedBody
    case reflected, staleRecipientEpoch, staleSenderEpoch, noSession, sessionsRateLimited
    /// One source address opened its share of new sessions (`newSessionsPerSourcePerSecond`).
    case sourceRateLimited
    case replayed, tooOld, counterInvalid, badSignature
    /// Admission (`Admission`): a sender whose certificate this peer has not seen (answered with
    /// a hello, so that a certified peer shows it), or one the network authority revoked.
    case notAdmitted, revoked
    /// Session keys: a hello from an identity whose 8-byte short id another identity holds here.
    case shortIDTaken
    /// Session keys: a paired datagram held until its sender proved its address, dropped
    /// because the proof did not come in time, came from another source, or too many waited.
    case unproven
    case objectInconsistent, objectTooLarge, objectOverBudget, objectHashMismatch, objectTimedOut
    case pendingOverflow

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// Encoding and strict decoding of datagrams (layout in docs/protocol.md).
public enum DatagramCodec {
    public static let tagByteCount = XChaCha20Poly1305.tagByteCount
    public static let signatureByteCount = Ed25519.signatureByteCount
    /// Prepended to the signed bytes so a datagram signature can never be mistaken for any other
    /// statement a peer signs.
    public static let signatureDomain = Array("chorus/v1/datagram".utf8)
    public static let minimumDatagramSize = 256
    public static let maximumDatagramSize = 65507

    /// Builds a complete datagram: header ‖ encrypted(body [‖ signature]) ‖ tag.
    public static func seal(header: DatagramHeader, body: DatagramBody, identity: SigningKey?, key: NetworkKey) -> [UInt8] {
        var w = ByteWriter(capacity: DatagramHeader.byteCount + bodyCapacity(body) + signatureByteCount + tagByteCount)
        header.write(to: &w)
        writeBody(body, to: &w)
        if header.kind.isSigned {
            guard let identity else { preconditionFailure("signed datagram kinds need an identity") }
            let signature = w.bytes.withUnsafeBytes { prefix in withSignedBytes(prefix) { identity.sign($0) } }
            w.raw(signature)
        }
        appendSeal(to: &w, header: header, key: key)
        return w.bytes
    }

    /// The body's bytes, as every kind lays them out (docs/protocol.md, "Bodies").
    public static func writeBody(_ body: DatagramBody, to w: inout ByteWriter) {
        switch body {
        case .hello:
            break
        case let .helloWith(keyed, certificate):
            if let keyed {
                w.raw(keyed.bootKey)
                w.u64(keyed.cookie)
                w.u64(keyed.echo | (keyed.proven ? KeyedHello.provenBit : 0))
            }
            if let certificate { w.raw(certificate.bytes) }
        case let .message(channel, payload):
            w.u8(channel)
            w.raw(payload)
        case let .manifest(m):
            w.u64(m.objectID)
            w.u8(m.channel)
            w.u32(m.totalLength)
            w.u16(m.chunkSize)
            w.raw(m.hash)
            w.raw(m.firstChunk)
        case let .chunk(c):
            writeChunk(to: &w, objectID: c.objectID, totalLength: c.totalLength, chunkSize: c.chunkSize, index: c.index, data: c.bytes)
        }
    }

    /// The same datagram as `seal` with a `.chunk` body, its data read from the object in place
    /// (every chunk of every object sent would otherwise be copied into an array first).
    static func sealChunk(header: DatagramHeader, objectID: UInt64, totalLength: UInt32, chunkSize: UInt16,
                          index: UInt32, data: ArraySlice<UInt8>, key: NetworkKey) -> [UInt8] {
        precondition(header.kind == .chunk, "sealChunk seals chunks")
        var w = ByteWriter(capacity: DatagramHeader.byteCount + ObjectChunk.headerByteCount + data.count + tagByteCount)
        header.write(to: &w)
        writeChunk(to: &w, objectID: objectID, totalLength: totalLength, chunkSize: chunkSize, index: index, data: data)
        appendSeal(to: &w, header: header, key: key)
        return w.bytes
    }

    private static func writeChunk(to w: inout ByteWriter, objectID: UInt64, totalLength: UInt32, chunkSize: UInt16,
                                   index: UInt32, data: ArraySlice<UInt8>) {
        w.u64(objectID)
        w.u32(totalLength)
        w.u16(chunkSize)
        w.u32(index)
        w.raw(data)
    }

    /// Encrypts everything written after the header in place and appends the tag over the whole
    /// (capacity was reserved for it).
    private static func appendSeal(to w: inout ByteWriter, header: DatagramHeader, key: NetworkKey) {
        let tag = w.withUnsafeMutableBytes { data in
            header.withNonce { nonce in
                key.seal(data, headerCount: DatagramHeader.byteCount, nonce: nonce)
            }
        }
        w.raw(tag)
    }

    /// Calls `body` with domain ‖ `prefix` in a temporary buffer (on the stack when small): every
    /// signed datagram is signed and checked over these bytes, and an array each time showed.
    static func withSignedBytes<R>(_ prefix: UnsafeRawBufferPointer, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        let domainCount = signatureDomain.count
        return withUnsafeTemporaryAllocation(byteCount: domainCount + prefix.count, alignment: 8) { buffer in
            signatureDomain.withUnsafeBytes { buffer.baseAddress!.copyMemory(from: $0.baseAddress!, byteCount: domainCount) }
            if prefix.count > 0 { (buffer.baseAddress! + domainCount).copyMemory(from: prefix.baseAddress!, byteCount: prefix.count) }
            return body(UnsafeRawBufferPointer(buffer))
        }
    }

    private static func bodyCapacity(_ body: DatagramBody) -> Int {
        switch body {
        case .hello: return 0
        case let .helloWith(keyed, certificate): return (keyed == nil ? 0 : KeyedHello.byteCount) + (certificate == nil ? 0 : Certificate.byteCount)
        case let .message(_, payload): return payload.count + 1
        case let .manifest(m): return ObjectManifest.byteCount + m.firstChunk.count
        case let .chunk(c): return c.bytes.count + ObjectChunk.headerByteCount
        }
    }

    /// Checks length, version, kind, key id and tag (in that order, cheapest first), decrypts,
    /// then decodes the body strictly: exact lengths, no trailing bytes.
    public static func open(_ sealed: [UInt8], keyring: NetworkKeyring, maxDatagramSize: Int, maxObjectBytes: Int) -> Result<OpenedDatagram, WireRejection> {
        var bytes = sealed
        let minimum = DatagramHeader.byteCount + tagByteCount
        guard bytes.count >= minimum else { return .failure(.tooShort) }
        guard bytes.count <= maxDatagramSize else { return .failure(.tooLong) }
        guard bytes[0] == DatagramHeader.version else { return .failure(.unsupportedVersion) }
        guard let kind = DatagramKind(rawValue: bytes[1]) else { return .failure(.unknownKind) }
        let key = bytes.withUnsafeBytes { keyring.key(forID: UnsafeRawBufferPointer(rebasing: $0[2..<6])) }
        guard let key else { return .failure(.unknownNetwork) }

        var r = ByteReader(bytes, from: 0, to: bytes.count - tagByteCount)
        let header: DatagramHeader
        do {
            _ = try r.u8()
            _ = try r.u8()
            _ = try r.u32()  // the key id, equal to the key's (which the header shares, no copy)
            let sender = try r.peerID()
            header = DatagramHeader(
                kind: kind, keyID: key.keyID, sender: sender,
                senderEpoch: try r.u64(), recipientEpoch: try r.u64(), counter: try r.u64())
        } catch {
            return .failure(.tooShort)
        }
        let tagOK = header.withNonce { nonce in key.open(&bytes, headerCount: DatagramHeader.byteCount, nonce: nonce) }
        guard tagOK else { return .failure(.badTag) }

        // From here on the datagram is from a network member; decode strictly.
        let signatureStart = bytes.count - tagByteCount - (kind.isSigned ? signatureByteCount : 0)
        guard signatureStart >= DatagramHeader.byteCount else { return .failure(.malformedBody) }
        var body = ByteReader(bytes, from: DatagramHeader.byteCount, to: signatureStart)
        let decoded: DatagramBody
        switch decodeBody(kind, &body, maxObjectBytes: maxObjectBytes) {
        case let .failure(reason): return .failure(reason)
        case let .success(value): decoded = value
        }
        return .success(OpenedDatagram(header: header, body: decoded, bytes: bytes, signatureStart: signatureStart, mode: key.mode))
    }

    /// Decodes a body of `kind` strictly (exact lengths, no trailing bytes): the bytes between a
    /// header and its signature or tag, in clear.
    static func decodeBody(_ kind: DatagramKind, _ body: inout ByteReader, maxObjectBytes: Int) -> Result<DatagramBody, WireRejection> {
        let decoded: DatagramBody
            do {
                switch kind {
                case .hello:
                    // Empty, a keyed part, a certificate, or both: the length says which.
                    let keyedCount = KeyedHello.byteCount, certificateCount = Certificate.byteCount
                    switch body.remaining {
                    case 0: decoded = .hello
                    case keyedCount, certificateCount, keyedCount + certificateCount:
                        var keyed: KeyedHello?
                        if body.remaining != certificateCount {
                            let bootKey = try body.raw(BootKey.publicKeyByteCount)
                            let cookie = try body.u64(), echo = try body.u64()
                            guard cookie >> 63 == 0 else { return .failure(.malformedBody) }
                            keyed = KeyedHello(bootKey: bootKey, cookie: cookie, echo: echo & ~KeyedHello.provenBit,
                                               proven: echo & KeyedHello.provenBit != 0)
                        }
                        let certificate = body.remaining == 0 ? nil : Certificate(bytes: try body.raw(certificateCount))
                        decoded = .helloWith(keyed: keyed, certificate: certificate)
                    default: return .failure(.malformedBody)
                    }
                case .message:
                    let channel = try body.u8()
                    decoded = .message(channel: channel, payload: try body.raw(body.remaining))
                case .manifest:
                    var m = ObjectManifest(
                        objectID: try body.u64(), channel: try body.u8(), totalLength: try body.u32(),
                        chunkSize: try body.u16(), hash: try body.raw(32))
                    guard m.chunkSize > 0 else { return .failure(.malformedBody) }
                    guard Int(m.totalLength) <= maxObjectBytes else { return .failure(.objectTooLarge) }
                    let first = ObjectChunk.expectedLength(totalLength: m.totalLength, chunkSize: m.chunkSize, index: 0) ?? 0
                    guard first == body.remaining else { return .failure(.malformedBody) }
                    m.firstChunk = try body.slice(first)
                    decoded = .manifest(m)
                case .chunk:
                    let objectID = try body.u64()
                    let total = try body.u32()
                    let chunkSize = try body.u16()
                    let index = try body.u32()
                    guard Int(total) <= maxObjectBytes else { return .failure(.objectTooLarge) }
                    guard index > 0,  // chunk 0 travels in the manifest
                          let expected = ObjectChunk.expectedLength(totalLength: total, chunkSize: chunkSize, index: index),
                          expected == body.remaining
                    else { return .failure(.malformedBody) }
                    decoded = .chunk(ObjectChunk(objectID: objectID, totalLength: total, chunkSize: chunkSize, index: index, bytes: try body.slice(expected)))
                }
                try body.finish()
            } catch {
                return .failure(.malformedBody)
            }
        return .success(decoded)
    }
}

/// Datagrams sealed with the keys of a pair of boots (`WireSettings.sessionKeys`; `PairCipher`):
/// what a peer sends a peer whose hello brought its boot key, instead of a network-sealed,
/// signed datagram. Only the two boots hold the keys, so nobody else, insider or not, reads,
/// forges or replays into the pair, and the header needs neither epochs nor a signature:
///
///     version u8 ‖ kind | 0x80 ‖ sender id[0..8) ‖ counter u64   (18 bytes, in clear, associated data)
///     ‖ ChaCha20-Poly1305(body) ‖ tag (16)
///
/// 34 bytes of header and tag; kinds 2 (message), 3 (manifest), 4 (chunk) with their usual bodies.
public enum PairedDatagram {
    public static let flag: UInt8 = 0x80
    public static let headerByteCount = 18
    public static let overhead = headerByteCount + DatagramCodec.tagByteCount

    /// Header and encrypted body (written by `body`) and tag.
    static func seal(kind: DatagramKind, sender: PeerID, counter: UInt64, cipher: PairCipher, capacity: Int,
                     body: (inout ByteWriter) -> Void) -> [UInt8] {
        var w = ByteWriter(capacity: overhead + capacity)
        w.u8(DatagramHeader.version)
        w.u8(kind.rawValue | flag)
        w.u64(sender.leadingWord.byteSwapped)  // the id's first 8 bytes, as they stand in it
        w.u64(counter)
        body(&w)
        let tag = w.withUnsafeMutableBytes { all in
            cipher.seal(UnsafeMutableRawBufferPointer(rebasing: all[headerByteCount...]),
                        header: UnsafeRawBufferPointer(rebasing: all[..<headerByteCount]), counter: counter)
        }
        w.raw(tag)
        return w.bytes
    }

    /// The clear header: kind, the sender's short id (`PeerID.leadingWord`) and the counter.
    public static func header(of bytes: [UInt8]) -> Result<(kind: DatagramKind, shortID: UInt64, counter: UInt64), WireRejection> {
        guard bytes.count >= overhead else { return .failure(.tooShort) }
        guard bytes[0] == DatagramHeader.version else { return .failure(.unsupportedVersion) }
        guard let kind = DatagramKind(rawValue: bytes[1] & ~flag), kind != .hello else { return .failure(.unknownKind) }
        var r = ByteReader(bytes, from: 2, to: headerByteCount)
        let shortID = (try? r.u64())!.byteSwapped, counter = (try? r.u64())!  // 16 bytes are there
        return .success((kind, shortID, counter))
    }

    /// Checks the tag and decrypts in place, then decodes the body strictly.
    public static func open(_ bytes: inout [UInt8], kind: DatagramKind, counter: UInt64, cipher: PairCipher,
                            maxObjectBytes: Int) -> Result<DatagramBody, WireRejection> {
        let end = bytes.count - DatagramCodec.tagByteCount
        let opened = bytes.withUnsafeMutableBytes { all in
            cipher.open(UnsafeMutableRawBufferPointer(rebasing: all[headerByteCount..<end]),
                        header: UnsafeRawBufferPointer(rebasing: all[..<headerByteCount]), counter: counter,
                        tag: UnsafeRawBufferPointer(rebasing: all[end...]))
        }
        guard opened else { return .failure(.badTag) }
        var body = ByteReader(bytes, from: headerByteCount, to: end)
        return DatagramCodec.decodeBody(kind, &body, maxObjectBytes: maxObjectBytes)
    }
}
