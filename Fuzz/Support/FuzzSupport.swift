import ChorusCrypto
import ChorusWire
#if canImport(Glibc)
import Glibc
#endif

/// What every libFuzzer target shares (scripts/fuzz.sh builds them; docs/security.md, "Fuzzing
/// with libFuzzer"): fixed keys, re-tagging and re-signing of fuzzed datagrams so the fuzzer gets
/// past the MAC to the parsers behind it, records for targets that take a sequence of inputs, and
/// the seed-writing mode.
public enum Fuzz {
    /// The network key every target uses (the same bytes as Tests/ChorusWireTests/Fixtures.swift).
    public static let networkKeyBytes = (0..<32).map { UInt8($0) }
    public static let network = try! NetworkKey(bytes: networkKeyBytes)
    public static let keyring = NetworkKeyring([network])
    /// Fixed identities: a datagram whose header names one of them as sender is re-signed with it.
    public static let alice = try! SigningKey(seed: [UInt8](repeating: 0x0a, count: 32))
    public static let bob = try! SigningKey(seed: [UInt8](repeating: 0x0b, count: 32))

    // MARK: Datagrams

    /// Header layout (docs/protocol.md): version u8 ‖ kind u8 ‖ key id (4) ‖ sender (32) ‖
    /// sender epoch u64 ‖ recipient epoch u64 ‖ counter u64.
    public static let headerByteCount = DatagramHeader.byteCount
    static let tagByteCount = DatagramCodec.tagByteCount
    static let signatureByteCount = DatagramCodec.signatureByteCount

    /// The 24-byte nonce of a datagram's tag: sender id[0..<8] ‖ sender epoch ‖ counter, all as
    /// they stand in the header (DatagramHeader.withNonce, rebuilt from the public layout).
    static func nonce(of bytes: [UInt8]) -> [UInt8] {
        Array(bytes[6..<14]) + Array(bytes[38..<46]) + Array(bytes[54..<62])
    }

    /// Takes the input as a datagram in clear (header ‖ body ‖ signature ‖ 16 bytes for the tag)
    /// and seals it with `key` as `DatagramCodec.seal` does: the body encrypted in place, the last
    /// 16 bytes the tag. `DatagramCodec.open` then decrypts it back to the fuzzer's bytes and
    /// decodes them: the fuzzer cannot forge a tag by itself. Shorter inputs than a header and a
    /// tag are left alone (they are refused before the tag).
    public static func reseal(_ bytes: inout [UInt8], key: NetworkKey = network) {
        guard bytes.count >= headerByteCount + tagByteCount else { return }
        let end = bytes.count - tagByteCount
        let nonce = nonce(of: bytes)
        let tag = bytes.withUnsafeMutableBytes { all in
            nonce.withUnsafeBytes { key.seal(UnsafeMutableRawBufferPointer(rebasing: all[..<end]), headerCount: headerByteCount, nonce: $0) }
        }
        bytes.replaceSubrange(end..., with: tag)
    }

    /// A sealed datagram in clear, as `reseal` takes it (the tag bytes are left as they were):
    /// seeds are written this way, so that the fuzzer mutates bodies, not ciphertext.
    public static func unseal(_ sealed: [UInt8], key: NetworkKey = network) -> [UInt8] {
        var bytes = sealed
        let nonce = nonce(of: bytes)
        let opened = nonce.withUnsafeBytes { key.open(&bytes, headerCount: headerByteCount, nonce: $0) }
        precondition(opened, "unseal: a datagram that does not open under the fuzz network key")
        return bytes
    }

    /// Takes the input as a paired datagram in clear (`PairedDatagram`: 18-byte header ‖ body ‖
    /// 16 bytes for the tag) and seals it with `cipher` under the counter its header names, as
    /// `PairedDatagram.seal` does. Shorter inputs than a header and a tag are left alone.
    public static func resealPaired(_ bytes: inout [UInt8], cipher: PairCipher) {
        let headerCount = PairedDatagram.headerByteCount
        guard bytes.count >= PairedDatagram.overhead else { return }
        let end = bytes.count - tagByteCount
        let counter = bytes.withUnsafeBytes { $0.loadUnaligned(fromByteOffset: headerCount - 8, as: UInt64.self).littleEndian }
        let tag = bytes.withUnsafeMutableBytes { all in
            cipher.seal(UnsafeMutableRawBufferPointer(rebasing: all[headerCount..<end]),
                        header: UnsafeRawBufferPointer(rebasing: all[..<headerCount]), counter: counter)
        }
        bytes.replaceSubrange(end..., with: tag)
    }

    /// For a signed kind (hello, message, manifest) whose header names one of `identities` as
    /// sender: overwrites the 64 bytes before the tag with that identity's signature over
    /// domain ‖ everything before it, as `DatagramCodec.seal` makes it. Then `reseal`.
    public static func resignAndReseal(_ bytes: inout [UInt8], identities: [SigningKey], key: NetworkKey = network) {
        let minimum = headerByteCount + signatureByteCount + tagByteCount
        if bytes.count >= minimum, (1...3).contains(bytes[1]) {
            let sender = bytes.withUnsafeBytes { PeerID(exactly: UnsafeRawBufferPointer(rebasing: $0[6..<38])) }
            if let identity = identities.first(where: { $0.peerID == sender }) {
                let start = bytes.count - tagByteCount - signatureByteCount
                let signature = identity.sign(DatagramCodec.signatureDomain + bytes[..<start])
                bytes.replaceSubrange(start..<start + signatureByteCount, with: signature)
            }
        }
        reseal(&bytes, key: key)
    }

    // MARK: Records

    /// Splits an input into records: u16 length (little-endian) ‖ that many bytes, repeated; a
    /// record whose length runs past the end takes what is left. At most `limit` records.
    public static func records(_ data: UnsafeRawBufferPointer, limit: Int = 64) -> [[UInt8]] {
        var out: [[UInt8]] = []
        var i = 0
        while i + 2 <= data.count && out.count < limit {
            let length = Int(data[i]) | Int(data[i + 1]) << 8
            i += 2
            let end = min(data.count, i + length)
            out.append(Array(data[i..<end]))
            i = end
        }
        return out
    }

    /// The inverse of `records` (for seeds).
    public static func joinRecords(_ records: [[UInt8]]) -> [UInt8] {
        var out: [UInt8] = []
        for r in records {
            precondition(r.count <= Int(UInt16.max))
            out += [UInt8(r.count & 0xff), UInt8(r.count >> 8)] + r
        }
        return out
    }

    // MARK: Failing loudly

    /// A broken invariant: abort, so libFuzzer keeps the input (a plain `fatalError` would do
    /// too, but names no input; this prints what was expected first).
    public static func check(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                             file: StaticString = #fileID, line: UInt = #line) {
        if !condition() {
            complain("fuzz invariant broken at \(file):\(line): \(message())")
            abort()
        }
    }

    /// A line on standard error (unbuffered, so it is there before an abort).
    public static func complain(_ line: String) {
        let text = line + "\n"
        _ = text.withCString { write(2, $0, strlen($0)) }
    }

    // MARK: Seeds

    /// When CHORUS_FUZZ_WRITE_SEEDS names a directory, writes `seeds` there (one file each) and
    /// exits; scripts/fuzz.sh does so before every run, so the seeds always match the code. They
    /// are made with the public APIs and the fixed keys above, and each must pass `valid` (the
    /// target's own view of a valid input, e.g. that it opens or decodes): a seed corpus that the
    /// target refuses would start the fuzzer in front of the door. Call from `LLVMFuzzerInitialize`.
    public static func writeSeedsIfAsked(_ seeds: () -> [(name: String, bytes: [UInt8])], valid: ([UInt8]) -> Bool = { _ in true }) {
        guard let directory = getenv("CHORUS_FUZZ_WRITE_SEEDS").map({ String(cString: $0) }) else { return }
        var path = directory.hasPrefix("/") ? "" : "."
        for part in directory.split(separator: "/") {  // mkdir -p
            path += "/" + part
            mkdir(path, 0o755)
        }
        let all = seeds()
        for seed in all where !valid(seed.bytes) {
            complain("seed \(seed.name) is not a valid input for this target")
            exit(1)
        }
        for seed in all {
            let path = directory + "/" + seed.name
            guard let file = fopen(path, "wb") else {
                complain("cannot write \(path)")
                exit(1)
            }
            _ = seed.bytes.withUnsafeBytes { fwrite($0.baseAddress, 1, $0.count, file) }
            fclose(file)
        }
        print("wrote \(all.count) seeds to \(directory)")
        exit(0)
    }
}

extension Fuzz {
    /// Settings for the format under the network key, signed (`session_keys = false`): what the
    /// targets that take datagrams in clear and `reseal` them speak (paired datagrams have seeds
    /// and re-sealing of their own).
    public static var networkSealed: WireSettings {
        var settings = WireSettings()
        settings.sessionKeys = false
        return settings
    }

    /// Alice (epoch 100) and Bob (epoch 200) after a completed hello exchange, as
    /// Tests/ChorusWireTests/Fixtures.swift builds them: what they then send each other is valid.
    public static func connectedPair(settings: WireSettings = networkSealed) -> (alice: WireEndpoint, bob: WireEndpoint, hellos: [[UInt8]]) {
        var a = WireEndpoint(identity: alice, keyring: keyring, epoch: 100, settings: settings)
        var b = WireEndpoint(identity: bob, keyring: keyring, epoch: 200, settings: settings)
        let hello = a.send(.message(channel: 0, payload: []), to: b.localID, now: 0)
        let atBob = b.receive(hello[0], now: 0)
        let atAlice = a.receive(atBob.replies[0], now: 0)
        for datagram in atAlice.flushed { _ = b.receive(datagram, now: 0) }
        return (a, b, hello + atBob.replies + atAlice.flushed)
    }

    /// Deterministic bytes for seed payloads.
    public static func pattern(_ count: Int, seed: UInt8 = 1) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) }
    }
}

/// A fixed-seed generator (SplitMix64): the targets must do the same for the same input.
public struct FuzzRandom: RandomNumberGenerator {
    var state: UInt64
    public init(seed: UInt64) { state = seed }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
