import Testing
@testable import ChorusCrypto

@Test("wrong-length keys, seeds, nonces and signatures are errors, never crashes", arguments: [0, 1, 16, 31, 33, 64, 65])
func wrongLengths(length: Int) throws {
    let bytes = [UInt8](repeating: 7, count: length)
    if length != 32 {
        #expect(throws: CryptoError.self) { try SigningKey(seed: bytes) }
        #expect(throws: CryptoError.self) { try PeerID(bytes: bytes) }
        #expect(throws: CryptoError.self) { try NetworkKey(bytes: bytes) }
        #expect(throws: CryptoError.self) {
            try XChaCha20Poly1305.seal([1], associatedData: [], nonce: [UInt8](repeating: 0, count: 24), key: SecretBytes(bytes))
        }
    }
    if length != 24 {
        #expect(throws: CryptoError.self) {
            try XChaCha20Poly1305.seal([1], associatedData: [], nonce: bytes, key: SecretBytes([UInt8](repeating: 0, count: 32)))
        }
    }
    if length != 64 {
        let key = SigningKey.generate()
        #expect(!key.peerID.verify(signature: bytes, of: [1, 2, 3]))
    }
}

@Test("a sealed box shorter than its tag is rejected before libsodium sees it", arguments: 0..<16)
func shortSealedBox(length: Int) {
    let key = SecretBytes([UInt8](repeating: 1, count: 32))
    #expect(throws: CryptoError.self) {
        try XChaCha20Poly1305.open([UInt8](repeating: 0, count: length), associatedData: [], nonce: [UInt8](repeating: 0, count: 24), key: key)
    }
}

@Test("BLAKE2b rejects output lengths and keys libsodium does not support", arguments: [0, 15, 65, 128])
func blake2bBounds(length: Int) {
    #expect(throws: CryptoError.self) { try Blake2b.hash([1], outputLength: length) }
    #expect(throws: CryptoError.self) { try Blake2b.hash([1], outputLength: 32, key: [UInt8](repeating: 0, count: 65)) }
}

@Test("peer ids round-trip through their text form and reject anything but 64 hex characters")
func peerIDText() {
    let id = SigningKey.generate().peerID
    #expect(PeerID(text: id.description) == id)
    #expect(PeerID(text: id.description.uppercased()) == id)
    #expect(PeerID(text: String(id.description.dropLast())) == nil)
    #expect(PeerID(text: id.description + "0") == nil)
    #expect(PeerID(text: "zz" + id.description.dropFirst(2)) == nil)
    #expect(PeerID(text: "") == nil)
}

@Test("network keys derive distinct key ids and datagram keys")
func networkKeyDerivation() throws {
    let a = try NetworkKey(bytes: [UInt8](repeating: 1, count: 32))
    let b = try NetworkKey(bytes: [UInt8](repeating: 2, count: 32))
    #expect(a.keyID.count == 4)
    #expect(a.keyID != b.keyID)
    #expect(a.datagramKey.copyBytes() != b.datagramKey.copyBytes())
    #expect(a.datagramKey.copyBytes() != a.copyBytes())
}
