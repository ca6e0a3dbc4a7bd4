/// Real libsodium, or stand-ins of the same sizes that cost (almost) nothing.
///
/// `.simulated` exists only so the simulator can run thousands of peers: signatures and tags keep
/// their sizes, so datagrams, claims and budgets are byte-for-byte the same length, but they are
/// a cheap 64-bit digest and the signer's id, which anyone can forge. Never use it on a network.
public enum CryptoMode: String, Sendable, CaseIterable {
    case real
    case simulated
}

extension CryptoMode {
    /// The 32-byte digest that binds an object's chunks to its signed manifest: BLAKE2b-256, or
    /// in `.simulated` mode the stand-in digest (the signature vouching for it is a stand-in too).
    public func objectHash(_ bytes: [UInt8]) -> [UInt8] {
        switch self {
        case .real:
            return try! Blake2b.hash(bytes, outputLength: 32)  // fixed output length, cannot fail
        case .simulated:
            var out: [UInt8] = []
            bytes.withUnsafeBytes { data in withUnsafeBytes(of: StandIn.digest(data).littleEndian) { out += $0 } }
            return out + [UInt8](repeating: 0, count: 24)
        }
    }
}

/// The stand-ins behind `CryptoMode.simulated`.
enum StandIn {
    /// A fast 64-bit digest (word-at-a-time multiply–xorshift): catches accidental corruption in a
    /// simulation, nothing more.
    static func digest(_ data: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        var h: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ seed ^ UInt64(data.count)
        var i = 0
        while i + 8 <= data.count {
            h = (h ^ data.loadUnaligned(fromByteOffset: i, as: UInt64.self)) &* 0xBF58_476D_1CE4_E5B9
            h ^= h >> 29
            i += 8
        }
        while i < data.count {
            h = (h ^ UInt64(data[i])) &* 0x94D0_49BB_1331_11EB
            i += 1
        }
        return h ^ (h >> 32)
    }

    /// 64 bytes: the signer's id ‖ digest of the message ‖ zeros.
    static func signature(signer: [UInt8], message: UnsafeRawBufferPointer) -> [UInt8] {
        var out = signer
        withUnsafeBytes(of: digest(message).littleEndian) { out += $0 }
        out += [UInt8](repeating: 0, count: Ed25519.signatureByteCount - out.count)
        return out
    }

    static func verify(signature: [UInt8], signer: [UInt8], message: UnsafeRawBufferPointer) -> Bool {
        signature.count == Ed25519.signatureByteCount && signature == self.signature(signer: signer, message: message)
    }

    /// 16 bytes: digest of the data keyed by the network key id ‖ zeros.
    static func tag(over data: UnsafeRawBufferPointer, keyID: [UInt8]) -> [UInt8] {
        let seed = keyID.reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        var out: [UInt8] = []
        withUnsafeBytes(of: digest(data, seed: seed).littleEndian) { out += $0 }
        return out + [UInt8](repeating: 0, count: XChaCha20Poly1305.tagByteCount - out.count)
    }
}
