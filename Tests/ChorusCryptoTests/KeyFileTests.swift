import Foundation
import Testing
@testable import ChorusCrypto

private func temporaryDirectory() -> String {
    let path = NSTemporaryDirectory() + "chorus-keys-\(UInt64.random(in: 0...UInt64.max))"
    try! FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    return path
}

@Test("an identity written to disk reads back, with a 0600 secret file, and is never overwritten")
func identityRoundTrip() throws {
    let dir = temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let key = SigningKey.generate()
    let id = try KeyFiles.writeIdentity(key, to: dir)
    #expect(id == key.peerID)
    let attributes = try FileManager.default.attributesOfItem(atPath: dir + "/identity.secret")
    #expect((attributes[.posixPermissions] as? Int) == 0o600)
    #expect(try KeyFiles.readIdentity(at: dir).peerID == key.peerID)
    #expect(throws: KeyFileError.exists(path: dir + "/identity.secret")) {
        try KeyFiles.writeIdentity(SigningKey.generate(), to: dir)
    }
    #expect(try KeyFiles.readIdentity(at: dir).peerID == key.peerID)
}

@Test("a group- or world-readable secret file is refused with the chmod to run")
func tooOpenKeyFile() throws {
    let dir = temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/network.key"
    try KeyFiles.writeNetworkKey(NetworkKey.generate(), to: path)
    chmod(path, 0o644)
    do {
        _ = try KeyFiles.readNetworkKey(at: path)
        Issue.record("expected a permissions error")
    } catch {
        #expect(error == .tooOpen(path: path, mode: "644"))
        #expect(error.description.contains("chmod 600 \(path)"))
    }
}

@Test("malformed and missing key files name the file and what was expected")
func malformedKeyFiles() throws {
    let dir = temporaryDirectory()
    defer { try? FileManager.default.removeItem(atPath: dir) }
    let path = dir + "/bad.key"
    FileManager.default.createFile(atPath: path, contents: Data("# comment\nabcd\n".utf8), attributes: [.posixPermissions: 0o600])
    #expect(throws: KeyFileError.malformed(path: path, expected: "a 32-byte network key as 64 hexadecimal characters on one line")) {
        try KeyFiles.readNetworkKey(at: path)
    }
    do {
        _ = try KeyFiles.readNetworkKey(at: dir + "/missing.key")
        Issue.record("expected an error")
    } catch {
        #expect(error.description.hasPrefix(dir + "/missing.key: cannot read key file"))
    }
}
