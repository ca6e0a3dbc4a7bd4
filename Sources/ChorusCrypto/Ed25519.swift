import CSodium
#if canImport(Glibc)
import Glibc
#endif

/// A peer's identity: an Ed25519 public key. Its text form (64 lower-case hex characters)
/// is what users copy into configuration files.
public struct PeerID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let byteCount = 32
    /// The key's 32 bytes as four big-endian words. Ids are dictionary keys and fields of every
    /// claim and datagram: inline words are copied, hashed and compared without touching the
    /// heap (an array here was a quarter of a large simulation's time in retain and release).
    private let w0, w1, w2, w3: UInt64

    public init(bytes: [UInt8]) throws(CryptoError) {
        try Sodium.check(bytes, is: Self.byteCount, "Ed25519 public key")
        self = bytes.withUnsafeBytes { PeerID(exactly: $0) }
    }

    /// From exactly `byteCount` bytes (a decoder that has checked the length).
    public init(exactly raw: UnsafeRawBufferPointer) {
        precondition(raw.count == Self.byteCount, "a peer id is \(Self.byteCount) bytes")
        func word(_ i: Int) -> UInt64 { UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8 * i, as: UInt64.self)) }
        (w0, w1, w2, w3) = (word(0), word(1), word(2), word(3))
    }

    /// Parses the text form. Returns nil unless it is exactly 64 hexadecimal characters.
    public init?(text: some StringProtocol) {
        guard text.utf8.count == 2 * Self.byteCount, let bytes = Hex.decode(text) else { return nil }
        self = bytes.withUnsafeBytes { PeerID(exactly: $0) }
    }

    /// The 32 bytes (a new array; `withUnsafeBytes` reads them without one).
    public var bytes: [UInt8] { withUnsafeBytes { Array($0) } }

    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let words = (w0.bigEndian, w1.bigEndian, w2.bigEndian, w3.bigEndian)
        return try Swift.withUnsafeBytes(of: words, body)
    }

    /// The first 8 bytes as a big-endian number (spreading timers and positions by id).
    public var leadingWord: UInt64 { w0 }

    public var description: String { Hex.encode(bytes) }
    /// First 8 hex characters, for tables and logs where the full id is too wide.
    public var short: String { String(description.prefix(8)) }

    /// Why a typed id or id prefix does not name one peer.
    public enum PrefixError: Error, Equatable, CustomStringConvertible {
        case malformed(String)
        case tooShort(String)
        case unknown(String)
        case ambiguous(String, [PeerID])

        public var description: String {
            switch self {
            case let .malformed(text): "\"\(text)\" is not a peer id (hexadecimal characters, all 64 or a prefix of at least \(PeerID.minimumPrefix))"
            case let .tooShort(text): "\"\(text)\" is too short: give at least \(PeerID.minimumPrefix) characters of the id"
            case let .unknown(text): "no known peer has an id starting with \"\(text)\""
            case let .ambiguous(text, ids):
                "\"\(text)\" starts \(ids.count) ids (\(ids.prefix(4).map { String($0.description.prefix(text.count + 4)) + "…" }.joined(separator: ", "))): give more characters"
            }
        }
    }

    /// Shortest prefix accepted, as git accepts short commit ids.
    public static let minimumPrefix = 4

    /// The id that `text` names: all 64 characters, or a prefix (at least `minimumPrefix`
    /// characters, any case) that starts exactly one of `known`. A full id is accepted even
    /// when nobody knows it.
    public static func resolve(_ text: String, among known: some Sequence<PeerID>) throws(PrefixError) -> PeerID {
        let typed = text.lowercased()
        if let id = PeerID(text: typed) { return id }
        guard !typed.isEmpty, typed.count < 2 * byteCount, typed.allSatisfy(\.isHexDigit) else { throw .malformed(text) }
        guard typed.count >= minimumPrefix else { throw .tooShort(text) }
        let matches = Set(known.filter { $0.description.hasPrefix(typed) }).sorted()
        switch matches.count {
        case 0: throw .unknown(text)
        case 1: return matches[0]
        default: throw .ambiguous(text, matches)
        }
    }

    /// Byte-wise order: big-endian words compare as their bytes do.
    public static func < (a: PeerID, b: PeerID) -> Bool { (a.w0, a.w1, a.w2, a.w3) < (b.w0, b.w1, b.w2, b.w3) }

    /// Hashes the first 8 bytes as one word. Public keys are uniformly random, and making ids
    /// that share 8 bytes takes ~2⁶⁴ key generations each, so this is no opening for hash
    /// flooding; equality still compares all 32 bytes.
    public func hash(into hasher: inout Hasher) { hasher.combine(w0) }

    public static func == (a: PeerID, b: PeerID) -> Bool { a.w0 == b.w0 && a.w1 == b.w1 && a.w2 == b.w2 && a.w3 == b.w3 }

    /// Verifies a detached Ed25519 signature made by this peer. libsodium rejects
    /// non-canonical (malleable, S ≥ L) signatures and small-order keys.
    public func verify(signature: [UInt8], of message: UnsafeRawBufferPointer) -> Bool {
        signature.withUnsafeBytes { verify(signature: $0, of: message) }
    }

    /// The same with the signature in place (a datagram's is not copied out of it).
    public func verify(signature: UnsafeRawBufferPointer, of message: UnsafeRawBufferPointer) -> Bool {
        guard signature.count == Ed25519.signatureByteCount else { return false }
        Sodium.ensureInitialised()
        return withUnsafeBytes { pk in
            crypto_sign_verify_detached(
                signature.baseAddress!.assumingMemoryBound(to: UInt8.self),
                message.baseAddress?.assumingMemoryBound(to: UInt8.self),
                UInt64(message.count),
                pk.baseAddress!.assumingMemoryBound(to: UInt8.self)) == 0
        }
    }

    public func verify(signature: [UInt8], of message: [UInt8]) -> Bool {
        message.withUnsafeBytes { verify(signature: signature, of: $0) }
    }

    /// Verifies a signature made in `mode` (see `CryptoMode`: simulations only for `.simulated`).
    public func verify(signature: [UInt8], of message: [UInt8], mode: CryptoMode) -> Bool {
        signature.withUnsafeBytes { sig in message.withUnsafeBytes { verify(signature: sig, of: $0, mode: mode) } }
    }

    /// The same over bytes in place (a datagram's signature and signed prefix are not copied).
    public func verify(signature: UnsafeRawBufferPointer, of message: UnsafeRawBufferPointer, mode: CryptoMode) -> Bool {
        switch mode {
        case .real: return verify(signature: signature, of: message)
        case .simulated: return StandIn.verify(signature: signature, signer: self, message: message)
        }
    }
}

public enum Ed25519 {
    public static let seedByteCount = 32
    public static let signatureByteCount = 64
}

/// A peer's secret signing key (Ed25519). Created from a 32-byte seed; the expanded
/// 64-byte secret key lives in wiped-on-release memory.
public struct SigningKey: Sendable {
    private let secret: SecretBytes  // libsodium's 64-byte form: seed ‖ public key
    public let peerID: PeerID
    /// `.simulated` signs with a free stand-in (simulations only; see `CryptoMode`).
    public let mode: CryptoMode

    public init(seed: [UInt8], mode: CryptoMode = .real) throws(CryptoError) {
        self.mode = mode
        try Sodium.check(seed, is: Ed25519.seedByteCount, "Ed25519 seed")
        Sodium.ensureInitialised()
        var pk = [UInt8](repeating: 0, count: PeerID.byteCount)
        var sk = [UInt8](repeating: 0, count: 64)
        let rc = seed.withUnsafeBufferPointer { s in
            crypto_sign_seed_keypair(&pk, &sk, s.baseAddress!)
        }
        guard rc == 0 else { throw .libraryFailure("crypto_sign_seed_keypair") }
        secret = SecretBytes(sk)
        sodium_memzero(&sk, sk.count)
        peerID = try PeerID(bytes: pk)
    }

    /// A fresh random identity.
    public static func generate() -> SigningKey {
        var seed = secureRandomBytes(Ed25519.seedByteCount)
        defer { sodium_memzero(&seed, seed.count) }
        return try! SigningKey(seed: seed)  // the seed has the right length by construction
    }

    /// The 32-byte seed, which is what identity files store.
    public var seed: [UInt8] { Array(secret.copyBytes().prefix(Ed25519.seedByteCount)) }

    public func sign(_ message: UnsafeRawBufferPointer) -> [UInt8] {
        if mode == .simulated { return StandIn.signature(signer: peerID, message: message) }
        var signature = [UInt8](repeating: 0, count: Ed25519.signatureByteCount)
        secret.withUnsafeBytes { sk in
            _ = crypto_sign_detached(
                &signature, nil,
                message.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(message.count),
                sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        return signature
    }

    public func sign(_ message: [UInt8]) -> [UInt8] {
        message.withUnsafeBytes { sign($0) }
    }
}
