import CSodium
#if canImport(Glibc)
import Glibc
#endif

/// A peer's identity: an Ed25519 public key. Its text form (64 lower-case hex characters)
/// is what users copy into configuration files.
public struct PeerID: Hashable, Comparable, Sendable, CustomStringConvertible {
    public static let byteCount = 32
    public let bytes: [UInt8]

    public init(bytes: [UInt8]) throws(CryptoError) {
        try Sodium.check(bytes, is: Self.byteCount, "Ed25519 public key")
        self.bytes = bytes
    }

    /// Parses the text form. Returns nil unless it is exactly 64 hexadecimal characters.
    public init?(text: some StringProtocol) {
        guard text.utf8.count == 2 * Self.byteCount, let bytes = Hex.decode(text) else { return nil }
        self.bytes = bytes
    }

    public var description: String { Hex.encode(bytes) }
    /// First 8 hex characters, for tables and logs where the full id is too wide.
    public var short: String { String(description.prefix(8)) }

    public static func < (a: PeerID, b: PeerID) -> Bool { a.bytes.lexicographicallyPrecedes(b.bytes) }

    /// Hashes the first 8 bytes as one word: peer ids are dictionary keys on every datagram's hot
    /// path (the synthesised byte-by-byte hashing was once the largest cost of receiving). Public
    /// keys are uniformly random, and making ids that share 8 bytes takes ~2⁶⁴ key generations
    /// each, so this is no opening for hash flooding; equality still compares all 32 bytes.
    public func hash(into hasher: inout Hasher) {
        hasher.combine(bytes.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
    }

    public static func == (a: PeerID, b: PeerID) -> Bool {
        a.bytes.withUnsafeBytes { pa in b.bytes.withUnsafeBytes { pb in memcmp(pa.baseAddress!, pb.baseAddress!, byteCount) == 0 } }
    }

    /// Verifies a detached Ed25519 signature made by this peer. libsodium rejects
    /// non-canonical (malleable, S ≥ L) signatures and small-order keys.
    public func verify(signature: [UInt8], of message: UnsafeRawBufferPointer) -> Bool {
        guard signature.count == Ed25519.signatureByteCount else { return false }
        Sodium.ensureInitialised()
        return signature.withUnsafeBufferPointer { sig in
            bytes.withUnsafeBufferPointer { pk in
                crypto_sign_verify_detached(
                    sig.baseAddress!,
                    message.baseAddress?.assumingMemoryBound(to: UInt8.self),
                    UInt64(message.count),
                    pk.baseAddress!) == 0
            }
        }
    }

    public func verify(signature: [UInt8], of message: [UInt8]) -> Bool {
        message.withUnsafeBytes { verify(signature: signature, of: $0) }
    }

    /// Verifies a signature made in `mode` (see `CryptoMode`: simulations only for `.simulated`).
    public func verify(signature: [UInt8], of message: [UInt8], mode: CryptoMode) -> Bool {
        switch mode {
        case .real: return verify(signature: signature, of: message)
        case .simulated: return message.withUnsafeBytes { StandIn.verify(signature: signature, signer: bytes, message: $0) }
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
        if mode == .simulated { return StandIn.signature(signer: peerID.bytes, message: message) }
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
