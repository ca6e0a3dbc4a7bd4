import CSodium

/// One boot's key-exchange key: an X25519 pair made at start and never stored, whose public half
/// every hello of that boot carries (signed). Two boots that have seen each other's derive the
/// keys of their pair (`PairCipher`): a new boot, a new pair of keys (forward secrecy per boot).
public struct BootKey: Sendable {
    public static let publicKeyByteCount = KeyExchangePair.publicKeyByteCount

    let pair: KeyExchangePair?
    public let publicKey: [UInt8]
    public let mode: CryptoMode
    /// `PairCipher.fingerprint(publicKey)`.
    public let fingerprint: UInt64
    /// The SipHash key of this boot's return-address cookies (`cookie(for:)`); never sent.
    private let cookieKey: [UInt8]

    /// A fresh key from the system's generator, or the one `seed` (32 bytes) determines, so that a
    /// seeded simulation or test repeats. `.simulated`: a stand-in public value from the seed.
    public init(seed: [UInt8]? = nil, mode: CryptoMode = .real) {
        self.mode = mode
        switch mode {
        case .real:
            let pair = seed.map { try! KeyExchangePair(seed: $0) } ?? KeyExchangePair.generate()  // a 32-byte seed cannot fail
            self.pair = pair
            publicKey = pair.publicKey
            // From the seed when there is one (a seeded test repeats its cookies), else fresh.
            cookieKey = seed.map { try! Blake2b.hash($0 + Array("chorus/v1/cookie".utf8), outputLength: 16) }  // fixed sizes
                ?? secureRandomBytes(16)
        case .simulated:
            pair = nil
            let word = (seed ?? secureRandomBytes(32)).withUnsafeBytes { StandIn.digest($0) }
            publicKey = withUnsafeBytes(of: word.littleEndian) { Array($0) } + [UInt8](repeating: 0, count: 24)
            cookieKey = withUnsafeBytes(of: (~word).littleEndian) { Array($0) }
        }
        fingerprint = PairCipher.fingerprint(publicKey)
    }

    /// The return-address cookie for `address`: a keyed digest of it (SipHash-2-4,
    /// `crypto_shorthash`, under a key this boot keeps to itself; a stand-in digest when
    /// simulated), 62 bits, never 0. A hello carries the cookie for the address it goes to; only
    /// someone who receives there can echo it, so an echo from that address proves that its
    /// sender receives there (as QUIC's address validation and WireGuard's cookies do). Nothing
    /// is stored: an echo is checked by computing it again.
    public func cookie(for address: String) -> UInt64 {
        var address = address
        let digest: UInt64 = address.withUTF8 { text in
            switch mode {
            case .real:
                var out: UInt64 = 0
                withUnsafeMutableBytes(of: &out) { o in
                    cookieKey.withUnsafeBufferPointer { k in
                        _ = crypto_shorthash(o.baseAddress!.assumingMemoryBound(to: UInt8.self), text.baseAddress, UInt64(text.count), k.baseAddress!)
                    }
                }
                return UInt64(littleEndian: out)
            case .simulated:
                return StandIn.digest(UnsafeRawBufferPointer(text), seed: cookieKey.withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
            }
        }
        return max(1, digest >> 2)
    }
}

/// The keys of one pair of boots (two peers' `BootKey`s), one per direction, and sealing with
/// them: ChaCha20-Poly1305 (IETF) with the 96-bit nonce 0⁴ ‖ the sender's datagram counter. The
/// counter never repeats within a boot, and the keys are new for every pair of boots, so a
/// nonce never repeats under a key. `.simulated`: a forgeable stand-in tag, nothing encrypted.
public struct PairCipher: Sendable {
    let keys: SessionKeys?
    let standIn: UInt64

    /// 32 bits naming a boot's public key (never 0; a session keeps other bits beside them):
    /// a session keeps it to know which boot its pair's keys are for, and a simulation rebuilds
    /// the stand-in from it (`init(simulated:)`).
    public static func fingerprint(_ bootKey: [UInt8]) -> UInt64 {
        max(1, bootKey.withUnsafeBytes { StandIn.digest($0) } >> 32)
    }

    /// The pair's keys as `own` (this peer, `ownID`) sees them with the other boot's public key.
    /// The lower peer id takes libsodium's client role, so both sides agree whoever spoke first.
    /// Throws for a public key of the wrong length or of low order.
    public init(own: BootKey, ownID: PeerID, theirs: [UInt8], theirID: PeerID) throws(CryptoError) {
        try Sodium.check(theirs, is: BootKey.publicKeyByteCount, "boot key")
        switch own.mode {
        case .real:
            self.init(keys: ownID < theirID ? try SessionKeys.initiator(own.pair!, responderPublicKey: theirs)
                                            : try SessionKeys.responder(own.pair!, initiatorPublicKey: theirs), standIn: 0)
        case .simulated:
            self.init(simulated: own, ownID: ownID, theirFingerprint: Self.fingerprint(theirs), theirID: theirID)
        }
    }

    /// The stand-in pair of a simulation, from the other boot's fingerprint alone: a simulated
    /// peer keeps that word in each session and rebuilds this per datagram, instead of keeping
    /// n² ciphers (a simulation of 4096 peers holds 16 million pairs).
    public init(simulated own: BootKey, ownID: PeerID, theirFingerprint: UInt64, theirID: PeerID) {
        precondition(own.mode == .simulated, "the stand-in pair is for simulations")
        let (low, high) = ownID < theirID ? (own.fingerprint, theirFingerprint) : (theirFingerprint, own.fingerprint)
        self.init(keys: nil, standIn: withUnsafeBytes(of: (low.littleEndian, high.littleEndian)) { StandIn.digest($0) })
    }

    private init(keys: SessionKeys?, standIn: UInt64) {
        self.keys = keys
        self.standIn = standIn
    }

    /// Encrypts `text` in place under the send key and returns the tag over it and `header`.
    public func seal(_ text: UnsafeMutableRawBufferPointer, header: UnsafeRawBufferPointer, counter: UInt64) -> [UInt8] {
        guard let keys else {
            // The stand-in: a digest over header and text (contiguous in the datagram), nothing hidden.
            return StandIn.tag(over: UnsafeRawBufferPointer(start: header.baseAddress, count: header.count + text.count), seed: standIn)
        }
        var tag = [UInt8](repeating: 0, count: ChaCha20Poly1305.tagByteCount)
        tag.withUnsafeMutableBytes { t in
            ChaCha20Poly1305.seal(text, associatedData: header, counter: counter, key: keys.send, tag: t)
        }
        return tag
    }

    /// Checks the tag under the receive key and, if it matches, decrypts `text` in place.
    public func open(_ text: UnsafeMutableRawBufferPointer, header: UnsafeRawBufferPointer, counter: UInt64,
                     tag: UnsafeRawBufferPointer) -> Bool {
        guard let keys else {
            return StandIn.verifyTag(tag, over: UnsafeRawBufferPointer(start: header.baseAddress, count: header.count + text.count), seed: standIn)
        }
        return ChaCha20Poly1305.open(text, associatedData: header, counter: counter, key: keys.receive, tag: tag)
    }
}
