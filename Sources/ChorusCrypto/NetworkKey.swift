/// The secret shared by every member of one Chorus network. Every datagram carries a tag made
/// with a key derived from it, so outsiders are filtered by one cheap check, and networks
/// holding different keys never accept each other's datagrams.
public struct NetworkKey: Sendable {
    public static let byteCount = 32
    public static let keyIDByteCount = 4

    /// Key for the per-datagram XChaCha20-Poly1305 tag: BLAKE2b-256(key = network key, "chorus/v1/datagram-mac").
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

    /// The 16-byte tag of one datagram (XChaCha20-Poly1305 over `data` with the datagram key).
    public func tag(over data: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer) -> [UInt8] {
        if mode == .simulated { return StandIn.tag(over: data, keyID: keyID) }
        return try! XChaCha20Poly1305.tag(over: data, nonce: nonce, key: datagramKey)  // lengths fixed by the caller
    }

    public func verifyTag(_ tag: UnsafeRawBufferPointer, over data: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer) -> Bool {
        if mode == .simulated { return StandIn.verifyTag(tag, over: data, keyID: keyID) }
        return XChaCha20Poly1305.verifyTag(tag, over: data, nonce: nonce, key: datagramKey)
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
