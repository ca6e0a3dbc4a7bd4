import Testing
@testable import ChorusCrypto

private func hex(_ s: String) -> [UInt8] { Hex.decode(s)! }

/// Session keys and sealing for issue 21's per-pair sessions. The expected bytes were computed
/// outside Swift (Python's hashlib and libsodium through ctypes) from the formula the doc
/// comments state, so a foreign implementation that follows them gets the same keys.
@Suite("key exchange and session sealing")
struct KeyExchangeTests {
    static let initiator = try! KeyExchangePair(seed: Array(0..<32))
    static let responder = try! KeyExchangePair(seed: Array(32..<64))

    @Test("seeded pairs and session keys: BLAKE2b-512(X25519 ‖ initiator pk ‖ responder pk) = initiator receive ‖ send")
    func knownSessionKeys() throws {
        #expect(Self.initiator.publicKey == hex("0e0216223f147143d32615a91189c288c1728cba3cc5f9f621b1026e03d83129"))
        #expect(Self.responder.publicKey == hex("99f4674ecc87c0b8e712f192b8f49e7442a9376b4875967ababa28471019a93e"))
        let mine = try SessionKeys.initiator(Self.initiator, responderPublicKey: Self.responder.publicKey)
        #expect(mine.receive.copyBytes() == hex("59f8af2a2061b2e35fd1cbfb708efd27a85c9924e6b83932e8a67c901a9998cb"))
        #expect(mine.send.copyBytes() == hex("17821f6861b0f9ac897981c01cca46b711a0afd09010d3694895333903865af2"))
        let theirs = try SessionKeys.responder(Self.responder, initiatorPublicKey: Self.initiator.publicKey)
        #expect(theirs.send.copyBytes() == mine.receive.copyBytes())
        #expect(theirs.receive.copyBytes() == mine.send.copyBytes())
    }

    @Test("a fresh pair gives other keys; a low-order or short public key is refused")
    func freshAndRefused() throws {
        let fresh = KeyExchangePair.generate()
        #expect(fresh.publicKey != Self.initiator.publicKey)
        let a = try SessionKeys.initiator(fresh, responderPublicKey: Self.responder.publicKey)
        let b = try SessionKeys.initiator(Self.initiator, responderPublicKey: Self.responder.publicKey)
        #expect(a.send.copyBytes() != b.send.copyBytes())
        // The all-zero point has low order: X25519 with it is all zero, which libsodium refuses.
        #expect(throws: CryptoError.self) { try SessionKeys.initiator(fresh, responderPublicKey: [UInt8](repeating: 0, count: 32)) }
        #expect(throws: CryptoError.self) { try SessionKeys.responder(fresh, initiatorPublicKey: [UInt8](repeating: 0, count: 32)) }
        #expect(throws: CryptoError.wrongLength(what: "responder's key exchange public key", expected: 32, actual: 31)) {
            try SessionKeys.initiator(fresh, responderPublicKey: [UInt8](repeating: 9, count: 31))
        }
        #expect(throws: CryptoError.self) { try KeyExchangePair(seed: [1, 2, 3]) }
    }

    @Test("ChaCha20-Poly1305 reproduces RFC 8439 section 2.8.2")
    func rfc8439() {
        let key = SecretBytes(Array(0x80...0x9f))
        let nonce = hex("070000004041424344454647")
        let ad = hex("50515253c0c1c2c3c4c5c6c7")
        var text = Array("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".utf8)
        let plain = text
        var tag = [UInt8](repeating: 0, count: 16)
        text.withUnsafeMutableBytes { t in ad.withUnsafeBytes { a in tag.withUnsafeMutableBytes { g in
            ChaCha20Poly1305.seal(t, associatedData: a, nonce: nonce, key: key, tag: g)
        } } }
        #expect(Hex.encode(text) == "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116")
        #expect(Hex.encode(tag) == "1ae10b594f09e26a7e902ecbd0600691")
        let opened = text.withUnsafeMutableBytes { t in ad.withUnsafeBytes { a in tag.withUnsafeBytes { g in
            ChaCha20Poly1305.open(t, associatedData: a, nonce: nonce, key: key, tag: g)
        } } }
        #expect(opened && text == plain)
    }

    @Test("sealed under a counter: opens only with the same key, counter, associated data, text and tag")
    func tamperingIsRefused() throws {
        let keys = try SessionKeys.initiator(Self.initiator, responderPublicKey: Self.responder.publicKey)
        let plain: [UInt8] = Array("parameters 0.25 0.5 0.75".utf8)
        let ad: [UInt8] = [1, 2, 3, 4]
        var sealed = plain
        var tag = [UInt8](repeating: 0, count: 16)
        sealed.withUnsafeMutableBytes { t in ad.withUnsafeBytes { a in tag.withUnsafeMutableBytes { g in
            ChaCha20Poly1305.seal(t, associatedData: a, counter: 7, key: keys.send, tag: g)
        } } }
        #expect(sealed != plain)
        #expect(ChaCha20Poly1305.nonce(counter: 7) == [0, 0, 0, 0, 7, 0, 0, 0, 0, 0, 0, 0])
        func opens(_ text: [UInt8], ad: [UInt8], counter: UInt64, key: SecretBytes, tag: [UInt8]) -> [UInt8]? {
            var text = text
            let ok = text.withUnsafeMutableBytes { t in ad.withUnsafeBytes { a in tag.withUnsafeBytes { g in
                ChaCha20Poly1305.open(t, associatedData: a, counter: counter, key: key, tag: g)
            } } }
            return ok ? text : nil
        }
        #expect(opens(sealed, ad: ad, counter: 7, key: keys.send, tag: tag) == plain)
        #expect(opens(sealed, ad: ad, counter: 8, key: keys.send, tag: tag) == nil, "another counter")
        #expect(opens(sealed, ad: ad, counter: 7, key: keys.receive, tag: tag) == nil, "the other direction's key")
        #expect(opens(sealed, ad: [1, 2, 3, 5], counter: 7, key: keys.send, tag: tag) == nil, "other associated data")
        var flipped = sealed
        flipped[0] ^= 1
        #expect(opens(flipped, ad: ad, counter: 7, key: keys.send, tag: tag) == nil, "a flipped text bit")
        var badTag = tag
        badTag[15] ^= 0x80
        #expect(opens(sealed, ad: ad, counter: 7, key: keys.send, tag: badTag) == nil, "a flipped tag bit")
        #expect(opens(sealed, ad: ad, counter: 7, key: keys.send, tag: Array(tag.prefix(15))) == nil, "a short tag")
        // An empty text (a datagram whose payload is all associated data) is authenticated all the same.
        var emptyTag = [UInt8](repeating: 0, count: 16)
        var none: [UInt8] = []
        none.withUnsafeMutableBytes { t in ad.withUnsafeBytes { a in emptyTag.withUnsafeMutableBytes { g in
            ChaCha20Poly1305.seal(t, associatedData: a, counter: 7, key: keys.send, tag: g)
        } } }
        #expect(opens([], ad: ad, counter: 7, key: keys.send, tag: emptyTag) == [])
        #expect(opens([], ad: [9], counter: 7, key: keys.send, tag: emptyTag) == nil)
    }
}
