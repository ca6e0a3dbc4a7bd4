import ChorusCore
import ChorusCrypto
import ChorusLearning
import Foundation
import Logging
import NIOConcurrencyHelpers
import NIOCore
import NIOEmbedded
@testable import ChorusPeer

/// Real `PeerNode`s in the test process, with no socket or process: every node runs on one
/// `EmbeddedEventLoop`, whose clock is virtual, and sends through an `InMemorySwitch`.
/// `advance(by:)` runs, in order, every timer, delivery and learning job due meanwhile; with the
/// keys, seeds and wall clock fixed too, a run repeats exactly. (Each node's `AddressResolver`
/// still starts its two lookup threads; addresses here are IP literals, which never use them.)
///
/// Confined to the thread that made it (an `EmbeddedEventLoop` is): use it from a synchronous test.
final class InProcessNetwork {
    /// Wall-clock seconds at virtual time 0 for every node (gossip rounds are aligned to it).
    static let unixTimeAtZero = 1_800_000_000.0

    let loop = EmbeddedEventLoop()
    let wires: InMemorySwitch
    let networkKey: NetworkKey
    let directory: String
    private(set) var peers: [TestPeer] = []
    private var stopped = false
    private let keySeed: UInt8

    /// `latency`: seconds every datagram takes through the switch. `keySeed` picks the network key
    /// and the nodes' identities (real Ed25519 keys from fixed seeds: ids order the topology and
    /// phase the probes, so they are part of what repeats).
    init(latency: Double = 0.001, keySeed: UInt8 = 1) throws {
        self.keySeed = keySeed
        networkKey = try NetworkKey(bytes: [UInt8](repeating: keySeed, count: NetworkKey.byteCount))
        wires = InMemorySwitch(loop: loop, latency: latency)
        directory = NSTemporaryDirectory() + "chorus-in-process-\(UInt64.random(in: 0...UInt64.max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    }

    deinit {
        shutdown()
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// 192.0.2.N:7000: a documentation address (TEST-NET-1), never a host.
    static func address(_ n: Int) -> SocketAddress { try! SocketAddress(ipAddress: "192.0.2.\(n)", port: 7000) }

    /// Virtual seconds since the network was made (every node's `now`, as nodes are made at 0).
    var now: Double { Double(loop.now.uptimeNanoseconds) / 1e9 }

    /// A node at 192.0.2.(its index + 1) with real keys: softmax on the digits, a third of the
    /// training set each, complete topology, the fast membership profile, no checkpoint files.
    /// `configure` edits the configuration before the learner is made; `learningSeconds` is how
    /// long each learning job takes on the virtual clock. Not started.
    func makePeer(learningSeconds: Double = 0, configure: (inout PeerConfig) -> Void = { _ in }) throws -> TestPeer {
        let index = peers.count
        let address = Self.address(index + 1)
        let file = directory + "/peer\(index + 1).toml"
        var config = try PeerConfig.parse("""
            [peer]
            bind = "192.0.2.\(index + 1):7000"
            identity = "peer\(index + 1)"
            network_key = "network.key"
            checkpoint_interval_s = 0

            [data]
            shards = 3
            shard = \(index % 3)

            [gossip]
            topology = "complete"

            [membership]
            profile = "fast"
            """, file: file)
        configure(&config)
        let identity = try SigningKey(seed: [keySeed, UInt8(index + 1)] + [UInt8](repeating: 0, count: 30))
        let log = LogRecorder()
        let worker = VirtualLearningWorker(seconds: learningSeconds)
        let node = PeerNode(
            config: config, identity: identity, keyring: NetworkKeyring([networkKey]), bootEpoch: UInt64(Self.unixTimeAtZero), learner: try config.makeLearner(),
            loop: loop, log: log.logger(peer: index + 1), worker: worker, unixTimeAtZero: Self.unixTimeAtZero, seed: UInt64(index + 1))
        let peer = TestPeer(node: node, identity: identity, address: address, worker: worker, log: log)
        peer.transport = wires.attach(address) { bytes, source in node.receive(bytes, from: source) }
        peers.append(peer)
        return peer
    }

    /// Starts `peer` with these entry points, as `PeerRunner` does once its socket is bound.
    func start(_ peer: TestPeer, seeds: [SocketAddress] = [], knownPeers: [TestPeer] = []) {
        var known: [PeerID: SocketAddress] = [:]
        for other in knownPeers { known[other.id] = other.address }
        peer.node.start(transport: peer.transport!, seeds: seeds, knownPeers: known)
    }

    /// Runs the loop for `seconds` of virtual time.
    func advance(by seconds: Double) {
        loop.advanceTime(by: .nanoseconds(Int64((seconds * 1e9).rounded())))
    }

    /// Runs the loop to the first instant at which the nodes' clocks read `seconds` (where a
    /// node's timer for that deadline fires).
    func advance(to seconds: Double) {
        loop.advanceTime(to: NIODeadline.uptimeNanoseconds(UInt64(PeerNode.nanoseconds(reaching: seconds))))
    }

    /// Advances in steps of `step` until `condition` holds or `limit` virtual seconds have passed;
    /// whether it holds.
    @discardableResult
    func advance(until condition: () -> Bool, within limit: Double, step: Double = 0.05) -> Bool {
        let end = now + limit
        while !condition() {
            guard now < end else { return false }
            advance(by: step)
        }
        return true
    }

    /// Whether every pair of nodes in `peers` sees the other alive.
    func allAlive(_ peers: [TestPeer]) -> Bool {
        peers.allSatisfy { a in peers.allSatisfy { b in a === b || a.instance.membership.status(of: b.id) == .alive } }
    }

    /// `PeerNode.stop` (timer, worker, resolver threads), once: the last checkpoint and its writer.
    @discardableResult
    func stop(_ peer: TestPeer) -> (Checkpoint, CheckpointWriter)? {
        guard !peer.isStopped else { return nil }
        peer.isStopped = true
        return peer.node.stop()
    }

    /// Stops every node and then the loop, which runs what is due and cancels the rest (an
    /// `EmbeddedEventLoop` must not be freed with tasks pending).
    func shutdown() {
        guard !stopped else { return }
        stopped = true
        for peer in peers { stop(peer) }
        try? loop.syncShutdownGracefully()
    }
}

/// One node of an `InProcessNetwork` and what the test reads of it.
final class TestPeer {
    let node: PeerNode
    let identity: SigningKey
    let address: SocketAddress
    let worker: VirtualLearningWorker
    let log: LogRecorder
    fileprivate(set) var transport: InMemoryTransport?
    fileprivate(set) var isStopped = false

    init(node: PeerNode, identity: SigningKey, address: SocketAddress, worker: VirtualLearningWorker, log: LogRecorder) {
        self.node = node
        self.identity = identity
        self.address = address
        self.worker = worker
        self.log = log
    }

    var id: PeerID { identity.peerID }
    var instance: PeerInstance { node.instance }
    func status() -> PeerStatus { node.status() }
    var parameters: [Float] { instance.learner.parameters }
}

/// Carries datagrams between the transports attached to it, each after `latency` on the loop's
/// virtual clock (never synchronously: a UDP send does not re-enter the sender), and records
/// every one. Addresses nobody is attached to swallow what is sent to them (counted).
final class InMemorySwitch {
    struct Datagram {
        /// Virtual seconds when it was sent.
        var at: Double
        var from: SocketAddress
        var to: SocketAddress
        var bytes: [UInt8]
    }

    let loop: EmbeddedEventLoop
    let latency: TimeAmount
    /// Every datagram sent or injected, in order.
    private(set) var datagrams: [Datagram] = []
    /// Datagrams for an address nobody is attached to.
    private(set) var undeliverable = 0
    private var hosts: [SocketAddress: ([UInt8], SocketAddress) -> Void] = [:]

    init(loop: EmbeddedEventLoop, latency: Double) {
        self.loop = loop
        self.latency = .nanoseconds(Int64((latency * 1e9).rounded()))
    }

    /// A transport sending from `address`; what arrives for `address` goes to `receive`.
    func attach(_ address: SocketAddress, receive: @escaping ([UInt8], SocketAddress) -> Void) -> InMemoryTransport {
        precondition(hosts[address] == nil, "\(address) is taken")
        hosts[address] = receive
        return InMemoryTransport(address: address, network: self)
    }

    /// Sends datagrams as if from `source` (which need not be attached): a foreign host.
    func send(_ datagrams: [[UInt8]], from source: SocketAddress, to destination: SocketAddress) {
        let at = Double(loop.now.uptimeNanoseconds) / 1e9
        for bytes in datagrams {
            self.datagrams.append(Datagram(at: at, from: source, to: destination, bytes: bytes))
            loop.assumeIsolated().scheduleTask(deadline: loop.now + latency) { [self] in
                guard let host = hosts[destination] else { return undeliverable += 1 }
                host(bytes, source)
            }
        }
    }

    func sent(from source: SocketAddress) -> [Datagram] { datagrams.filter { $0.from == source } }
    func sent(to destination: SocketAddress) -> [Datagram] { datagrams.filter { $0.to == destination } }
}

/// A node's side of the switch. `@unchecked Sendable` as `DatagramTransport` asks: it is used only
/// on the switch's loop.
final class InMemoryTransport: DatagramTransport, @unchecked Sendable {
    let address: SocketAddress
    /// Weak: the switch holds the nodes (through their receive closures), the nodes hold this.
    private weak var network: InMemorySwitch?
    private(set) var isClosed = false

    init(address: SocketAddress, network: InMemorySwitch) {
        self.address = address
        self.network = network
    }

    func send(_ datagrams: [[UInt8]], to address: SocketAddress) {
        guard !isClosed, !datagrams.isEmpty else { return }
        network?.send(datagrams, from: self.address, to: address)
    }

    func close() async { isClosed = true }
}

/// Learning jobs on the loop's virtual clock: each takes `seconds` of virtual time (0: it comes
/// back at the loop's next turn, never within the call that started it, like a worker thread's).
final class VirtualLearningWorker: LearningWorker {
    var seconds: Double
    private(set) var jobs = 0

    init(seconds: Double) { self.seconds = seconds }

    func run(_ job: LearningJob, on loop: EventLoop) -> EventLoopFuture<(result: LearningResult, seconds: Double)> {
        jobs += 1
        let seconds = self.seconds
        return loop.scheduleTask(deadline: loop.now + .nanoseconds(Int64((seconds * 1e9).rounded()))) { (job.run(), seconds) }.futureResult
    }

    func shutdown() {}
}

/// Keeps what a node logs, for tests that look for a warning.
final class LogRecorder: Sendable {
    struct Entry: Sendable {
        var level: Logger.Level
        var message: String
    }

    private let box = NIOLockedValueBox<[Entry]>([])

    var entries: [Entry] { box.withLockedValue { $0 } }

    func logger(peer: Int) -> Logger {
        var logger = Logger(label: "peer\(peer)") { _ in Handler(recorder: self) }
        logger.logLevel = .info
        return logger
    }

    /// Entries of at least `level` whose message contains `text`.
    func count(_ text: String, atLeast level: Logger.Level = .trace) -> Int {
        entries.filter { $0.level >= level && $0.message.contains(text) }.count
    }

    fileprivate func append(_ entry: Entry) { box.withLockedValue { $0.append(entry) } }

    private struct Handler: LogHandler {
        let recorder: LogRecorder
        var metadata: Logger.Metadata = [:]
        var metadataProvider: Logger.MetadataProvider?
        var logLevel: Logger.Level = .info

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(event: LogEvent) {
            recorder.append(Entry(level: event.level, message: event.message.description))
        }
    }
}
