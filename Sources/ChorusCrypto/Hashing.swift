import CSodium

/// BLAKE2b (libsodium's `crypto_generichash`): object digests and key derivation.
public enum Blake2b {
    public static let minimumOutput = 16
    public static let maximumOutput = 64
    public static let maximumKey = 64

    public static func hash(_ data: UnsafeRawBufferPointer, outputLength: Int = 32, key: [UInt8] = []) throws(CryptoError) -> [UInt8] {
        guard (minimumOutput...maximumOutput).contains(outputLength) else {
            throw .wrongLength(what: "BLAKE2b output", expected: 32, actual: outputLength)
        }
        guard key.count <= maximumKey else {
            throw .wrongLength(what: "BLAKE2b key", expected: maximumKey, actual: key.count)
        }
        Sodium.ensureInitialised()
        var out = [UInt8](repeating: 0, count: outputLength)
        let rc = key.withUnsafeBufferPointer { k in
            crypto_generichash(
                &out, outputLength,
                data.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(data.count),
                k.isEmpty ? nil : k.baseAddress, k.count)
        }
        guard rc == 0 else { throw .libraryFailure("crypto_generichash") }
        return out
    }

    public static func hash(_ data: [UInt8], outputLength: Int = 32, key: [UInt8] = []) throws(CryptoError) -> [UInt8] {
        let result = data.withUnsafeBytes { buffer in
            Result { () throws(CryptoError) -> [UInt8] in try hash(buffer, outputLength: outputLength, key: key) }
        }
        return try result.get()
    }
}
