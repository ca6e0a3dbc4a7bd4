import ChorusCrypto
import ChorusWire
import Foundation
import Testing
@testable import ChorusPeer

/// Attacks by a member of the network (it holds the network key), on real processes.
@Suite("insiders against real peers", .serialized)
struct InsiderTests {
    /// The replay-window attack of issue 21: chunks are not signed, so an insider could tag one
    /// in another peer's name with a counter of 2^62, and the receiver's window for that sender
    /// moved past every genuine counter. One such chunk per ordered pair cut every link (1706
    /// contributions per 5 s to 0, 52 of 56 pairs failed, nothing recovered in 60 s).
    @Test("forged chunks with a counter of 2^62 in every peer's name, to every peer, cut no link")
    func replayWindowAttack() throws {
        let network = try LocalNetwork.forTests(peers: 4)
        defer { network.discard() }
        let peers = Array(network.members.indices)
        for index in peers { try network.start(index) }
        try network.waitUntilReady(peers)
        Thread.sleep(forTimeInterval: 3)
        let before = try peers.map { try AdminClient.status(at: network.members[$0].admin) }
        #expect(before.allSatisfy { $0.contributionsMixed > 0 }, "no averaging before the attack")

        let key = try KeyFiles.readNetworkKey(at: network.networkKeyPath)
        let socket = try UDPSender()
        for sender in peers {
            for receiver in peers where receiver != sender {
                let header = DatagramHeader(kind: .chunk, keyID: key.keyID, sender: network.members[sender].id,
                                            senderEpoch: before[sender].bootEpoch, recipientEpoch: before[receiver].bootEpoch,
                                            counter: 1 << 62)
                let chunk = ObjectChunk(objectID: UInt64.random(in: 1 ... .max), totalLength: 64, chunkSize: 32, index: 1,
                                        data: [UInt8](repeating: 0x5a, count: 32))
                let forged = DatagramCodec.seal(header: header, body: .chunk(chunk), identity: nil, key: key)
                try socket.send(forged, to: network.members[receiver].udp)
            }
        }
        // Long enough for every pair to mix several times, and for a cut link to be suspected.
        Thread.sleep(forTimeInterval: 6)
        let after = try peers.map { try AdminClient.status(at: network.members[$0].admin) }
        for index in peers {
            let mixedSince = after[index].contributionsMixed - before[index].contributionsMixed
            #expect(mixedSince >= 3 * (peers.count - 1), "peer \(index) mixed \(mixedSince) contributions after the attack")
            let alive = after[index].members.filter { $0.status == "alive" }.count
            #expect(alive == peers.count, "peer \(index) holds \(alive) of \(peers.count) alive: \(after[index].members.map(\.status))")
            #expect((after[index].rejections["tooOld"] ?? 0) == (before[index].rejections["tooOld"] ?? 0),
                    "genuine datagrams refused as too old at peer \(index)")
        }
    }
}

/// A bare UDP socket for datagrams built by hand.
private final class UDPSender {
    private let fd: Int32

    init() throws {
        fd = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw StartupError("socket(): errno \(errno)") }
    }

    deinit { close(fd) }

    func send(_ bytes: [UInt8], to address: HostPort) throws {
        var destination = sockaddr_in()
        destination.sin_family = sa_family_t(AF_INET)
        destination.sin_port = UInt16(address.port).bigEndian
        guard inet_pton(AF_INET, address.host, &destination.sin_addr) == 1 else { throw StartupError("not an IPv4 address: \(address.host)") }
        let sent = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &destination) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buffer.baseAddress, buffer.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard sent == bytes.count else { throw StartupError("sendto(): errno \(errno)") }
    }
}
