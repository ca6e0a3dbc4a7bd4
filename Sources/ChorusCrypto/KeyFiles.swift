#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Why a key file could not be used; every case names the file and says what to do.
public enum KeyFileError: Error, CustomStringConvertible, Equatable {
    case exists(path: String)
    case unreadable(path: String, reason: String)
    case tooOpen(path: String, mode: String)
    case malformed(path: String, expected: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .exists(path):
            return "\(path): already exists; refusing to overwrite a key (move it away first)"
        case let .unreadable(path, reason):
            return "\(path): cannot read key file: \(reason)"
        case let .tooOpen(path, mode):
            return "\(path): permissions \(mode) are too open for a secret key; run: chmod 600 \(path)"
        case let .malformed(path, expected):
            return "\(path): not a valid key file: expected \(expected)"
        case let .writeFailed(path, reason):
            return "\(path): cannot write key file: \(reason)"
        }
    }
}

/// Reading and writing identity and network key files.
///
/// Layout: an identity directory holds `identity.secret` (the Ed25519 seed as 64 hex characters,
/// mode 0600) and `identity.public` (the peer id, 64 hex characters). A network key file holds
/// the 32-byte key as 64 hex characters (mode 0600). Lines starting with `#` are comments.
public enum KeyFiles {
    public static let secretFileName = "identity.secret"
    public static let publicFileName = "identity.public"

    public static let authoritySecretFileName = "authority.secret"
    public static let authorityPublicFileName = "authority.public"
    public static let certificateFileName = "certificate"

    /// Writes a new network authority key into `directory`: `authority.secret` (its Ed25519
    /// seed, mode 0600: keep it off the peers) and `authority.public` (what peers name in
    /// `peer.authority`). Refuses to overwrite.
    @discardableResult
    public static func writeAuthority(_ key: SigningKey, to directory: String) throws(KeyFileError) -> PeerID {
        try writeKeyPair(key, to: directory, secret: authoritySecretFileName, public: authorityPublicFileName,
                         comment: "Chorus network authority (Ed25519 seed): it certifies and revokes identities. Keep secret, off the peers.")
    }

    /// Reads `authority.secret` from a directory (or the path of the secret file itself).
    public static func readAuthority(at path: String) throws(KeyFileError) -> SigningKey {
        try readSigningKey(at: path, defaultFile: authoritySecretFileName)
    }

    /// Reads a public key (a peer id or the authority's): a file of 64 hex characters, or a
    /// directory holding `defaultFile`.
    public static func readPublicKey(at path: String, defaultFile: String) throws(KeyFileError) -> PeerID {
        let file = inDirectory(path, defaultFile)
        guard let line = try soleLine(of: file), let id = PeerID(text: line) else {
            throw .malformed(path: file, expected: "a public key as 64 hexadecimal characters on one line")
        }
        return id
    }

    /// Writes a certificate (`chorus certify`); public, mode 0644. Refuses to overwrite.
    public static func writeCertificate(_ certificate: Certificate, authority: PeerID, to path: String) throws(KeyFileError) {
        try writeExclusive("# Chorus membership certificate for peer \(certificate.subject), signed by authority \(authority)\n\(Hex.encode(certificate.bytes))\n",
                           to: inDirectory(path, certificateFileName), mode: 0o644)
    }

    /// Reads a certificate file (or `certificate` in a directory). Its validity is the caller's to check.
    public static func readCertificate(at path: String) throws(KeyFileError) -> Certificate {
        let file = inDirectory(path, certificateFileName)
        guard let line = try soleLine(of: file), let bytes = Hex.decode(line), let certificate = Certificate(bytes: bytes) else {
            throw .malformed(path: file, expected: "a certificate as \(2 * Certificate.byteCount) hexadecimal characters on one line (chorus certify)")
        }
        return certificate
    }

    /// The one line of a public text file that is neither empty nor a `#` comment (nil when
    /// there is not exactly one).
    private static func soleLine(of file: String) throws(KeyFileError) -> String? {
        guard let data = FileManager.default.contents(atPath: file) else {
            throw .unreadable(path: file, reason: FileManager.default.fileExists(atPath: file) ? "cannot read contents" : "no such file")
        }
        let lines = String(decoding: data, as: UTF8.self).split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty && !$0.hasPrefix("#") }
        return lines.count == 1 ? lines[0] : nil
    }

    /// `name` inside `path` when `path` is a directory, else `path` itself.
    static func inDirectory(_ path: String, _ name: String) -> String {
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
            ? (path as NSString).appendingPathComponent(name) : path
    }

    /// Writes a new identity into `directory` (created if needed). Refuses to overwrite.
    @discardableResult
    public static func writeIdentity(_ key: SigningKey, to directory: String) throws(KeyFileError) -> PeerID {
        try writeKeyPair(key, to: directory, secret: secretFileName, public: publicFileName,
                         comment: "Chorus peer identity (Ed25519 seed). Keep secret.")
    }

    private static func writeKeyPair(_ key: SigningKey, to directory: String, secret: String, public: String,
                                     comment: String) throws(KeyFileError) -> PeerID {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw .writeFailed(path: directory, reason: "cannot create directory")
        }
        let secretPath = (directory as NSString).appendingPathComponent(secret)
        let publicPath = (directory as NSString).appendingPathComponent(`public`)
        if FileManager.default.fileExists(atPath: secretPath) { throw .exists(path: secretPath) }
        if FileManager.default.fileExists(atPath: publicPath) { throw .exists(path: publicPath) }
        try writeExclusive(
            "# \(comment)\n\(Hex.encode(key.seed))\n",
            to: secretPath, mode: 0o600)
        try writeExclusive("\(key.peerID)\n", to: publicPath, mode: 0o644)
        return key.peerID
    }

    /// Reads `identity.secret` from a directory (or a path to the secret file itself).
    public static func readIdentity(at path: String) throws(KeyFileError) -> SigningKey {
        try readSigningKey(at: path, defaultFile: secretFileName)
    }

    private static func readSigningKey(at path: String, defaultFile: String) throws(KeyFileError) -> SigningKey {
        let secretPath = inDirectory(path, defaultFile)
        let bytes = try readSecretHex(at: secretPath, byteCount: Ed25519.seedByteCount, what: "an Ed25519 seed")
        do { return try SigningKey(seed: bytes) } catch {
            throw .malformed(path: secretPath, expected: "an Ed25519 seed")
        }
    }

    public static func writeNetworkKey(_ key: NetworkKey, to path: String) throws(KeyFileError) {
        if FileManager.default.fileExists(atPath: path) { throw .exists(path: path) }
        let parent = (path as NSString).deletingLastPathComponent
        if !parent.isEmpty {
            try? FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        }
        try writeExclusive(
            "# Chorus network key. Every peer of the network holds this file. Keep secret.\n\(Hex.encode(key.copyBytes()))\n",
            to: path, mode: 0o600)
    }

    public static func readNetworkKey(at path: String) throws(KeyFileError) -> NetworkKey {
        let bytes = try readSecretHex(at: path, byteCount: NetworkKey.byteCount, what: "a 32-byte network key")
        do { return try NetworkKey(bytes: bytes) } catch {
            throw .malformed(path: path, expected: "a 32-byte network key")
        }
    }

    public static let adminTokenFileName = "admin.token"

    /// Writes a new admin token (32 random bytes as hex, mode 0600): the credential for a peer's
    /// admin actions (`POST /leave`, `GET /parameters`, `POST /faults`). Refuses to overwrite.
    /// `path` is a file, or a directory (an identity's) to write `admin.token` into.
    @discardableResult
    public static func writeAdminToken(to path: String) throws(KeyFileError) -> String {
        var isDirectory: ObjCBool = false
        let file = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) && isDirectory.boolValue
            ? (path as NSString).appendingPathComponent(adminTokenFileName) : path
        let token = Hex.encode(secureRandomBytes(32))
        try writeExclusive("# Chorus admin token: a peer's admin actions need it. Keep secret.\n\(token)\n", to: file, mode: 0o600)
        return token
    }

    /// Reads an admin token file (mode 0600; 64 hexadecimal characters).
    public static func readAdminToken(at path: String) throws(KeyFileError) -> String {
        Hex.encode(try readSecretHex(at: path, byteCount: 32, what: "a 32-byte admin token"))
    }

    /// Reads a secret hex file, refusing files that group or others can read.
    static func readSecretHex(at path: String, byteCount: Int, what: String) throws(KeyFileError) -> [UInt8] {
        var info = stat()
        guard stat(path, &info) == 0 else {
            throw .unreadable(path: path, reason: String(cString: strerror(errno)))
        }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw .unreadable(path: path, reason: "not a regular file")
        }
        if info.st_mode & 0o077 != 0 {
            throw .tooOpen(path: path, mode: String(info.st_mode & 0o777, radix: 8))
        }
        guard let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            throw .unreadable(path: path, reason: "cannot read contents")
        }
        let lines = text.split(whereSeparator: \.isNewline)
            .map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        let expected = "\(what) as \(2 * byteCount) hexadecimal characters on one line"
        guard lines.count == 1, lines[0].utf8.count == 2 * byteCount, let bytes = Hex.decode(lines[0]) else {
            throw .malformed(path: path, expected: expected)
        }
        return bytes
    }

    /// Creates the file with O_EXCL so two writers can never clobber each other, and sets the mode
    /// at creation so a secret is never briefly world-readable.
    static func writeExclusive(_ text: String, to path: String, mode: mode_t) throws(KeyFileError) {
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL, mode)
        guard fd >= 0 else {
            if errno == EEXIST { throw .exists(path: path) }
            throw .writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
        defer { close(fd) }
        _ = fchmod(fd, mode)  // the umask may have narrowed the mode at creation; set it exactly
        let bytes = Array(text.utf8)
        let written = bytes.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
        guard written == bytes.count else {
            throw .writeFailed(path: path, reason: String(cString: strerror(errno)))
        }
    }
}
