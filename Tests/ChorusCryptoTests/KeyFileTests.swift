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

@Test("an id prefix names a peer when it starts exactly one known id, as git accepts short commit ids")
func idPrefixes() throws {
    let a = try #require(PeerID(text: "3f9c12ab" + String(repeating: "0", count: 56)))
    let b = try #require(PeerID(text: "3f9c77ee" + String(repeating: "1", count: 56)))
    let c = try #require(PeerID(text: "77ab0002" + String(repeating: "2", count: 56)))
    let known = [a, b, c]
    #expect(try PeerID.resolve("3F9C12", among: known) == a, "any case")
    #expect(try PeerID.resolve("77ab", among: known) == c)
    #expect(try PeerID.resolve(b.description, among: []) == b, "a full id needs no view")
    #expect(throws: PeerID.PrefixError.ambiguous("3f9c", [a, b])) { try PeerID.resolve("3f9c", among: known + [a]) }
    #expect(throws: PeerID.PrefixError.unknown("dead")) { try PeerID.resolve("dead", among: known) }
    #expect(throws: PeerID.PrefixError.tooShort("3f9")) { try PeerID.resolve("3f9", among: known) }
    #expect(throws: PeerID.PrefixError.malformed("3f9c-")) { try PeerID.resolve("3f9c-", among: known) }
    #expect(throws: PeerID.PrefixError.malformed(a.description + "0")) { try PeerID.resolve(a.description + "0", among: known) }
    #expect("\(PeerID.PrefixError.ambiguous("3f9c", [a, b]))".contains("3f9c12ab…"), "the message shows how the candidates differ")
}
