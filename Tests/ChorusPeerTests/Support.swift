import ChorusCrypto
import Foundation
import Testing
@testable import ChorusPeer

/// A scratch directory with a network key and two identities, for configuration tests.
final class Scratch {
    let path: String
    let peerA: PeerID
    let peerB: PeerID

    init() throws {
        path = NSTemporaryDirectory() + "chorus-peer-tests-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try KeyFiles.writeNetworkKey(NetworkKey.generate(), to: path + "/network.key")
        peerA = try KeyFiles.writeIdentity(SigningKey.generate(), to: path + "/a")
        peerB = try KeyFiles.writeIdentity(SigningKey.generate(), to: path + "/b")
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    /// A valid configuration for peer A with peer B as neighbour; `edit` rewrites the text.
    func config(bind: String = "127.0.0.1:0", admin: String = "127.0.0.1:0", _ edit: (String) -> String = { $0 }) -> String {
        edit("""
            [peer]
            bind = "\(bind)"
            advertise = "127.0.0.1:7999"
            identity = "a"
            network_key = "network.key"
            admin = "\(admin)"

            [model]
            kind = "softmax"

            [data]
            partition = "iid"
            shards = 2
            shard = 0

            [learning]
            learning_rate = 0.05

            [[neighbours]]
            id = "\(peerB)"
            address = "127.0.0.1:7002"
            """)
    }

    func write(_ text: String, name: String = "peer.toml") -> String {
        let file = path + "/" + name
        try! text.write(toFile: file, atomically: true, encoding: .utf8)
        return file
    }
}

/// The chorus executable built by scripts/test.sh (CHORUS_BIN) or by `swift build` next to the tests.
enum ChorusBinary {
    static var path: String? {
        if let explicit = ProcessInfo.processInfo.environment["CHORUS_BIN"], FileManager.default.isExecutableFile(atPath: explicit) {
            return explicit
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        for candidate in [".build/debug/chorus", ".build/release/chorus"] {
            let path = root.appendingPathComponent(candidate).path
            if FileManager.default.isExecutableFile(atPath: path) { return path }
        }
        return nil
    }

    /// Starts chorus in the background, its standard error discarded; the caller terminates it.
    static func start(_ arguments: [String]) throws -> Process {
        guard let path else { throw StartupError("chorus binary not found: run scripts/test.sh or swift build first") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        try process.run()
        return process
    }

    /// Runs chorus with arguments (and `environment` instead of the tests' own, when given);
    /// returns exit status and standard error.
    static func run(_ arguments: [String], environment: [String: String]? = nil, timeout: Double = 60) throws
        -> (status: Int32, stderr: String, stdout: String) {
        guard let path else { throw StartupError("chorus binary not found: run scripts/test.sh or swift build first") }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let err = Pipe(), out = Pipe()
        process.standardError = err
        process.standardOutput = out
        try process.run()
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning { process.terminate() }
        process.waitUntilExit()
        return (process.terminationStatus,
                String(decoding: err.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self),
                String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self))
    }
}

extension LocalNetwork {
    /// `peers` configured peer processes of the chorus binary (none started yet); end the test
    /// with `defer { network.discard() }`.
    static func forTests(peers: Int, admission: Bool = false, sessionKeys: Bool = true) throws -> LocalNetwork {
        let binary = try #require(ChorusBinary.path, "chorus binary not built")
        var options = LocalNetwork.Options(executable: binary)
        options.peers = peers
        options.admission = admission
        options.sessionKeys = sessionKeys
        return try LocalNetwork(options: options)
    }
}
