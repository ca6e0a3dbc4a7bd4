import ChorusCore
import ChorusCrypto
import ChorusWire
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import ChorusPeer

/// Datagrams larger than NIO's default 2048-byte receive buffer: `gossip.max_datagram_size` is
/// accepted up to 65 507, and a socket that cut datagrams short made such peers train alone.
@Suite("datagram sizes on real UDP", .serialized)
struct DatagramSizeTests {
    @Test("two UDP sockets with real libsodium exchange full-size messages and a chunked object", arguments: [1200, 8000, 65_507])
    func inProcess(maxDatagramSize: Int) throws {
        var settings = WireSettings()
        settings.maxDatagramSize = maxDatagramSize
        let keyring = NetworkKeyring([NetworkKey.generate()])
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let a = try Endpoint(settings: settings, keyring: keyring, on: group.next())
        let b = try Endpoint(settings: settings, keyring: keyring, on: group.next())
        // The largest message fills one datagram of exactly max_datagram_size bytes.
        let message = (0..<settings.maxMessagePayload).map { UInt8(truncatingIfNeeded: $0 &* 31) }
        let object = (0..<300_000).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 3) }
        a.send(.message(channel: ChorusChannel.membership, payload: message), to: b)
        a.send(.object(PreparedObject(channel: ChorusChannel.parameters, bytes: object)), to: b)

        var delivered: [Delivery] = []
        let deadline = Date().addingTimeInterval(10)
        while delivered.count < 2 && Date() < deadline {
            a.pump(peer: b)
            delivered += b.pump(peer: a).filter { if case .hello = $0 { false } else { true } }
            usleep(2_000)
        }
        #expect(delivered.contains(.message(from: a.id, channel: ChorusChannel.membership, payload: message)), "the full-size message did not arrive whole")
        #expect(delivered.contains { if case let .object(o) = $0 { o.sender == a.id && o.bytes == object } else { false } }, "the object did not arrive whole")
        #expect(a.wire.totalRejected == 0 && b.wire.totalRejected == 0, "rejections: \(a.wire.rejections) \(b.wire.rejections)")
        #expect(b.largest == maxDatagramSize)
        try group.syncShutdownGracefully()
    }

    @Test("a datagram longer than this peer's max_datagram_size is rejected as too long, not as a bad tag")
    func longerThanAccepted() throws {
        var small = WireSettings(), large = WireSettings()
        small.maxDatagramSize = 8000
        large.maxDatagramSize = 65_507
        let keyring = NetworkKeyring([NetworkKey.generate()])
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let sender = try Endpoint(settings: large, keyring: keyring, on: group.next())
        let receiver = try Endpoint(settings: small, keyring: keyring, on: group.next())
        sender.send(.object(PreparedObject(channel: ChorusChannel.parameters, bytes: [UInt8](repeating: 1, count: 200_000))), to: receiver)
        let deadline = Date().addingTimeInterval(5)
        while receiver.wire.rejections[.tooLong] == nil && Date() < deadline {
            sender.pump(peer: receiver)
            _ = receiver.pump(peer: sender)
            usleep(2_000)
        }
        #expect(receiver.wire.rejections[.tooLong] != nil, "rejections: \(receiver.wire.rejections)")
        #expect(receiver.wire.rejections[.badTag] == nil, "rejections: \(receiver.wire.rejections)")
        try group.syncShutdownGracefully()
    }

    @Test("two peer processes with a large max_datagram_size mix each other's parameters", arguments: [8000, 65_507])
    func peerProcesses(maxDatagramSize: Int) throws {
        let binary = try #require(ChorusBinary.path, "chorus binary not built")
        var options = LocalNetwork.Options(executable: binary)
        options.peers = 2
        options.maxDatagramSize = maxDatagramSize
        let network = try LocalNetwork(options: options)
        defer { network.discard() }
        try network.start(0)
        try network.start(1)
        try network.waitUntilReady([0, 1])
        var statuses: [PeerStatus] = []
        let deadline = Date().addingTimeInterval(30)
        repeat {
            Thread.sleep(forTimeInterval: 0.5)
            statuses = try (0..<2).map { try AdminClient.status(at: network.members[$0].admin) }
        } while !statuses.allSatisfy({ $0.mixes >= 5 && $0.neighbours.allSatisfy { $0.weight > 0 } }) && Date() < deadline
        for status in statuses {
            #expect(status.neighbours.count == 1 && status.neighbours.allSatisfy { $0.weight > 0 }, "\(status.peerId.prefix(8)) mixes alone: \(status.neighbours)")
            #expect(status.datagramsRejected == 0, "\(status.peerId.prefix(8)) rejected \(status.rejections)")
            #expect(status.payloadBytesReceived["parameters"] ?? 0 > 0, "\(status.payloadBytesReceived)")
        }
    }
}

/// One side of the in-process exchange: a real UDP socket and a datagram layer.
private final class Endpoint: Sendable {
    let transport: UDPTransport
    let address: SocketAddress
    private let state: NIOLockedValueBox<(wire: WireEndpoint, inbox: [[UInt8]], largest: Int)>

    var id: PeerID { state.withLockedValue { $0.wire.localID } }
    var wire: WireEndpoint { state.withLockedValue { $0.wire } }
    /// The longest datagram received.
    var largest: Int { state.withLockedValue { $0.largest } }

    init(settings: WireSettings, keyring: NetworkKeyring, on loop: EventLoop) throws {
        let state = NIOLockedValueBox((wire: WireEndpoint(identity: SigningKey.generate(), keyring: keyring, epoch: 1, settings: settings),
                                       inbox: [[UInt8]](), largest: 0))
        self.state = state
        transport = try UDPTransport.bound(host: "127.0.0.1", port: 0, maxDatagramSize: settings.maxDatagramSize, on: loop) { bytes, _ in
            state.withLockedValue { $0.inbox.append(bytes); $0.largest = max($0.largest, bytes.count) }
        }.wait()
        address = try #require(transport.localAddress)
    }

    func send(_ item: Outgoing, to peer: Endpoint) {
        let datagrams = state.withLockedValue { $0.wire.send(item, to: peer.id, now: Date().timeIntervalSince1970) }
        transport.send(datagrams, to: peer.address)
    }

    /// Opens what arrived, answers hellos and sends what waited for them; returns the deliveries.
    @discardableResult
    func pump(peer: Endpoint) -> [Delivery] {
        let (deliveries, out) = state.withLockedValue { s -> ([Delivery], [[UInt8]]) in
            var deliveries: [Delivery] = [], out: [[UInt8]] = []
            for bytes in s.inbox {
                let reception = s.wire.receive(bytes, now: Date().timeIntervalSince1970)
                deliveries += reception.deliveries
                out += reception.replies + reception.flushed
            }
            s.inbox = []
            return (deliveries, out)
        }
        transport.send(out, to: peer.address)
        return deliveries
    }
}
