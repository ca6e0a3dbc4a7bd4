import ChorusAveraging
import ChorusCrypto
import ChorusLearning
import ChorusWire
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Prometheus

/// One running peer: the shell that drives the pure state machines (datagram layer, averaging,
/// local training) with a real UDP socket, the wall clock and timers.
///
/// Every mutable field is confined to `loop`: datagrams, timers and admin requests all run there,
/// so there are no locks and no data races (hence `@unchecked Sendable`).
public final class PeerNode: @unchecked Sendable {
    public let config: PeerConfig
    public let identity: SigningKey
    public let bootEpoch: UInt64
    let loop: EventLoop
    private var wire: WireEndpoint
    private var averager: GossipAverager<PeerID>
    private var learner: Learner
    private var transport: UDPTransport?
    private var addresses: [PeerID: SocketAddress] = [:]
    private var neighbourAddressText: [PeerID: String] = [:]
    private let origin = NIODeadline.now()
    private var timers: [RepeatedTask] = []
    private var bytesSent = 0, bytesReceived = 0, datagramsSent = 0, datagramsReceived = 0
    private var lastEvaluation: Evaluation = .init(loss: .nan, accuracy: 0)
    private var trainLoss = Double.nan
    let metrics = PeerMetrics()

    init(config: PeerConfig, identity: SigningKey, network: NetworkKey, bootEpoch: UInt64, learner: Learner, loop: EventLoop) {
        self.config = config
        self.identity = identity
        self.bootEpoch = bootEpoch
        self.loop = loop
        self.learner = learner
        self.wire = WireEndpoint(identity: identity, keyring: NetworkKeyring([network]), epoch: bootEpoch, settings: config.wire)
        self.averager = GossipAverager(dimension: learner.parameterCount, neighbours: config.neighbours.map(\.id), settings: config.averaging)
    }

    /// Seconds since this peer started (monotonic).
    var now: Double { Double((NIODeadline.now() - origin).nanoseconds) / 1e9 }

    // MARK: Life cycle

    func start(transport: UDPTransport, neighbourAddresses: [PeerID: SocketAddress]) {
        loop.preconditionInEventLoop()
        self.transport = transport
        addresses = neighbourAddresses
        for n in config.neighbours { neighbourAddressText[n.id] = n.address.description }
        lastEvaluation = learner.evaluate()
        // Say hello to every neighbour so epochs are known before the first parameters go out.
        for (peer, address) in addresses {
            send(wire.send(.message(channel: 0, payload: []), to: peer, now: now), to: address)
        }
        schedule(every: config.gossipInterval) { $0.gossipRound() }
        schedule(every: config.evaluationInterval) { $0.lastEvaluation = $0.learner.evaluate() }
        schedule(every: 0.5) { $0.housekeeping() }
    }

    private func schedule(every seconds: Double, _ body: @escaping @Sendable (PeerNode) -> Void) {
        let interval = TimeAmount.nanoseconds(Int64(seconds * 1e9))
        timers.append(loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [unowned self] _ in body(self) })
    }

    /// Stops timers and returns the checkpoint to save.
    func stop() -> Checkpoint {
        loop.preconditionInEventLoop()
        for t in timers { t.cancel() }
        timers = []
        return learner.checkpoint(model: config.model.description)
    }

    // MARK: Network

    func receive(_ bytes: [UInt8], from address: SocketAddress) {
        bytesReceived += bytes.count
        datagramsReceived += 1
        let t = now
        let reception = wire.receive(bytes, now: t)
        send(reception.replies, to: address)
        if let sender = reception.sender {
            send(reception.flushed, to: addresses[sender] ?? address)
        }
        for delivery in reception.deliveries {
            guard case let .object(object) = delivery, object.channel == ChorusChannel.parameters else { continue }
            guard let message = ParametersMessage.decode(object.bytes) else {
                metrics.malformedParameters += 1
                continue
            }
            averager.receive(from: object.sender, vector: message.vector, degree: message.degree, now: t)
        }
    }

    private func send(_ datagrams: [[UInt8]], to address: SocketAddress) {
        guard let transport, !datagrams.isEmpty else { return }
        transport.send(datagrams, to: address)
        datagramsSent += datagrams.count
        bytesSent += datagrams.reduce(0) { $0 + $1.count }
    }

    // MARK: Training and gossip

    /// One round: local SGD steps, send parameters to every neighbour, mix what has arrived.
    func gossipRound() {
        let t = now
        learner.applySchedule(base: config.learningRate, cosineSteps: config.cosineSteps)
        for _ in 0..<config.stepsPerRound {
            let loss = Double(learner.step())
            trainLoss = trainLoss.isNaN ? loss : 0.95 * trainLoss + 0.05 * loss
        }
        let message = ParametersMessage(step: learner.steps, degree: max(1, averager.degree(now: t)), vector: learner.parameters)
        let object = PreparedObject(channel: ChorusChannel.parameters, bytes: message.encoded())
        for neighbour in config.neighbours {
            guard let address = addresses[neighbour.id] else { continue }
            send(wire.send(.object(object), to: neighbour.id, now: t), to: address)
        }
        var parameters = learner.parameters
        let report = averager.mix(&parameters, now: t)
        if !report.weights.isEmpty { learner.parameters = parameters }
    }

    private func housekeeping() {
        for (peer, hello) in wire.tick(now: now) {
            if let address = addresses[peer] { send([hello], to: address) }
        }
    }

    // MARK: Admin

    func status() -> PeerStatus {
        let t = now
        let (selfWeight, weights) = averager.currentWeights(now: t)
        var rejections: [String: Int] = [:]
        for (reason, count) in wire.rejections { rejections[reason.rawValue] = count }
        for (reason, count) in averager.rejections { rejections["parameters." + reason.rawValue] = count }
        if metrics.malformedParameters > 0 { rejections["parameters.malformed"] = metrics.malformedParameters }
        let neighbours = config.neighbours.map { n in
            PeerStatus.Neighbour(
                id: n.id.description, address: n.address.description, weight: weights[n.id] ?? 0,
                lastHeard: averager.lastHeard[n.id].map { t - $0 }, degree: averager.lastDegree[n.id])
        }
        return PeerStatus(
            peerId: identity.peerID.description, address: config.advertise.description, bootEpoch: bootEpoch,
            uptime: t, model: config.model.description, parameterCount: learner.parameterCount,
            step: learner.steps, epoch: learner.epoch, loss: lastEvaluation.loss, testAccuracy: lastEvaluation.accuracy,
            trainLoss: trainLoss, learningRate: learner.learningRate, selfWeight: selfWeight, neighbours: neighbours,
            bytesSent: bytesSent, bytesReceived: bytesReceived, datagramsSent: datagramsSent,
            datagramsReceived: datagramsReceived,
            datagramsRejected: wire.totalRejected, rejections: rejections,
            mixes: averager.mixes, contributionsMixed: averager.contributionsMixed)
    }

    func parameterBytes() -> [UInt8] {
        learner.parameters.withUnsafeBytes { Array($0) }
    }

    func metricsText() -> [UInt8] {
        metrics.render(status())
    }
}

/// Prometheus exposition of a peer's status (swift-prometheus).
final class PeerMetrics: @unchecked Sendable {
    // @unchecked: used only on the peer's event loop.
    let registry = PrometheusCollectorRegistry()
    var malformedParameters = 0
    private var reported: [String: Int] = [:]

    func render(_ s: PeerStatus) -> [UInt8] {
        gauge("step", "Local SGD steps taken").set(Double(s.step))
        gauge("epoch", "Passes over the local shard").set(Double(s.epoch))
        gauge("test_accuracy", "Accuracy on the held-out test set at the last evaluation").set(s.testAccuracy)
        gauge("test_loss", "Loss on the held-out test set at the last evaluation").set(s.loss)
        gauge("learning_rate", "Current learning rate").set(s.learningRate)
        gauge("active_neighbours", "Neighbours heard within the silence timeout").set(Double(s.neighbours.filter { $0.weight > 0 }.count))
        advance("bytes_sent_total", "UDP payload bytes sent", to: s.bytesSent)
        advance("bytes_received_total", "UDP payload bytes received", to: s.bytesReceived)
        advance("datagrams_sent_total", "Datagrams sent", to: s.datagramsSent)
        advance("datagrams_received_total", "Datagrams received", to: s.datagramsReceived)
        advance("datagrams_rejected_total", "Datagrams dropped by the datagram layer", to: s.datagramsRejected)
        advance("mixes_total", "Averaging rounds", to: s.mixes)
        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }

    private func gauge(_ name: String, _ help: String) -> Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "chorus", metricName: name, unitName: "", helpText: help))
    }

    private func advance(_ name: String, _ help: String, to value: Int) {
        let delta = value - (reported[name] ?? 0)
        if delta > 0 {
            registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "chorus", metricName: name, unitName: "", helpText: help))
                .increment(by: Int64(delta))
        }
        reported[name] = value
    }
}
