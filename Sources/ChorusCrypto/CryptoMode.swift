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
            var out = [UInt8]()
            out.reserveCapacity(32)
            bytes.withUnsafeBytes { data in withUnsafeBytes(of: StandIn.digest(data).littleEndian) { out += $0 } }
            out += repeatElement(0, count: 24)
            return out
        }
    }
}

/// The stand-ins behind `CryptoMode.simulated`.
enum StandIn {
    /// A fast 64-bit digest (multiply–xorshift over four independent 64-bit lanes, so the
    /// multiplies overlap; every datagram and object is digested, which made the one-lane chain
    /// a noticeable part of a simulation): catches accidental corruption, nothing more.
    static func digest(_ data: UnsafeRawBufferPointer, seed: UInt64 = 0) -> UInt64 {
        let start: UInt64 = 0x9E37_79B9_7F4A_7C15 ^ seed ^ UInt64(data.count)
        var lanes = (start, start &+ 1, start &+ 2, start &+ 3)
        @inline(__always) func round(_ h: UInt64, _ word: UInt64) -> UInt64 {
            let m = (h ^ word) &* 0xBF58_476D_1CE4_E5B9
            return m ^ (m >> 29)
        }
        var i = 0
        while i + 32 <= data.count {
            lanes.0 = round(lanes.0, data.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            lanes.1 = round(lanes.1, data.loadUnaligned(fromByteOffset: i + 8, as: UInt64.self))
            lanes.2 = round(lanes.2, data.loadUnaligned(fromByteOffset: i + 16, as: UInt64.self))
            lanes.3 = round(lanes.3, data.loadUnaligned(fromByteOffset: i + 24, as: UInt64.self))
            i += 32
        }
        var h = round(round(round(lanes.0, lanes.1), lanes.2), lanes.3)
        while i + 8 <= data.count {
            h = round(h, data.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            i += 8
        }
        while i < data.count {
            h = (h ^ UInt64(data[i])) &* 0x94D0_49BB_1331_11EB
            i += 1
        }
        return h ^ (h >> 32)
    }

    /// 64 bytes: the signer's id ‖ digest of the message ‖ zeros.
    static func signature(signer: PeerID, message: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(Ed25519.signatureByteCount)
        signer.withUnsafeBytes { out += $0 }
        withUnsafeBytes(of: digest(message).littleEndian) { out += $0 }
        out += repeatElement(0, count: Ed25519.signatureByteCount - out.count)
        return out
    }

    /// Compares in place (no expected signature is built: every signed datagram is checked).
    static func verify(signature sig: UnsafeRawBufferPointer, signer: PeerID, message: UnsafeRawBufferPointer) -> Bool {
        guard sig.count == Ed25519.signatureByteCount else { return false }
        let idMatches = signer.withUnsafeBytes { sig[0..<PeerID.byteCount].elementsEqual($0) }
        return idMatches
            && sig.loadUnaligned(fromByteOffset: PeerID.byteCount, as: UInt64.self) == digest(message).littleEndian
            && sig[(PeerID.byteCount + 8)...].allSatisfy { $0 == 0 }
    }

    /// 16 bytes: digest of the data keyed by the network key id ‖ zeros.
    static func tag(over data: UnsafeRawBufferPointer, keyID: [UInt8]) -> [UInt8] { tag(over: data, seed: seed(keyID)) }

    /// Compares in place (every datagram opened is checked).
    static func verifyTag(_ tag: UnsafeRawBufferPointer, over data: UnsafeRawBufferPointer, keyID: [UInt8]) -> Bool {
        verifyTag(tag, over: data, seed: seed(keyID))
    }

    /// 16 bytes: digest of the data keyed by `seed` ‖ zeros.
    static func tag(over data: UnsafeRawBufferPointer, seed: UInt64) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(XChaCha20Poly1305.tagByteCount)
        withUnsafeBytes(of: digest(data, seed: seed).littleEndian) { out += $0 }
        out += repeatElement(0, count: XChaCha20Poly1305.tagByteCount - out.count)
        return out
    }

    static func verifyTag(_ tag: UnsafeRawBufferPointer, over data: UnsafeRawBufferPointer, seed: UInt64) -> Bool {
        tag.count == XChaCha20Poly1305.tagByteCount
            && tag.loadUnaligned(as: UInt64.self) == digest(data, seed: seed).littleEndian
            && tag[8...].allSatisfy { $0 == 0 }
    }

    private static func seed(_ keyID: [UInt8]) -> UInt64 {
        var seed: UInt64 = 0
        for byte in keyID { seed = seed << 8 | UInt64(byte) }
        return seed
    }
}
