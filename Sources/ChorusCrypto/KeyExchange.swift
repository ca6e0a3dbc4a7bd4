import CSodium

/// An X25519 key pair for one session handshake (libsodium `crypto_kx`). Its public half goes
/// into a handshake signed with the peer's Ed25519 identity; the two sides' pairs give the
/// session's keys (`SessionKeys`). A fresh pair per session gives forward secrecy: a stolen
/// identity key does not open traffic recorded before.
public struct KeyExchangePair: Sendable {
    public static let publicKeyByteCount = 32
    public static let seedByteCount = 32

    public let publicKey: [UInt8]
    let secretKey: SecretBytes

    /// A fresh pair from the system's secure random generator.
    public static func generate() -> KeyExchangePair {
        Sodium.ensureInitialised()
        var pk = [UInt8](repeating: 0, count: publicKeyByteCount)
        var sk = [UInt8](repeating: 0, count: 32)
        precondition(crypto_kx_keypair(&pk, &sk) == 0, "crypto_kx_keypair failed")
        defer { sodium_memzero(&sk, sk.count) }
        return KeyExchangePair(publicKey: pk, secretKey: SecretBytes(sk))
    }

    /// The pair a 32-byte seed determines (`crypto_kx_seed_keypair`): for tests, worked examples
    /// and simulations, whose runs must repeat from a seed.
    public init(seed: [UInt8]) throws(CryptoError) {
        try Sodium.check(seed, is: Self.seedByteCount, "key exchange seed")
        Sodium.ensureInitialised()
        var pk = [UInt8](repeating: 0, count: Self.publicKeyByteCount)
        var sk = [UInt8](repeating: 0, count: 32)
        guard crypto_kx_seed_keypair(&pk, &sk, seed) == 0 else { throw .libraryFailure("crypto_kx_seed_keypair") }
        defer { sodium_memzero(&sk, sk.count) }
        self.init(publicKey: pk, secretKey: SecretBytes(sk))
    }

    private init(publicKey: [UInt8], secretKey: SecretBytes) {
        (self.publicKey, self.secretKey) = (publicKey, secretKey)
    }
}

/// The two keys of one session, one per direction, as libsodium's `crypto_kx` derives them:
///
///     q = X25519(own secret, other public)
///     BLAKE2b-512(q ‖ initiator public ‖ responder public) = initiator's receive ‖ initiator's send
///
/// so the initiator's send key is the responder's receive key and the other way round. A
/// contributory check refuses a low-order public key (q all zero): a peer cannot force a known key.
public struct SessionKeys: Sendable {
    public static let keyByteCount = 32

    public let send: SecretBytes
    public let receive: SecretBytes

    /// The keys of the side that sent the first handshake message (libsodium's "client").
    public static func initiator(_ own: KeyExchangePair, responderPublicKey: [UInt8]) throws(CryptoError) -> SessionKeys {
        try Sodium.check(responderPublicKey, is: KeyExchangePair.publicKeyByteCount, "responder's key exchange public key")
        var rx = [UInt8](repeating: 0, count: keyByteCount), tx = rx
        defer { sodium_memzero(&rx, rx.count); sodium_memzero(&tx, tx.count) }
        let rc = own.secretKey.withUnsafeBytes { sk in
            crypto_kx_client_session_keys(&rx, &tx, own.publicKey, sk.baseAddress!.assumingMemoryBound(to: UInt8.self), responderPublicKey)
        }
        guard rc == 0 else { throw .verificationFailed("responder's key exchange public key (low order)") }
        return SessionKeys(send: SecretBytes(tx), receive: SecretBytes(rx))
    }

    /// The keys of the side that answered (libsodium's "server").
    public static func responder(_ own: KeyExchangePair, initiatorPublicKey: [UInt8]) throws(CryptoError) -> SessionKeys {
        try Sodium.check(initiatorPublicKey, is: KeyExchangePair.publicKeyByteCount, "initiator's key exchange public key")
        var rx = [UInt8](repeating: 0, count: keyByteCount), tx = rx
        defer { sodium_memzero(&rx, rx.count); sodium_memzero(&tx, tx.count) }
        let rc = own.secretKey.withUnsafeBytes { sk in
            crypto_kx_server_session_keys(&rx, &tx, own.publicKey, sk.baseAddress!.assumingMemoryBound(to: UInt8.self), initiatorPublicKey)
        }
        guard rc == 0 else { throw .verificationFailed("initiator's key exchange public key (low order)") }
        return SessionKeys(send: SecretBytes(tx), receive: SecretBytes(rx))
    }
}

/// ChaCha20-Poly1305 as in RFC 8439 (libsodium `crypto_aead_chacha20poly1305_ietf_*`), in place
/// and with a detached tag, for datagrams sealed under a session key: the 96-bit nonce is four
/// zero bytes and the datagram's 64-bit counter (little-endian), unique because a session's
/// counter never repeats and every session has keys of its own.
public enum ChaCha20Poly1305 {
    public static let keyByteCount = 32
    public static let tagByteCount = 16

    /// The nonce for `counter`: 0x00000000 ‖ counter (u64, little-endian).
    public static func nonce(counter: UInt64) -> [UInt8] {
        [0, 0, 0, 0] + withUnsafeBytes(of: counter.littleEndian) { Array($0) }
    }

    /// Encrypts `text` in place and writes the tag over it and `associatedData` into `tag`.
    public static func seal(_ text: UnsafeMutableRawBufferPointer, associatedData: UnsafeRawBufferPointer, counter: UInt64,
                            key: SecretBytes, tag: UnsafeMutableRawBufferPointer) {
        seal(text, associatedData: associatedData, nonce: nonce(counter: counter), key: key, tag: tag)
    }

    /// Checks `tag` over `text` and `associatedData` in constant time and, if it matches,
    /// decrypts `text` in place. Returns false when it does not (libsodium then zeroes `text`).
    public static func open(_ text: UnsafeMutableRawBufferPointer, associatedData: UnsafeRawBufferPointer, counter: UInt64,
                            key: SecretBytes, tag: UnsafeRawBufferPointer) -> Bool {
        open(text, associatedData: associatedData, nonce: nonce(counter: counter), key: key, tag: tag)
    }

    static func seal(_ text: UnsafeMutableRawBufferPointer, associatedData: UnsafeRawBufferPointer, nonce: [UInt8],
                     key: SecretBytes, tag: UnsafeMutableRawBufferPointer) {
        precondition(key.count == keyByteCount && tag.count == tagByteCount && nonce.count == 12,
                     "ChaCha20-Poly1305: key, tag or nonce of the wrong length")
        Sodium.ensureInitialised()
        let rc = withTextPointer(text) { m in
            key.withUnsafeBytes { k in
                crypto_aead_chacha20poly1305_ietf_encrypt_detached(
                    m, tag.baseAddress!.assumingMemoryBound(to: UInt8.self), nil, m, UInt64(text.count),
                    associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(associatedData.count),
                    nil, nonce, k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        precondition(rc == 0, "crypto_aead_chacha20poly1305_ietf_encrypt_detached failed")
    }

    static func open(_ text: UnsafeMutableRawBufferPointer, associatedData: UnsafeRawBufferPointer, nonce: [UInt8],
                     key: SecretBytes, tag: UnsafeRawBufferPointer) -> Bool {
        guard key.count == keyByteCount, tag.count == tagByteCount, nonce.count == 12 else { return false }
        Sodium.ensureInitialised()
        let rc = withTextPointer(text) { m in
            key.withUnsafeBytes { k in
                crypto_aead_chacha20poly1305_ietf_decrypt_detached(
                    m, nil, m, UInt64(text.count), tag.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(associatedData.count),
                    nonce, k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        return rc == 0
    }

    /// The text's first byte, or a scratch byte for an empty text (libsodium wants a pointer).
    private static func withTextPointer(_ text: UnsafeMutableRawBufferPointer, _ body: (UnsafeMutablePointer<UInt8>) -> Int32) -> Int32 {
        if let base = text.baseAddress { return body(base.assumingMemoryBound(to: UInt8.self)) }
        var scratch: UInt8 = 0
        return withUnsafeMutablePointer(to: &scratch, body)
    }
}
