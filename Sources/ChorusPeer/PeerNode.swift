import ChorusCore
import ChorusCrypto
import ChorusLearning
import ChorusMembership
import Dispatch
import Foundation
import Logging
import NIOCore

/// The real shell of one peer: it only moves bytes. It owns the transport (the UDP socket in a
/// process, an in-memory switch in the in-process tests), the clock, one timer re-armed at the
/// instance's `nextDeadline`, a worker thread for learning jobs (so a slow step never delays an
/// ack), threads for DNS lookups (same reason), checkpoint files and the numbers behind the admin
/// endpoint. Every protocol decision is the `PeerInstance`'s.
///
/// Not Sendable: it lives on its event loop, and the closures that reach it from elsewhere (the
/// socket, timers, the worker, admin requests) hold it through `NIOLoopBound`, which checks that
/// they run on that loop.
final class PeerNode {
    let config: PeerConfig
    let identity: SigningKey
    let bootEpoch: UInt64
    let loop: EventLoop
    private(set) var instance: PeerInstance
    private var transport: (any DatagramTransport)?
    /// Injected faults: from the configuration at start, replaced live through `POST /faults`.
    private(set) var faults: FaultSettings
    private var faultRNG = SystemRandomNumberGenerator()
    private var resolver: AddressResolver!
    /// Datagrams for an address whose name is being looked up, sent when it resolves.
    private var awaitingLookup: [PeerAddress: [(datagrams: [[UInt8]], peer: PeerID?)]] = [:]
    /// Datagrams held for one address at most while its lookup runs; more are dropped.
    static let maxAwaitingLookup = 1024
    /// The loop's clock when this peer started: `now` counts from it and the timer is set on it.
    /// A real loop's clock is the monotonic one; an `EmbeddedEventLoop`'s is virtual (tests).
    private let origin: NIODeadline
    private var timer: Scheduled<Void>?
    private var armedAt = Double.infinity
    private var datagramsFaulted = 0
    /// Datagrams dropped because their address did not resolve.
    private var unresolved = 0
    private let worker: any LearningWorker
    private let checkpoints: CheckpointWriter
    private let log: Logger
    private let metrics: PeerMetrics
    /// When this peer first heard each member suspected (for `chorus_detection_seconds`).
    private var suspectedAt: [PeerID: Double] = [:]
    /// Averager totals already observed (for `chorus_mix_contributions`).
    private var observedMixes = 0, observedContributions = 0
    /// Called once when a leave has finished lingering.
    private var onStopped: [() -> Void] = []
    /// Called when the peer must stop at once, without a leave (another process took its identity).
    var onFatal: ((String) -> Void)?

    /// The defaults of the last three are a real process's; the in-process tests give a worker
    /// on the loop's virtual clock, and a wall clock and seed of their own so that runs repeat.
    init(config: PeerConfig, identity: SigningKey, keyring: NetworkKeyring, bootEpoch: UInt64, learner: Learner,
         loop: EventLoop, log: Logger, worker: any LearningWorker = ThreadLearningWorker(),
         unixTimeAtZero: Double = Date().timeIntervalSince1970, seed: UInt64 = .random(in: .min ... .max),
         admission: Admission? = nil, revocations: [Claim] = []) {
        self.config = config
        self.identity = identity
        self.bootEpoch = bootEpoch
        self.loop = loop
        self.log = log
        self.faults = config.faults
        self.metrics = PeerMetrics(peer: identity.peerID)
        self.origin = loop.now
        self.instance = PeerInstance(
            identity: identity, keyring: keyring, epoch: bootEpoch, address: config.advertise.description,
            settings: config.peerSettings, learner: learner, now: 0, unixTimeAtZero: unixTimeAtZero, seed: seed,
            admission: admission)
        // Revocations kept from an earlier run: refused from the first datagram (the network
        // would tell them again, but only after the revoked peer had a chance to talk).
        for claim in revocations { _ = instance.revoke(claim, now: 0) }
        self.worker = worker
        self.checkpoints = CheckpointWriter(path: config.checkpointPath, model: config.model.description, log: log)
        let origin = origin
        resolver = AddressResolver(loop: loop, clock: { [loop] in Double((loop.now - origin).nanoseconds) / 1e9 })
        let node = bound
        resolver.onLookup = { node.value.finishLookup($0, $1) }
    }

    /// Seconds since this peer started (monotonic, on the loop's clock).
    var now: Double { Double((loop.now - origin).nanoseconds) / 1e9 }

    private var bound: NIOLoopBound<PeerNode> { NIOLoopBound(self, eventLoop: loop) }

    // MARK: Life cycle

    func start(transport: any DatagramTransport, seeds: [SocketAddress], knownPeers: [PeerID: SocketAddress]) {
        loop.preconditionInEventLoop()
        self.transport = transport
        let known = knownPeers.sorted { $0.key < $1.key }.map { ($0.key, describe($0.value)) }
        run(instance.start(seeds: seeds.map(describe), knownPeers: known, now: now))
    }

    /// Graceful leave; `done` runs on the loop once the instance has lingered (announcement spread).
    func leave(done: @escaping () -> Void) {
        loop.preconditionInEventLoop()
        onStopped.append(done)
        log.debug("leaving: announcing it and handing the parameters to the neighbours",
                  metadata: ["neighbours": "\(instance.neighbours.count)", "step": "\(instance.learner.steps)"])
        run(instance.leave(now: now))
        if instance.phase == .stopped { finishStopping() }
    }

    /// Stops the timer and the worker; returns the checkpoint to save last and the writer that
    /// saves it after any write still queued (never two writers of one file).
    func stop() -> (Checkpoint, CheckpointWriter) {
        loop.preconditionInEventLoop()
        timer?.cancel()
        timer = nil
        armedAt = -.infinity  // never re-armed
        worker.shutdown()
        resolver.shutdown()
        return (checkpoints.checkpoint(instance.snapshot), checkpoints)
    }

    // MARK: Inputs

    func receive(_ bytes: [UInt8], from address: SocketAddress) {
        if faults.filtersIncoming && faults.blocks(incoming: bytes, using: &faultRNG) {
            datagramsFaulted += 1
            return
        }
        run(instance.receive(bytes, from: describe(address), now: now))
    }

    private func fire() {
        timer = nil
        armedAt = .infinity
        run(instance.tick(now: now))
    }

    private func finishLearning(_ result: LearningResult) {
        run(instance.learningFinished(result, now: now))
    }

    // MARK: Directives

    private func run(_ directives: [PeerDirective]) {
        for directive in directives {
            switch directive {
            case let .send(datagrams, address, peer, channel):
                if log.logLevel <= .trace {
                    log.trace("send", metadata: ["address": "\(address)", "member": "\(peer?.short ?? "-")", "channel": "\(channel.map(String.init) ?? "-")",
                                                 "datagrams": "\(datagrams.count)", "bytes": "\(datagrams.reduce(0) { $0 + $1.count })"])
                }
                send(datagrams, to: address, peer: peer)
            case let .learn(job):
                let node = bound
                worker.run(job, on: loop).whenSuccess { result, seconds in
                    node.value.metrics.observeRoundTraining(seconds: seconds)
                    node.value.finishLearning(result)
                }
            case let .saveCheckpoint(snapshot):
                log.debug("saving checkpoint", metadata: ["step": "\(snapshot.steps)", "path": "\(config.checkpointPath)"])
                checkpoints.saveInBackground(checkpoints.checkpoint(snapshot))
            case let .event(event):
                record(event)
            }
        }
        observeMixes()
        if log.logLevel <= .debug { logProbes() }
        arm()
    }

    /// What the failure detector did since the last look (debug): the core logs nothing, so
    /// the shell reads its probe and counters.
    private var loggedProbe: (target: PeerID, sequence: UInt32)?
    private var loggedProbeStats = (failed: 0, indirect: 0)
    private func logProbes() {
        let membership = instance.membership
        let stats = membership.stats
        if stats.indirectProbes > loggedProbeStats.indirect, let p = loggedProbe {
            log.debug("no ack in time: asking others to probe", metadata: ["member": "\(p.target.short)", "sequence": "\(p.sequence)"])
        }
        if stats.failedProbes > loggedProbeStats.failed, let p = loggedProbe {
            log.debug("probe unanswered", metadata: ["member": "\(p.target.short)", "sequence": "\(p.sequence)",
                                                     "local_health": "\(membership.localHealth)"])
        }
        loggedProbeStats = (stats.failedProbes, stats.indirectProbes)
        if let p = membership.currentProbe, p.sequence != loggedProbe?.sequence {
            log.debug("probe", metadata: ["member": "\(p.target.short)", "address": "\(membership.members[p.target]?.address ?? "?")",
                                          "sequence": "\(p.sequence)"])
            loggedProbe = p
        }
    }
    /// Each mix since the last look, as a sample of its size (several at once share the total).
    private func observeMixes() {
        let averager = instance.averager
        let mixes = averager.mixes - observedMixes
        guard mixes > 0 else { return }
        let contributions = averager.contributionsMixed - observedContributions
        for i in 0..<mixes { metrics.observeMix(contributions: contributions / mixes + (i < contributions % mixes ? 1 : 0)) }
        (observedMixes, observedContributions) = (averager.mixes, averager.contributionsMixed)
        if log.logLevel <= .debug {
            log.debug("mixed", metadata: ["contributions": "\(contributions)", "self_weight": "\(instance.lastMix?.selfWeight ?? 1)",
                                          "distance": "\(instance.distanceToNeighbours?.value ?? .nan)", "step": "\(instance.learner.steps)"])
        }
    }

    /// One timer, at the instance's next deadline.
    private func arm() {
        let deadline = instance.nextDeadline
        guard armedAt != -.infinity, deadline != armedAt else { return }
        timer?.cancel()
        armedAt = deadline
        guard deadline.isFinite else { timer = nil; return }
        let node = bound
        timer = loop.scheduleTask(deadline: origin + .nanoseconds(Self.nanoseconds(reaching: deadline))) { node.value.fire() }
    }

    /// The first nanosecond after `origin` at which `now` reads at least `deadline`. Rounding
    /// `deadline · 10⁹` up is not it: 2.5915511270000002 s (a probe 0.2 s after 2.391551127 s)
    /// gives 2591551127 ns, which `now` reads as 2.591551127 s. The tick then found nothing due
    /// and the timer was set again for the same instant: a spin until the clock moved on, and for
    /// ever on the virtual clock of the in-process tests, which found it. (The product can also
    /// round up past a nanosecond that already reads the deadline: one too late.)
    static func nanoseconds(reaching deadline: Double) -> Int64 {
        var nanoseconds = Int64((deadline * 1e9).rounded(.up))
        while Double(nanoseconds) / 1e9 < deadline { nanoseconds += 1 }
        while Double(nanoseconds - 1) / 1e9 >= deadline { nanoseconds -= 1 }
        return nanoseconds
    }

    private func record(_ event: PeerEvent) {
        switch event {
        case let .membership(event):
            switch event {
            case let .joined(peer, address):
                suspectedAt[peer] = nil
                log.info("member alive", metadata: ["member": "\(peer.short)", "address": "\(address)"])
            case let .failed(peer):
                var fields: Logger.Metadata = ["member": "\(peer.short)"]
                if let since = suspectedAt.removeValue(forKey: peer) {
                    metrics.observeDetection(seconds: now - since)
                    fields["suspected_for"] = "\(PeerNode.seconds(now - since))"
                }
                log.notice("member failed", metadata: fields)
            case let .left(peer):
                suspectedAt[peer] = nil
                log.info("member left", metadata: ["member": "\(peer.short)"])
            case let .suspected(peer, by):
                if suspectedAt[peer] == nil { suspectedAt[peer] = now }
                log.info("member suspected", metadata: ["member": "\(peer.short)", "by": "\(by.short)"])
            case let .refuted(peer):
                suspectedAt[peer] = nil
                log.info("member refuted a suspicion", metadata: ["member": "\(peer.short)"])
            case let .refutedAccusation(incarnation, by):
                log.notice("refuted an accusation", metadata: ["by": "\(by.short)", "incarnation": "\(incarnation)"])
            case let .rebooted(peer, epoch): log.info("member started again", metadata: ["member": "\(peer.short)", "epoch": "\(epoch)"])
            case let .removed(peer):
                suspectedAt[peer] = nil
                log.debug("member forgotten (tombstone expired)", metadata: ["member": "\(peer.short)"])
            case let .addressChanged(peer, address): log.info("member moved", metadata: ["member": "\(peer.short)", "address": "\(address)"])
            case .laterSelf: break
            case let .revoked(peer) where peer == identity.peerID:
                let message = "identity \(peer) was revoked by the network authority: no member admits it any more, so this peer stops. To take part again, create a new identity (chorus keygen) and have the authority certify it (chorus certify)"
                log.error("\(message)")
                onFatal?(message)
            case let .revoked(peer):
                suspectedAt[peer] = nil
                log.notice("member revoked by the network authority", metadata: ["member": "\(peer.short)"])
                saveRevocations()
            }
        case let .adoptedModel(from, step):
            log.notice("joined with the network's model", metadata: ["from": "\(from.short)", "step": "\(step)"])
        case let .startedAlone(waited):
            log.warning("no model from the network in time; starting from its own", metadata: ["waited": "\(PeerNode.seconds(waited))"])
        case .stopped:
            finishStopping()
        case let .isolated(seconds, tried):
            log.warning("alone: no answer from the entry points (down, unreachable through a firewall or NAT, a wrong address, or another network key: if the network's key was rotated while this peer was down, put the current key in peer.network_key of \(config.file) and restart); still trying",
                        metadata: ["seconds": "\(Int(seconds))", "tried": "\(tried.joined(separator: ","))",
                                   "network_key": "\(Hex.encode(keyring.primary.keyID))"])
        case let .identityInUse(laterEpoch, address):
            let message = "identity \(identity.peerID) was started again at \(address) (epoch \(laterEpoch), later than this process's \(bootEpoch)): two processes must not share one identity, and the network follows the later one; this one stops. Stop the other process, or give one of them another identity (chorus keygen)"
            log.error("\(message)")
            onFatal?(message)
        case let .reconnected(members):
            log.notice("reconnected", metadata: ["alive": "\(members)"])
        case let .misconfiguredTraffic(.unknownNetworkKey(from, count)):
            log.warning("datagrams under a network key this peer does not hold: a peer configured with another network_key?",
                        metadata: ["address": "\(from)", "count": "\(count)"])
        case let .misconfiguredTraffic(.otherModel(from, theirs, ours)):
            log.warning("a peer sends parameters of another length: it runs another model (check [model] kind on both)",
                        metadata: ["member": "\(from.short)", "theirs": "\(theirs)", "ours": "\(ours)"])
        }
    }

    /// Applies a revocation handed over by the operator (`POST /revocations`); nil when applied
    /// (or already held), else why it was refused.
    func revoke(_ claim: Claim) -> ClaimRejection? {
        loop.preconditionInEventLoop()
        let (refused, directives) = instance.revoke(claim, now: now)
        run(directives)
        return refused
    }

    /// Keeps the revocations beside the checkpoint, so that a restart refuses the revoked at once.
    private func saveRevocations() {
        let path = PeerRunner.revocationsPath(of: config)
        do { try AtomicFile.write(Array(RevocationFile.text(instance.revocations).utf8), to: path) } catch {
            log.warning("could not keep the revocations", metadata: ["path": "\(path)", "error": "\(error)"])
        }
    }

    private func finishStopping() {
        let callbacks = onStopped
        onStopped = []
        for done in callbacks { done() }
    }

    private func send(_ datagrams: [[UInt8]], to address: SocketAddress, peer: PeerID?) {
        guard let transport, !datagrams.isEmpty else { return }
        guard faults.isActive else { return transport.send(datagrams, to: address) }
        for datagram in datagrams {
            let delays = faults.plan(to: peer, using: &faultRNG)
            if delays.isEmpty { datagramsFaulted += 1 }
            for delay in delays {
                if delay <= 0 {
                    transport.send([datagram], to: address)
                } else {
                    loop.scheduleTask(in: .nanoseconds(Int64(delay * 1e9))) { transport.send([datagram], to: address) }
                }
            }
        }
    }

    /// Sends now when the address is known, else once its name resolves (never blocking the loop).
    private func send(_ datagrams: [[UInt8]], to address: PeerAddress, peer: PeerID?) {
        switch resolver.resolve(address) {
        case let .address(destination):
            send(datagrams, to: destination, peer: peer)
        case .pending:
            var held = awaitingLookup[address] ?? []
            if held.reduce(0, { $0 + $1.datagrams.count }) + datagrams.count <= Self.maxAwaitingLookup {
                held.append((datagrams, peer))
                awaitingLookup[address] = held
            } else {
                unresolved += datagrams.count
            }
        case .failed:
            unresolved += datagrams.count
        }
    }

    private func finishLookup(_ address: PeerAddress, _ result: Result<SocketAddress, Error>) {
        let held = awaitingLookup.removeValue(forKey: address) ?? []
        switch result {
        case let .success(destination):
            for (datagrams, peer) in held { send(datagrams, to: destination, peer: peer) }
        case let .failure(error):
            unresolved += held.reduce(0) { $0 + $1.datagrams.count }
            log.warning("cannot resolve a member's address; datagrams to it are dropped until a later lookup succeeds",
                        metadata: ["address": "\(address)", "error": "\(error)", "retry_in": "\(PeerNode.seconds(resolver.failedFor))"])
        }
    }

    private func describe(_ address: SocketAddress) -> PeerAddress {
        guard let ip = address.ipAddress, let port = address.port else { return "\(address)" }
        return HostPort(host: ip, port: port).description
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value)) s" : "\(value) s"
    }

    // MARK: Admin

    var keyring: NetworkKeyring { instance.keyring }

    func setKeyring(_ keyring: NetworkKeyring) {
        instance.setKeyring(keyring)
        log.notice("network keys replaced", metadata: ["primary": "\(Hex.encode(keyring.primary.keyID))",
                                                       "accepted": "\(keyring.keys.dropFirst().map { Hex.encode($0.keyID) })"])
    }

    func setFaults(_ new: FaultSettings) {
        loop.preconditionInEventLoop()
        if new != faults { log.notice("faults changed", metadata: ["faults": "\(new.summary)"]) }
        faults = new
    }

    func status() -> PeerStatus {
        let t = now
        let averager = instance.averager
        let membership = instance.membership
        let learner = instance.learner
        let selfWeight = instance.lastMix?.selfWeight ?? 1
        let weights = instance.lastMix?.weights ?? [:]
        var rejections: [String: Int] = [:]
        for (reason, count) in instance.wire.rejections { rejections[reason.rawValue] = count }
        for (reason, count) in averager.rejections { rejections["parameters." + reason.rawValue] = count }
        for (reason, count) in membership.rejections { rejections["claims." + reason.rawValue] = count }
        for (reason, count) in instance.rejections { rejections[reason] = count }
        if datagramsFaulted > 0 { rejections["faults.injected"] = datagramsFaulted }
        if unresolved > 0 { rejections["address.unresolved"] = unresolved }
        if instance.roundsSkipped > 0 { rejections["rounds.skipped"] = instance.roundsSkipped }  // training outlasted a round
        let neighbourRows = instance.neighbours.map { id in
            PeerStatus.Neighbour(
                id: id.description, address: membership.members[id]?.address ?? instance.address(of: id) ?? "",
                weight: weights[id] ?? 0, lastHeard: averager.lastHeard[id].map { t - $0 }, degree: averager.lastDegree[id])
        }
        let phase = instance.phase == .stopped ? PeerInstance.Phase.leaving : instance.phase
        // `isolated` is reported beside the phase: the peer still trains, alone.
        var members = [PeerStatus.MemberRow(id: identity.peerID.description, address: config.advertise.description,
                                            status: phase == .leaving ? "left" : "alive", incarnation: membership.incarnation)]
        for m in membership.members.values.sorted(by: { $0.id < $1.id }) {
            members.append(.init(id: m.id.description, address: m.address, status: m.status.description, incarnation: m.incarnation))
        }
        let traffic = instance.traffic
        let pairs = instance.wire.pairCounts  // one scan of the sessions
        let distance = instance.distanceToNeighbours
        let stats = membership.stats
        let counts = PeerStatus.MembershipCounts(
            probes: stats.probes, probesFailed: stats.failedProbes, indirectProbes: stats.indirectProbes,
            suspicionsRaised: stats.suspicionsRaised, failuresDeclared: stats.failuresDeclared, refutations: stats.refutations)
        return PeerStatus(
            peerId: identity.peerID.description, address: config.advertise.description, bootEpoch: bootEpoch,
            phase: phase.rawValue, isolated: instance.isolated, uptime: t, model: config.model.description, parameterCount: learner.parameterCount,
            step: learner.steps, stepsTrained: learner.ownSteps, stepsInherited: Int(learner.steps) - learner.ownSteps,
            samplesTrained: learner.samplesTrained, epoch: learner.epoch, loss: instance.lastEvaluation.loss,
            testAccuracy: instance.lastEvaluation.accuracy, trainLoss: instance.trainLoss, learningRate: learner.learningRate,
            selfWeight: selfWeight, distanceToNeighbours: distance?.value, distanceAge: distance.map { t - $0.at },
            neighbours: neighbourRows, members: members, incarnation: membership.incarnation, membershipCounts: counts,
            localHealth: membership.localHealth, bytesSent: traffic.bytesSent, bytesReceived: traffic.bytesReceived,
            datagramsSent: traffic.datagramsSent, datagramsReceived: traffic.datagramsReceived,
            datagramsRejected: instance.wire.totalRejected, sessions: instance.wire.sessionCount,
            pairedSessions: pairs?.keyed, confirmedPairs: pairs?.confirmed,
            payloadBytesSent: traffic.payloadBytesSent, payloadBytesReceived: traffic.payloadBytesReceived, rejections: rejections,
            mixes: averager.mixes, contributionsMixed: averager.contributionsMixed, faults: faults)
    }

    func parameterBytes() -> [UInt8] {
        instance.learner.parameters.withUnsafeBytes { Array($0) }
    }

    func metricsText() -> [UInt8] {
        metrics.render(status())
    }
}

/// Writes checkpoints off the event loop, one at a time, in order.
final class CheckpointWriter: Sendable {
    let path: String
    let model: String
    private let queue = DispatchQueue(label: "chorus.checkpoint")
    private let log: Logger

    init(path: String, model: String, log: Logger) {
        self.path = path
        self.model = model
        self.log = log
    }

    func checkpoint(_ snapshot: ModelSnapshot) -> Checkpoint {
        Checkpoint(model: model, steps: snapshot.steps, epoch: snapshot.epoch, parameters: snapshot.parameters)
    }

    /// A failed periodic save is logged and retried at the next interval.
    func saveInBackground(_ checkpoint: Checkpoint) {
        queue.async { [path, log] in
            do { try checkpoint.save(to: path) } catch {
                log.error("could not save checkpoint to \(path): \(error) (retrying at the next interval)")
            }
        }
    }

    func saveNow(_ checkpoint: Checkpoint) throws {
        try queue.sync { try checkpoint.save(to: path) }
    }
}
