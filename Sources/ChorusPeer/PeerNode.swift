import ChorusAveraging
import ChorusCrypto
import ChorusLearning
import ChorusMembership
import ChorusWire
import Foundation
import NIOCore
import NIOPosix

/// Application channels carried by the datagram layer.
public enum ChorusChannel {
    /// A peer's parameter vector for gossip averaging (object).
    public static let parameters: UInt8 = 1
    /// A membership message: ping, ack, ping request, nack, gossip (message).
    public static let membership: UInt8 = 2
    /// A membership sync: a whole view (object).
    public static let membershipSync: UInt8 = 3
    /// "Send me your model" from a joining peer (message, empty).
    public static let modelRequest: UInt8 = 4
    /// The answer: a `ParametersMessage` (object).
    public static let model: UInt8 = 5
}

/// One running peer: the shell that drives the pure state machines (datagram layer, membership,
/// averaging, local training) with a real UDP socket, the wall clock and timers.
///
/// Every mutable field is confined to `loop`: datagrams, timers and admin requests all run there,
/// so there are no locks and no data races (hence `@unchecked Sendable`).
public final class PeerNode: @unchecked Sendable {
    public enum Phase: String, Sendable {
        /// Waiting for the network's current model before contributing (started with --join).
        case joining
        case training
        /// Announced "left"; finishing.
        case leaving
    }

    public let config: PeerConfig
    public let identity: SigningKey
    public let bootEpoch: UInt64
    let loop: EventLoop
    private(set) var phase: Phase
    private var wire: WireEndpoint
    private var membership: MembershipInstance
    private var averager: GossipAverager<PeerID>
    private var learner: Learner
    private var transport: UDPTransport?
    private var rng = SystemRandomNumberGenerator()
    /// Resolved addresses of peers we talk to (members, seeds, configured neighbours).
    private var addresses: [PeerID: SocketAddress] = [:]
    private var resolved: [String: SocketAddress] = [:]
    private var neighbours: [PeerID] = []
    private var seedAddresses: [SocketAddress] = []
    private let origin = NIODeadline.now()
    private var timers: [RepeatedTask] = []
    private var bytesSent = 0, bytesReceived = 0, datagramsSent = 0, datagramsReceived = 0, datagramsFaulted = 0
    private var lastEvaluation: Evaluation = .init(loss: .nan, accuracy: .nan)
    private var trainLoss = Double.nan
    private var joinStartedAt = 0.0
    private var lastModelRequest = -Double.infinity
    private var modelRequests = 0
    private let log: @Sendable (String) -> Void
    let metrics = PeerMetrics()

    init(config: PeerConfig, identity: SigningKey, network: NetworkKey, bootEpoch: UInt64, learner: Learner,
         loop: EventLoop, log: @escaping @Sendable (String) -> Void) {
        self.config = config
        self.identity = identity
        self.bootEpoch = bootEpoch
        self.loop = loop
        self.learner = learner
        self.log = log
        self.phase = config.fetchModel ? .joining : .training
        self.wire = WireEndpoint(identity: identity, keyring: NetworkKeyring([network]), epoch: bootEpoch, settings: config.wire)
        self.membership = MembershipInstance(
            key: identity, address: config.advertise.description, incarnation: bootEpoch << 16,
            settings: config.membership, now: 0, unixTimeAtZero: Date().timeIntervalSince1970)
        self.averager = GossipAverager(dimension: learner.parameterCount, neighbours: [PeerID](), settings: config.averaging)
    }

    /// Seconds since this peer started (monotonic).
    var now: Double { Double((NIODeadline.now() - origin).nanoseconds) / 1e9 }

    // MARK: Life cycle

    func start(transport: UDPTransport, seeds: [SocketAddress], knownPeers: [PeerID: SocketAddress]) {
        loop.preconditionInEventLoop()
        self.transport = transport
        seedAddresses = seeds
        joinStartedAt = now
        if phase == .training { lastEvaluation = learner.evaluate() }
        // Configured neighbours are seeds whose ids we already know; the rest are addresses.
        for (peer, address) in knownPeers {
            addresses[peer] = address
            perform(membership.join(seed: peer, address: describe(address), now: now))
        }
        let hello = wire.hello(now: now)
        for address in seeds { send([hello], to: address, peer: nil) }
        schedule(every: config.gossipInterval) { $0.gossipRound() }
        schedule(every: config.evaluationInterval) { node in
            if node.phase == .training { node.lastEvaluation = node.learner.evaluate() }
        }
        schedule(every: 0.05) { $0.membershipTick() }
        schedule(every: 0.25) { $0.housekeeping() }
    }

    private func schedule(every seconds: Double, _ body: @escaping @Sendable (PeerNode) -> Void) {
        let interval = TimeAmount.nanoseconds(Int64(seconds * 1e9))
        timers.append(loop.scheduleRepeatedTask(initialDelay: interval, delay: interval) { [unowned self] _ in body(self) })
    }

    /// Graceful leave: announce "left" (signed) to members directly and by gossip, hand the current
    /// parameters to the neighbours one last time, and stop training. Membership keeps running
    /// until `stop()` so the announcement spreads.
    func leave() {
        loop.preconditionInEventLoop()
        guard phase != .leaving else { return }
        let wasTraining = phase == .training
        phase = .leaving
        perform(membership.leave(now: now, rng: &rng))
        if wasTraining { sendParameters(now: now) }
    }

    /// The model to save while running; nil until the peer trains its own (joining) or once leaving.
    func runningCheckpoint() -> Checkpoint? {
        loop.preconditionInEventLoop()
        return phase == .training ? learner.checkpoint(model: config.model.description) : nil
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
        if config.faults.blocks(incoming: bytes) {
            datagramsFaulted += 1
            return
        }
        bytesReceived += bytes.count
        datagramsReceived += 1
        let t = now
        let reception = wire.receive(bytes, now: t)
        send(reception.replies, to: address, peer: nil)
        if let sender = reception.sender {
            send(reception.flushed, to: addresses[sender] ?? address, peer: sender)
        }
        for delivery in reception.deliveries {
            switch delivery {
            case let .hello(peer):
                // Someone we may not know yet (a seed answering, a newcomer, a restarted peer):
                // exchange views through it.
                if membership.status(of: peer) == nil || seedAddresses.contains(address) {
                    addresses[peer] = addresses[peer] ?? address
                    perform(membership.join(seed: peer, address: describe(address), now: t))
                }
            case let .message(from, channel, payload):
                handleMessage(from: from, channel: channel, payload: payload, source: address, now: t)
            case let .object(object):
                handleObject(object, source: address, now: t)
            }
        }
    }

    private func handleMessage(from sender: PeerID, channel: UInt8, payload: [UInt8], source: SocketAddress, now t: Double) {
        switch channel {
        case ChorusChannel.membership:
            guard let message = MembershipMessage.decode(payload) else { return count("membership.malformed") }
            perform(membership.receive(message, from: sender, address: describe(source), now: t, rng: &rng))
        case ChorusChannel.modelRequest:
            // Only a peer that is itself training has a model worth handing over.
            guard phase == .training else { return }
            let message = ParametersMessage(step: learner.steps, degree: max(1, averager.degree(now: t)), vector: learner.parameters)
            sendObject(PreparedObject(channel: ChorusChannel.model, bytes: message.encoded()), to: sender, address: addresses[sender] ?? source)
        default:
            count("channel.unknown")
        }
    }

    private func handleObject(_ object: CompletedObject, source: SocketAddress, now t: Double) {
        switch object.channel {
        case ChorusChannel.parameters:
            guard phase == .training else { return }
            guard let message = ParametersMessage.decode(object.bytes) else { return count("parameters.malformed") }
            averager.receive(from: object.sender, vector: message.vector, degree: message.degree, now: t)
        case ChorusChannel.membershipSync:
            guard let message = MembershipMessage.decode(object.bytes), case .sync = message else { return count("membership.malformed") }
            perform(membership.receive(message, from: object.sender, address: describe(source), now: t, rng: &rng))
        case ChorusChannel.model:
            guard phase == .joining else { return }
            guard let message = ParametersMessage.decode(object.bytes), message.vector.count == learner.parameterCount,
                  message.vector.allSatisfy(\.isFinite)
            else { return count("model.rejected") }
            learner.adopt(parameters: message.vector, step: message.step)
            phase = .training
            lastEvaluation = learner.evaluate()
            log("chorus peer \(identity.peerID.short): joined with the model of \(object.sender.short) at step \(message.step) (test accuracy \(String(format: "%.1f", lastEvaluation.accuracy * 100)) %)")
        default:
            count("channel.unknown")
        }
    }

    private func count(_ reason: String) {
        metrics.otherRejections[reason, default: 0] += 1
    }

    private func perform(_ directives: [MembershipDirective]) {
        var viewChanged = false
        for directive in directives {
            switch directive {
            case let .send(message, to, address):
                guard let destination = addresses[to] ?? resolve(address) else { continue }
                if message.isBulk {
                    sendObject(PreparedObject(channel: ChorusChannel.membershipSync, bytes: message.encoded()), to: to, address: destination)
                } else {
                    send(wire.send(.message(channel: ChorusChannel.membership, payload: message.encoded()), to: to, now: now), to: destination, peer: to)
                }
            case let .event(event):
                let changed = record(event)  // always record: `||` would skip it once a change was seen
                viewChanged = viewChanged || changed
            }
        }
        if viewChanged { recomputeNeighbours() }
    }

    /// Logs a membership event; returns whether the live set may have changed.
    private func record(_ event: MembershipEvent) -> Bool {
        switch event {
        case let .joined(peer, address):
            if let a = resolve(address) { addresses[peer] = a }
            log("member \(peer.short) alive at \(address)")
            return true
        case let .failed(peer):
            log("member \(peer.short) failed")
            return true
        case let .left(peer):
            log("member \(peer.short) left")
            return true
        case let .removed(peer):
            wire.forget(peer)
            addresses[peer] = nil
            return true
        case let .addressChanged(peer, address):
            if let a = resolve(address) { addresses[peer] = a }
            return false
        case let .suspected(peer, by):
            log("member \(peer.short) suspected by \(by.short)")
            return false
        case let .refuted(peer):
            log("member \(peer.short) refuted a suspicion")
            return false
        case let .refutedAccusation(incarnation, by):
            log("refuted an accusation by \(by.short) (incarnation now \(incarnation))")
            return false
        }
    }

    /// Neighbours are a deterministic function of the live member set (membership.topology).
    private func recomputeNeighbours() {
        let next = config.topology.neighbours(of: identity.peerID, in: membership.liveMembers)
        guard next != neighbours else { return }
        neighbours = next
        averager.setNeighbours(next)
    }

    private func send(_ datagrams: [[UInt8]], to address: SocketAddress, peer: PeerID?) {
        guard let transport, !datagrams.isEmpty else { return }
        if config.faults.isActive {
            for datagram in datagrams {
                let delays = config.faults.plan(to: peer, using: &rng)
                if delays.isEmpty { datagramsFaulted += 1 }
                for delay in delays {
                    if delay <= 0 {
                        transport.send([datagram], to: address)
                    } else {
                        loop.scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) { transport.send([datagram], to: address) }
                    }
                    datagramsSent += 1
                    bytesSent += datagram.count
                }
            }
            return
        }
        transport.send(datagrams, to: address)
        datagramsSent += datagrams.count
        bytesSent += datagrams.reduce(0) { $0 + $1.count }
    }

    private func sendObject(_ object: PreparedObject, to peer: PeerID, address: SocketAddress) {
        send(wire.send(.object(object), to: peer, now: now), to: address, peer: peer)
    }

    private func resolve(_ text: String) -> SocketAddress? {
        if let cached = resolved[text] { return cached }
        guard let hp = HostPort(parsing: text), let address = try? SocketAddress.makeAddressResolvingHost(hp.host, port: hp.port) else { return nil }
        resolved[text] = address
        return address
    }

    private func describe(_ address: SocketAddress) -> String {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return HostPort(host: ip, port: port).description
    }

    // MARK: Training, gossip, membership timers

    /// One round: local SGD steps, send parameters to every neighbour, mix what has arrived.
    func gossipRound() {
        guard phase == .training else { return }
        let t = now
        learner.applySchedule(base: config.learningRate, cosineSteps: config.cosineSteps)
        for _ in 0..<config.stepsPerRound {
            let loss = Double(learner.step())
            trainLoss = trainLoss.isNaN ? loss : 0.95 * trainLoss + 0.05 * loss
        }
        sendParameters(now: t)
        var parameters = learner.parameters
        let report = averager.mix(&parameters, now: t)
        if !report.weights.isEmpty { learner.parameters = parameters }
    }

    private func sendParameters(now t: Double) {
        let message = ParametersMessage(step: learner.steps, degree: max(1, averager.degree(now: t)), vector: learner.parameters)
        let object = PreparedObject(channel: ChorusChannel.parameters, bytes: message.encoded())
        for neighbour in neighbours {
            guard let address = addresses[neighbour] else { continue }
            sendObject(object, to: neighbour, address: address)
        }
    }

    private func membershipTick() {
        let t = now
        if t >= membership.nextDeadline { perform(membership.tick(now: t, rng: &rng)) }
    }

    private func housekeeping() {
        let t = now
        for (peer, hello) in wire.tick(now: t) {
            if let address = addresses[peer] { send([hello], to: address, peer: peer) }
        }
        // Seeds we have not heard from yet get another hello.
        if membership.liveMembers.count == 1, !seedAddresses.isEmpty, Int(t * 4) % 4 == 0 {
            let hello = wire.hello(now: t)
            for address in seedAddresses { send([hello], to: address, peer: nil) }
        }
        if phase == .joining { requestModel(now: t) }
    }

    /// A joining peer asks its neighbours, one per second in turn, for their current model; after
    /// 10 s without an answer (e.g. it is the first peer) it starts from its own.
    private func requestModel(now t: Double) {
        if t - joinStartedAt > 10 {
            phase = .training
            lastEvaluation = learner.evaluate()
            log("chorus peer \(identity.peerID.short): no model from the network within 10 s; starting from its own")
            return
        }
        guard !neighbours.isEmpty, t - lastModelRequest >= 1 else { return }
        lastModelRequest = t
        let target = neighbours[modelRequests % neighbours.count]
        modelRequests += 1
        guard let address = addresses[target] else { return }
        send(wire.send(.message(channel: ChorusChannel.modelRequest, payload: []), to: target, now: t), to: address, peer: target)
    }

    // MARK: Admin

    func status() -> PeerStatus {
        let t = now
        let (selfWeight, weights) = averager.currentWeights(now: t)
        var rejections: [String: Int] = [:]
        for (reason, count) in wire.rejections { rejections[reason.rawValue] = count }
        for (reason, count) in averager.rejections { rejections["parameters." + reason.rawValue] = count }
        for (reason, count) in membership.rejections { rejections["claims." + reason.rawValue] = count }
        for (reason, count) in metrics.otherRejections { rejections[reason] = count }
        if datagramsFaulted > 0 { rejections["faults.injected"] = datagramsFaulted }
        let neighbourRows = neighbours.map { id in
            PeerStatus.Neighbour(
                id: id.description, address: membership.members[id]?.address ?? addresses[id].map(describe) ?? "",
                weight: weights[id] ?? 0, lastHeard: averager.lastHeard[id].map { t - $0 }, degree: averager.lastDegree[id])
        }
        var members = [PeerStatus.MemberRow(id: identity.peerID.description, address: config.advertise.description,
                                            status: phase == .leaving ? "left" : "alive", incarnation: membership.incarnation)]
        for m in membership.members.values.sorted(by: { $0.id < $1.id }) {
            members.append(.init(id: m.id.description, address: m.address, status: m.status.description, incarnation: m.incarnation))
        }
        return PeerStatus(
            peerId: identity.peerID.description, address: config.advertise.description, bootEpoch: bootEpoch,
            phase: phase.rawValue, uptime: t, model: config.model.description, parameterCount: learner.parameterCount,
            step: learner.steps, epoch: learner.epoch, loss: lastEvaluation.loss, testAccuracy: lastEvaluation.accuracy,
            trainLoss: trainLoss, learningRate: learner.learningRate, selfWeight: selfWeight, neighbours: neighbourRows,
            members: members, incarnation: membership.incarnation, localHealth: membership.localHealth,
            bytesSent: bytesSent, bytesReceived: bytesReceived, datagramsSent: datagramsSent,
            datagramsReceived: datagramsReceived, datagramsRejected: wire.totalRejected, rejections: rejections,
            mixes: averager.mixes, contributionsMixed: averager.contributionsMixed)
    }

    func parameterBytes() -> [UInt8] {
        learner.parameters.withUnsafeBytes { Array($0) }
    }

    func metricsText() -> [UInt8] {
        metrics.render(status())
    }
}
