import CSodium

/// XChaCha20-Poly1305-IETF (libsodium `crypto_aead_xchacha20poly1305_ietf_*`).
/// Chorus seals every datagram with it in place (`sealInPlace`): the header is associated data,
/// the body and signature are encrypted. The array forms are kept for tests.
public enum XChaCha20Poly1305 {
    public static let keyByteCount = 32
    public static let nonceByteCount = 24
    public static let tagByteCount = 16

    /// Encrypts `plaintext` and authenticates it with `associatedData`; returns ciphertext ‖ tag.
    public static func seal(_ plaintext: [UInt8], associatedData: [UInt8], nonce: [UInt8], key: SecretBytes) throws(CryptoError) -> [UInt8] {
        try Sodium.check(nonce, is: nonceByteCount, "XChaCha20-Poly1305 nonce")
        guard key.count == keyByteCount else {
            throw .wrongLength(what: "XChaCha20-Poly1305 key", expected: keyByteCount, actual: key.count)
        }
        Sodium.ensureInitialised()
        var out = [UInt8](repeating: 0, count: plaintext.count + tagByteCount)
        var outLength: UInt64 = 0
        let rc = key.withUnsafeBytes { k in
            plaintext.withUnsafeBufferPointer { p in
                associatedData.withUnsafeBufferPointer { a in
                    crypto_aead_xchacha20poly1305_ietf_encrypt(
                        &out, &outLength, p.baseAddress, UInt64(p.count),
                        a.baseAddress, UInt64(a.count), nil, nonce,
                        k.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        guard rc == 0 else { throw .libraryFailure("xchacha20poly1305 encrypt") }
        return out
    }

    /// Opens ciphertext ‖ tag; throws `verificationFailed` when the tag does not match.
    public static func open(_ sealed: [UInt8], associatedData: [UInt8], nonce: [UInt8], key: SecretBytes) throws(CryptoError) -> [UInt8] {
        try Sodium.check(nonce, is: nonceByteCount, "XChaCha20-Poly1305 nonce")
        guard key.count == keyByteCount else {
            throw .wrongLength(what: "XChaCha20-Poly1305 key", expected: keyByteCount, actual: key.count)
        }
        guard sealed.count >= tagByteCount else {
            throw .wrongLength(what: "XChaCha20-Poly1305 sealed box", expected: tagByteCount, actual: sealed.count)
        }
        Sodium.ensureInitialised()
        var out = [UInt8](repeating: 0, count: sealed.count - tagByteCount)
        var outLength: UInt64 = 0
        let rc = key.withUnsafeBytes { k in
            sealed.withUnsafeBufferPointer { c in
                associatedData.withUnsafeBufferPointer { a in
                    crypto_aead_xchacha20poly1305_ietf_decrypt(
                        &out, &outLength, nil, c.baseAddress!, UInt64(c.count),
                        a.baseAddress, UInt64(a.count), nonce,
                        k.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        guard rc == 0 else { throw .verificationFailed("XChaCha20-Poly1305 tag") }
        return out
    }

    /// Encrypts `text` in place and returns the 16-byte tag over it and `associatedData`.
    public static func sealInPlace(_ text: UnsafeMutableRawBufferPointer, associatedData: UnsafeRawBufferPointer,
                                   nonce: UnsafeRawBufferPointer, key: SecretBytes) -> [UInt8] {
        precondition(nonce.count == nonceByteCount && key.count == keyByteCount, "XChaCha20-Poly1305: nonce or key of the wrong length")
        Sodium.ensureInitialised()
        var tag = [UInt8](repeating: 0, count: tagByteCount)
        var scratch: UInt8 = 0  // libsodium declares the text pointers non-null even when empty
        let m = text.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let rc = key.withUnsafeBytes { k in
            withUnsafeMutablePointer(to: &scratch) { empty in
                crypto_aead_xchacha20poly1305_ietf_encrypt_detached(
                    m ?? empty, &tag, nil, m ?? empty, UInt64(text.count),
                    associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(associatedData.count), nil,
                    nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        precondition(rc == 0, "crypto_aead_xchacha20poly1305_ietf_encrypt_detached failed")
        return tag
    }

    /// Checks `tag` over `text` and `associatedData` in constant time and, only if it matches,
    /// decrypts `text` in place. Returns whether it matched (libsodium zeroes the text if not).
    public static func openInPlace(_ text: UnsafeMutableRawBufferPointer, associatedData: UnsafeRawBufferPointer,
                                   tag: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, key: SecretBytes) -> Bool {
        guard tag.count == tagByteCount, nonce.count == nonceByteCount, key.count == keyByteCount else { return false }
        Sodium.ensureInitialised()
        var scratch: UInt8 = 0
        let m = text.baseAddress?.assumingMemoryBound(to: UInt8.self)
        let rc = key.withUnsafeBytes { k in
            withUnsafeMutablePointer(to: &scratch) { empty in
                crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                    m ?? empty, nil, m ?? empty, UInt64(text.count), tag.baseAddress!.assumingMemoryBound(to: UInt8.self),
                    associatedData.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(associatedData.count),
                    nonce.baseAddress!.assumingMemoryBound(to: UInt8.self), k.baseAddress!.assumingMemoryBound(to: UInt8.self))
            }
        }
        return rc == 0
    }

    /// The 16-byte tag over `data` with an empty plaintext (data as associated data only).
    public static func tag(over data: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, key: SecretBytes) throws(CryptoError) -> [UInt8] {
        guard nonce.count == nonceByteCount else {
            throw .wrongLength(what: "XChaCha20-Poly1305 nonce", expected: nonceByteCount, actual: nonce.count)
        }
        guard key.count == keyByteCount else {
            throw .wrongLength(what: "XChaCha20-Poly1305 key", expected: keyByteCount, actual: key.count)
        }
        Sodium.ensureInitialised()
        var tag = [UInt8](repeating: 0, count: tagByteCount)
        var tagLength: UInt64 = 0
        let rc = key.withUnsafeBytes { k in
            crypto_aead_xchacha20poly1305_ietf_encrypt(
                &tag, &tagLength, nil, 0,
                data.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(data.count), nil,
                nonce.baseAddress!.assumingMemoryBound(to: UInt8.self),
                k.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        guard rc == 0 else { throw .libraryFailure("xchacha20poly1305 tag") }
        return tag
    }

    /// Checks a tag made by `tag(over:nonce:key:)`, in constant time.
    public static func verifyTag(_ tag: UnsafeRawBufferPointer, over data: UnsafeRawBufferPointer, nonce: UnsafeRawBufferPointer, key: SecretBytes) -> Bool {
        guard tag.count == tagByteCount, nonce.count == nonceByteCount, key.count == keyByteCount else { return false }
        Sodium.ensureInitialised()
        var empty: UInt8 = 0  // libsodium declares the ciphertext pointer non-null even when empty
        let rc = key.withUnsafeBytes { k in
            crypto_aead_xchacha20poly1305_ietf_decrypt_detached(
                nil, nil, &empty, 0,
                tag.baseAddress!.assumingMemoryBound(to: UInt8.self),
                data.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(data.count),
                nonce.baseAddress!.assumingMemoryBound(to: UInt8.self),
                k.baseAddress!.assumingMemoryBound(to: UInt8.self))
        }
        return rc == 0
    }
}
