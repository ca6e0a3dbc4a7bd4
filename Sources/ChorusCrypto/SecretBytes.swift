import CSodium

/// Secret key material that this process owns. It is immutable after creation and wiped with
/// `sodium_memzero` when the last reference goes away, so secrets do not linger in freed memory.
public final class SecretBytes: @unchecked Sendable {
    // @unchecked: the buffer is written only in init and wiped only in deinit.
    private let storage: UnsafeMutableRawBufferPointer

    public let count: Int

    public init(_ bytes: [UInt8]) {
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 16)
        bytes.withUnsafeBytes { src in
            if src.count > 0 { buffer.baseAddress!.copyMemory(from: src.baseAddress!, byteCount: src.count) }
        }
        storage = buffer
        count = bytes.count
    }

    deinit {
        sodium_memzero(storage.baseAddress!, storage.count)
        storage.deallocate()
    }

    /// Temporary read access; the pointer must not escape the closure.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(start: storage.baseAddress, count: count))
    }

    /// A copy as an array, for writing key files. The caller is responsible for the copy.
    public func copyBytes() -> [UInt8] {
        withUnsafeBytes { Array($0) }
    }
}
