import ChorusCore
import ChorusCrypto
import ChorusMembership
import ChorusWire
import Foundation
import Testing
@testable import ChorusPeer

/// The real shell only moves bytes: training runs off the event loop that answers probes.
@Suite("the real shell", .serialized)
struct ShellTests {
    @Test("a peer acks membership pings within milliseconds while a long training round runs")
    func acksDuringTraining() throws {
        let s = try Scratch()
        let udp = try FreePort.udp(), admin = try FreePort.tcp()
        // Rounds of 50 steps of a wide MLP on 128-row batches: each takes about a second (longer
        // in a debug build).
        let file = s.write(s.config(bind: "127.0.0.1:\(udp)", admin: "127.0.0.1:\(admin)") {
            $0.replacingOccurrences(of: "kind = \"softmax\"", with: "kind = \"mlp:256\"")
                .replacingOccurrences(of: "learning_rate = 0.05", with: "learning_rate = 0.01\nbatch_size = 128\nsteps_per_round = 50")
        })
        let process = try ChorusBinary.start(["peer", "--config", file])
        defer {
            process.terminate()
            process.waitUntilExit()
        }
        let adminAddress = HostPort(host: "127.0.0.1", port: admin)
        var first: PeerStatus?
        for _ in 0..<100 where first == nil {
            first = try? AdminClient.status(at: adminAddress)
            if first == nil { Thread.sleep(forTimeInterval: 0.1) }
        }
        let start = try #require(first, "the peer did not come up")
        let startedAt = Date()

        let client = try ProbeClient(networkKeyFile: s.path + "/network.key", peer: s.peerA, port: udp)
        var latencies: [Double] = []
        var end = start
        // Ping until two more rounds have finished (about 2 s in a release build, 20 s in debug).
        while end.step < start.step + 100 && Date().timeIntervalSince(startedAt) < 60 {
            latencies.append(try client.ping())
            Thread.sleep(forTimeInterval: 0.1)
            end = try AdminClient.status(at: adminAddress)
        }
        let seconds = Date().timeIntervalSince(startedAt)
        let steps = Double(end.step - start.step)
        #expect(steps >= 100, "fewer than two rounds: \(steps) steps in \(seconds) s")
        let roundSeconds = 50 / max(steps / seconds, 1e-9)
        let slowest = latencies.max() ?? .infinity
        // On the old shell a ping arriving mid-round waited for the whole round.
        #expect(roundSeconds >= 0.5, "rounds are too fast to tell: \(roundSeconds) s")
        #expect(slowest < roundSeconds / 4, "slowest ack \(slowest) s with rounds of \(roundSeconds) s (\(latencies.count) pings)")
        #expect(latencies.count >= 10)
        print("acks: slowest \(slowest) s, median \(latencies.sorted()[latencies.count / 2]) s; rounds \(roundSeconds) s")
    }

    @Test("the timer is set for the first nanosecond at which the peer's clock reads the deadline")
    func timerReachesItsDeadline() {
        // A probe 0.2 s after 2.391551127 s: rounding its nanoseconds up gives an instant that
        // reads back earlier, so the tick there found nothing due.
        let found = 2.5915511270000002
        #expect(Double(Int64((found * 1e9).rounded(.up))) / 1e9 < found)
        let deadlines = [found, 0, 1e-9, 0.1 * 3, 86_400.000_000_1] + (0..<100_000).map { 0.2 + Double($0) * 0.000_137 }
        let wrong = deadlines.filter { deadline in
            let nanoseconds = PeerNode.nanoseconds(reaching: deadline)
            return !(Double(nanoseconds) / 1e9 >= deadline && Double(nanoseconds - 1) / 1e9 < deadline)
        }
        #expect(wrong.isEmpty, "\(wrong.prefix(5))")
    }
}

/// A minimal foreign member speaking the real datagram layer over a BSD socket: it pings the
/// peer and waits for the ack.
final class ProbeClient {
    private var wire: WireEndpoint
    private let fd: Int32
    private var destination = sockaddr_in()
    private let peer: PeerID
    private var sequence: UInt32 = 0

    init(networkKeyFile: String, peer: PeerID, port: Int) throws {
        let key = try KeyFiles.readNetworkKey(at: networkKeyFile)
        wire = WireEndpoint(identity: SigningKey.generate(), keyring: NetworkKeyring([key]), epoch: 1)
        self.peer = peer
        fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var timeout = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        destination.sin_family = sa_family_t(AF_INET)
        destination.sin_addr.s_addr = inet_addr("127.0.0.1")
        destination.sin_port = UInt16(port).bigEndian
    }

    deinit { close(fd) }

    /// Seconds until the ack arrived (the first ping also waits for the hello exchange).
    func ping() throws -> Double {
        sequence += 1
        let started = Date()
        let message = MembershipMessage.ping(sequence: sequence, claims: [])
        send(wire.send(.message(channel: ChorusChannel.membership, payload: message.encoded()), to: peer, now: now))
        while Date().timeIntervalSince(started) < 5 {
            guard let bytes = receive() else { continue }
            let reception = wire.receive(bytes, now: now)
            send(reception.replies + reception.flushed)
            for case let .message(_, channel, payload) in reception.deliveries where channel == ChorusChannel.membership {
                if case let .ack(seq, _)? = MembershipMessage.decode(payload), seq == sequence {
                    return Date().timeIntervalSince(started)
                }
            }
        }
        throw StartupError("no ack to ping \(sequence) within 5 s")
    }

    private var now: Double { Date().timeIntervalSince1970 }

    private func send(_ datagrams: [[UInt8]]) {
        for d in datagrams {
            _ = d.withUnsafeBytes { bytes in
                withUnsafePointer(to: &destination) {
                    $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                        sendto(fd, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                    }
                }
            }
        }
    }

    private func receive() -> [UInt8]? {
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        return n > 0 ? Array(buffer[..<n]) : nil
    }
}
