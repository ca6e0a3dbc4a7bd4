import Testing
@testable import ChorusCrypto

private func hex(_ s: String) -> [UInt8] { Hex.decode(s)! }

/// RFC 8032 §7.1, tests 1–3 (secret seed, public key, message, signature).
private let rfc8032: [(seed: String, publicKey: String, message: String, signature: String)] = [
    ("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
     "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
     "",
     "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"),
    ("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
     "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
     "72",
     "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"),
    ("c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
     "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
     "af82",
     "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"),
]

@Test("Ed25519 reproduces the RFC 8032 test vectors", arguments: 0..<3)
func ed25519KnownAnswers(index: Int) throws {
    let vector = rfc8032[index]
    let key = try SigningKey(seed: hex(vector.seed))
    #expect(key.peerID.description == vector.publicKey)
    let signature = key.sign(hex(vector.message))
    #expect(Hex.encode(signature) == vector.signature)
    #expect(key.peerID.verify(signature: signature, of: hex(vector.message)))
}

@Test("Ed25519 rejects a signature over a different message and a malleable S + L signature")
func ed25519RejectsForgeries() throws {
    let vector = rfc8032[1]
    let peer = try PeerID(bytes: hex(vector.publicKey))
    let signature = hex(vector.signature)
    #expect(!peer.verify(signature: signature, of: hex("73")))
    // Add the group order L to S (little-endian, second half): same point, non-canonical encoding.
    let order: [UInt8] = hex("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
    var malleable = signature
    var carry = 0
    for i in 0..<32 {
        let sum = Int(malleable[32 + i]) + Int(order[i]) + carry
        malleable[32 + i] = UInt8(sum & 0xff)
        carry = sum >> 8
    }
    #expect(!peer.verify(signature: malleable, of: hex(vector.message)))
}

@Test("XChaCha20-Poly1305 reproduces draft-irtf-cfrg-xchacha-03 appendix A.3.1")
func xchachaKnownAnswer() throws {
    let key = SecretBytes(hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"))
    let nonce = hex("404142434445464748494a4b4c4d4e4f5051525354555657")
    let ad = hex("50515253c0c1c2c3c4c5c6c7")
    let plaintext = Array("Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.".utf8)
    let expected = hex(
        "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb"
        + "731c7f1b0b4aa6440bf3a82f4eda7e39ae64c6708c54c216cb96b72e1213b452"
        + "2f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9"
        + "21f9664c97637da9768812f615c68b13b52e"
        + "c0875924c1c7987947deafd8780acf49")
    let sealed = try XChaCha20Poly1305.seal(plaintext, associatedData: ad, nonce: nonce, key: key)
    #expect(sealed == expected)
    #expect(try XChaCha20Poly1305.open(sealed, associatedData: ad, nonce: nonce, key: key) == plaintext)
    var tampered = sealed
    tampered[0] ^= 1
    #expect(throws: CryptoError.verificationFailed("XChaCha20-Poly1305 tag")) {
        try XChaCha20Poly1305.open(tampered, associatedData: ad, nonce: nonce, key: key)
    }
}

@Test("the detached tag equals the AEAD tag of an empty plaintext and verifies only for the same data")
func detachedTag() throws {
    let key = SecretBytes(hex("808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f"))
    let nonce = hex("404142434445464748494a4b4c4d4e4f5051525354555657")
    let data = Array("associated data only".utf8)
    let sealed = try XChaCha20Poly1305.seal([], associatedData: data, nonce: nonce, key: key)
    let tag = try data.withUnsafeBytes { d in try nonce.withUnsafeBytes { n in try XChaCha20Poly1305.tag(over: d, nonce: n, key: key) } }
    #expect(tag == sealed)
    let good = tag.withUnsafeBytes { t in data.withUnsafeBytes { d in nonce.withUnsafeBytes { n in
        XChaCha20Poly1305.verifyTag(t, over: d, nonce: n, key: key) } } }
    #expect(good)
    var other = data
    other[3] ^= 0x80
    let bad = tag.withUnsafeBytes { t in other.withUnsafeBytes { d in nonce.withUnsafeBytes { n in
        XChaCha20Poly1305.verifyTag(t, over: d, nonce: n, key: key) } } }
    #expect(!bad)
}

@Test("BLAKE2b reproduces RFC 7693 appendix A and the reference keyed vector")
func blake2bKnownAnswers() throws {
    #expect(Hex.encode(try Blake2b.hash(Array("abc".utf8), outputLength: 64)) ==
        "ba80a53f981c4d0d6a2797b69f12f6e94c212f14685ac4b74b12bb6fdbffa2d17d87c5392aab792dc252d5de4533cc9518d38aa8dbf1925ab92386edd4009923")
    // BLAKE2 reference KAT (blake2b-kat.txt): key 00..3f, empty input.
    let key = Array(UInt8(0)...UInt8(63))
    #expect(Hex.encode(try Blake2b.hash([], outputLength: 64, key: key)) ==
        "10ebb67700b1868efb4417987acf4690ae9d972fb7a590c2f02871799aaa4786b5e996e8f0f4eb981fc214b005f42d2ff4233499391653df7aefcbc13fc51568")
}
