import CSodium

/// Errors from the libsodium layer. Every length is checked before C sees a pointer,
/// so a wrong-sized input becomes `wrongLength`, never an over-read.
public enum CryptoError: Error, Equatable, CustomStringConvertible {
    case wrongLength(what: String, expected: Int, actual: Int)
    case verificationFailed(String)
    case libraryFailure(String)

    public var description: String {
        switch self {
        case let .wrongLength(what, expected, actual):
            return "\(what) must be \(expected) bytes, got \(actual)"
        case let .verificationFailed(what):
            return "\(what) did not verify"
        case let .libraryFailure(what):
            return "libsodium failed: \(what)"
        }
    }
}

/// The one place that initialises libsodium. `sodium_init` is idempotent and thread-safe,
/// but we call it through a lazy global so every entry point pays for it only once.
enum Sodium {
    private static let initialised: Bool = sodium_init() >= 0

    static func ensureInitialised() {
        precondition(initialised, "libsodium could not be initialised (sodium_init < 0)")
    }

    static func check(_ bytes: some Collection, is expected: Int, _ what: String) throws(CryptoError) {
        if bytes.count != expected {
            throw .wrongLength(what: what, expected: expected, actual: bytes.count)
        }
    }
}

/// Cryptographically secure random bytes from libsodium.
public func secureRandomBytes(_ count: Int) -> [UInt8] {
    Sodium.ensureInitialised()
    var out = [UInt8](repeating: 0, count: count)
    out.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, $0.count) }
    return out
}

/// A random 64-bit value (object ids and the like).
public func secureRandomUInt64() -> UInt64 {
    Sodium.ensureInitialised()
    var value: UInt64 = 0
    withUnsafeMutableBytes(of: &value) { randombytes_buf($0.baseAddress!, 8) }
    return value
}

/// Constant-time comparison of two equal-length byte strings.
public func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    guard a.count == b.count else { return false }
    if a.isEmpty { return true }
    Sodium.ensureInitialised()
    return a.withUnsafeBytes { pa in
        b.withUnsafeBytes { pb in sodium_memcmp(pa.baseAddress!, pb.baseAddress!, a.count) == 0 }
    }
}
