/// The secret shared by every member of one Chorus network. Every datagram carries a tag made
/// with a key derived from it, so outsiders are filtered by one cheap check, and networks
/// holding different keys never accept each other's datagrams.
public struct NetworkKey: Sendable {
    public static let byteCount = 32
    public static let keyIDByteCount = 4

    /// Key that seals every datagram (XChaCha20-Poly1305): BLAKE2b-256(key = network key, "chorus/v1/datagram-mac").
    public let datagramKey: SecretBytes
    /// Public 4-byte identifier: BLAKE2b-256(key = network key, "chorus/v1/key-id")[0..<4].
    /// Lets a receiver pick the right key (rotation) and drop foreign traffic before any MAC work.
    public let keyID: [UInt8]
    private let secret: SecretBytes
    /// `.simulated` tags datagrams with a free stand-in (simulations only; see `CryptoMode`).
    public let mode: CryptoMode

    public init(bytes: [UInt8], mode: CryptoMode = .real) throws(CryptoError) {
        self.mode = mode
        try Sodium.check(bytes, is: Self.byteCount, "network key")
        secret = SecretBytes(bytes)
        datagramKey = SecretBytes(try Blake2b.hash(Array("chorus/v1/datagram-mac".utf8), outputLength: 32, key: bytes))
        keyID = Array(try Blake2b.hash(Array("chorus/v1/key-id".utf8), outputLength: 32, key: bytes).prefix(Self.keyIDByteCount))
    }

    public static func generate() -> NetworkKey {
        try! NetworkKey(bytes: secureRandomBytes(byteCount))  // right length by construction
    }

    /// Seals a datagram in place: its first `headerCount` bytes are authenticated, the rest is
    /// encrypted (XChaCha20-Poly1305 with the datagram key); returns the 16-byte tag. In
    /// `.simulated` mode nothing is encrypted and the tag is the stand-in over the whole.
    public func seal(_ datagram: UnsafeMutableRawBufferPointer, headerCount: Int, nonce: UnsafeRawBufferPointer) -> [UInt8] {
        if mode == .simulated { return StandIn.tag(over: UnsafeRawBufferPointer(datagram), keyID: keyID) }
        return XChaCha20Poly1305.sealInPlace(UnsafeMutableRawBufferPointer(rebasing: datagram[headerCount...]),
                                             associatedData: UnsafeRawBufferPointer(rebasing: datagram[..<headerCount]),
                                             nonce: nonce, key: datagramKey)
    }

    /// Checks the tag (the last 16 bytes) of a datagram sealed by `seal` and, if it matches,
    /// decrypts the rest after the header in place. The simulator's stand-in encrypts nothing and
    /// is checked without writing (no copy of a shared array).
    public func open(_ datagram: inout [UInt8], headerCount: Int, nonce: UnsafeRawBufferPointer) -> Bool {
        let end = datagram.count - XChaCha20Poly1305.tagByteCount
        guard end >= headerCount else { return false }
        if mode == .simulated {
            return datagram.withUnsafeBytes { all in
                StandIn.verifyTag(UnsafeRawBufferPointer(rebasing: all[end...]), over: UnsafeRawBufferPointer(rebasing: all[..<end]), keyID: keyID)
            }
        }
        return datagram.withUnsafeMutableBytes { all in
            XChaCha20Poly1305.openInPlace(UnsafeMutableRawBufferPointer(rebasing: all[headerCount..<end]),
                                          associatedData: UnsafeRawBufferPointer(rebasing: all[..<headerCount]),
                                          tag: UnsafeRawBufferPointer(rebasing: all[end...]), nonce: nonce, key: datagramKey)
        }
    }

    /// The raw key, for writing the key file.
    public func copyBytes() -> [UInt8] { secret.copyBytes() }
}

/// The network keys a peer accepts. The first one seals outgoing datagrams; any of them opens
/// incoming ones, which is what a rotation needs (install new → switch → remove old).
public struct NetworkKeyring: Sendable {
    public let keys: [NetworkKey]

    public init(_ keys: [NetworkKey]) {
        precondition(!keys.isEmpty, "a keyring needs at least one key")
        self.keys = keys
    }

    public var primary: NetworkKey { keys[0] }

    public func key(forID id: UnsafeRawBufferPointer) -> NetworkKey? {
        keys.first { key in key.keyID.elementsEqual(id) }
    }
}
