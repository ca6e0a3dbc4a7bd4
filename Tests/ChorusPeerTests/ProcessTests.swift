import ChorusCrypto
import Foundation
import Testing
import ChorusCore
@testable import ChorusPeer

/// Tests with real `chorus` processes on loopback. They need the binary (scripts/test.sh builds it).
@Suite("real peer processes", .serialized)
struct ProcessTests {
    @Test("four peer processes on real UDP reach consensus and learn")
    func fourPeersReachConsensus() throws {
        let binary = try #require(ChorusBinary.path, "chorus binary not built")
        var options = LocalNetwork.Options(executable: binary)
        options.peers = 4
        options.topology = .ring  // the sparsest connected graph: mixing must really propagate
        options.cosineSteps = 400  // 8 s of training at 50 steps/s, then pure averaging
        let network = try LocalNetwork(options: options)
        defer {
            network.stopAll()
            if ProcessInfo.processInfo.environment["CHORUS_KEEP_TEST_DIRS"] == nil { network.removeDirectory() }
        }
        for index in 0..<4 { try network.start(index) }
        try network.waitUntilReady(Array(0..<4))
        var distances: [Double] = []
        var statuses: [PeerStatus] = []
        let deadline = Date().addingTimeInterval(40)
        repeat {
            Thread.sleep(forTimeInterval: 1)
            statuses = try (0..<4).map { try AdminClient.status(at: network.members[$0].admin) }
            let vectors = try (0..<4).map { try AdminClient.parameters(token: network.members[$0].adminToken, at: network.members[$0].admin) }
            distances = Consensus.relativeDistances(vectors)
        } while ((distances.max() ?? 1) > 1e-4 || statuses.contains { $0.step < 400 }) && Date() < deadline
        #expect(distances.max()! <= 1e-4, "distances \(distances)")
        for status in statuses {
            #expect(status.step >= 400)
            #expect(status.testAccuracy >= 0.9, "\(status.peerId.prefix(8)) at \(status.testAccuracy)")
            #expect(status.neighbours.count == 2)
            #expect(status.neighbours.allSatisfy { $0.lastHeard != nil && $0.weight > 0 })
            #expect(status.datagramsRejected == 0)
        }
        // Graceful stop: exit status 0 and a checkpoint on disk.
        #expect(network.stop(0) == 0)
        #expect(FileManager.default.fileExists(atPath: network.directory + "/state/p0.checkpoint"))
    }

    @Test("a port already in use stops the peer with one line naming peer.bind")
    func portInUse() throws {
        let s = try Scratch()
        let blocker = try DatagramSocketHolder()
        let file = s.write(s.config(bind: "127.0.0.1:\(blocker.port)"))
        let result = try ChorusBinary.run(["peer", "--config", file], timeout: 30)
        #expect(result.status != 0)
        #expect(result.stderr.contains("\(file): field 'peer.bind'") && result.stderr.contains("address already in use"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
    }

    @Test("a configuration mistake exits non-zero with one line and no stack trace")
    func configMistakeExits() throws {
        let s = try Scratch()
        let file = s.write(s.config { $0.replacingOccurrences(of: "batch_size", with: "x") + "\n[learning2]\n" })
        let result = try ChorusBinary.run(["peer", "--config", file], timeout: 30)
        #expect(result.status != 0)
        #expect(result.stderr.contains("\(file): field 'learning2': unknown field"), "\(result.stderr)")
        #expect(result.stderr.split(separator: "\n").count == 1, "\(result.stderr)")
    }
}

/// Holds a UDP port open so a peer cannot bind it.
final class DatagramSocketHolder {
    let fd: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        self.fd = fd
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }
}
