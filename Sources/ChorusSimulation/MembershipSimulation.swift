// The membership-only simulator: `MembershipInstance`s alone (no wire layer, no learning) on a
// virtual clock and a seeded `NetworkModel`, behind docs/membership.md's measurements
// (`MembershipExperiments`). Whole peers are simulated by `PeerSimulation`.

import ChorusCrypto
import ChorusLearning
@_spi(Simulation) import ChorusMembership

/// How the simulated network treats each message.
public struct NetworkModel: Sendable {
    /// One-way latency, uniform in this range (seconds).
    public var latency: ClosedRange<Double> = 0.0005...0.002
    /// Probability that a message is lost.
    public var loss = 0.0
    /// Probability that a message is delivered twice.
    public var duplication = 0.0

    public init(latency: ClosedRange<Double> = 0.0005...0.002, loss: Double = 0, duplication: Double = 0) {
        self.latency = latency
        self.loss = loss
        self.duplication = duplication
    }
}

/// Many membership instances in one process on a virtual clock and a seeded network: the same
/// code as a real peer, reproducible bit for bit from a seed.
public final class MembershipSimulation {
    public struct Node {
        public var instance: MembershipInstance
        public var crashed = false
        public var left = false
        public var pausedUntil: Double?
        var scheduledTick = Double.infinity
        var inbox: [(MembershipMessage, PeerID)] = []
    }

    /// One event seen by one member.
    public struct Observation: Sendable {
        public var time: Double
        public var observer: PeerID
        public var event: MembershipEvent
    }

    enum Event {
        case tick(PeerID)
        case deliver(MembershipMessage, from: PeerID, to: PeerID)
        case resume(PeerID)
        case action(Action)
    }

    enum Action {
        case crash(PeerID)
        case leave(PeerID)
        case stop(PeerID)
        case join(PeerID, seed: PeerID)
        case revoke(PeerID, through: PeerID)
        case pause(PeerID, Double)
        case block(Set<PeerID>, Set<PeerID>)
        case unblock
    }

    public let settings: MembershipSettings
    public var network: NetworkModel
    public private(set) var now: Double = 0
    public private(set) var nodes: [PeerID: Node] = [:]
    public private(set) var order: [PeerID] = []
    public private(set) var observations: [Observation] = []
    public private(set) var messagesDelivered = 0
    public private(set) var messagesLost = 0
    /// Non-bulk messages larger than the settings allow (must stay 0).
    public private(set) var oversizedMessages = 0
    public let verifier = ClaimVerifier()
    /// Set false to keep only failure-related observations (saves memory on long runs).
    public var recordAllObservations = true

    private var rng: Xoshiro256
    private var queue = EventQueue<Event>()
    private var blocked: (Set<PeerID>, Set<PeerID>)?
    private let unixTimeAtZero = 1_800_000_000.0
    /// The network authority every member trusts (revocations), from the seeded generator.
    public let authority: SigningKey

    public init(settings: MembershipSettings, network: NetworkModel = .init(), seed: UInt64) {
        self.settings = settings
        self.network = network
        self.rng = Xoshiro256(seed: seed)
        // From a generator of its own: drawing it from `rng` moved every later draw, so a seed no
        // longer gave the runs docs/membership.md reports.
        var authorityRNG = Xoshiro256(seed: seed ^ 0xA07_4021)
        self.authority = try! SigningKey(seed: (0..<4).flatMap { _ in withUnsafeBytes(of: authorityRNG.next()) { Array($0) } })
    }

    // MARK: Building the population

    /// Adds a member (not yet part of anyone's view). Keys come from the seeded generator.
    @discardableResult
    public func addNode() -> PeerID {
        let seed = (0..<4).flatMap { _ in withUnsafeBytes(of: rng.next()) { Array($0) } }
        let key = try! SigningKey(seed: seed)
        let index = order.count
        let instance = MembershipInstance(
            key: key, address: "10.0.\(index / 250).\(index % 250 + 1):7000", incarnation: UInt64(unixTimeAtZero + now) << 16,
            settings: settings, now: now, unixTimeAtZero: unixTimeAtZero, verifier: verifier, authority: authority.peerID)
        nodes[key.peerID] = Node(instance: instance)
        order.append(key.peerID)
        return key.peerID
    }

    /// n members that all know each other (a network already in steady state).
    public func bootstrap(count: Int) {
        let ids = (0..<count).map { _ in addNode() }
        let claims = ids.map { nodes[$0]!.instance.fullState()[0] }
        for id in ids {
            nodes[id]!.instance.preload(claims, now: now)
            schedule(id)
        }
        observations.removeAll()
    }

    // MARK: Scenario

    public func crash(_ id: PeerID, at time: Double) { queue.push(.action(.crash(id)), at: time) }
    public func leave(_ id: PeerID, at time: Double) { queue.push(.action(.leave(id)), at: time) }
    public func pause(_ id: PeerID, at time: Double, for duration: Double) { queue.push(.action(.pause(id, duration)), at: time) }
    /// A new member (from `addNode`) joins through `seed`.
    public func join(_ id: PeerID, through seed: PeerID, at time: Double) { queue.push(.action(.join(id, seed: seed)), at: time) }
    /// Messages between the two groups are dropped from `time` until `heal(at:)`.
    public func partition(_ a: Set<PeerID>, _ b: Set<PeerID>, at time: Double) { queue.push(.action(.block(a, b)), at: time) }
    public func heal(at time: Double) { queue.push(.action(.unblock), at: time) }
    /// The authority revokes `id`, handing the revocation to `member`; the revoked member's
    /// datagrams are dropped everywhere from then on (the datagram layer's part), so it is
    /// taken out as if it had crashed.
    public func revoke(_ id: PeerID, through member: PeerID, at time: Double) { queue.push(.action(.revoke(id, through: member)), at: time) }

    /// Runs the simulation up to `time` (virtual seconds).
    public func run(until time: Double) {
        while let next = queue.nextTime, next <= time {
            let (t, event) = queue.pop()!
            now = t
            handle(event)
        }
        now = time
    }

    // MARK: Queries

    public func status(of subject: PeerID, seenBy observer: PeerID) -> MemberStatus? {
        nodes[observer]?.instance.status(of: subject)
    }

    /// Members still running (not crashed, not left).
    public var running: [PeerID] { order.filter { !nodes[$0]!.crashed && !nodes[$0]!.left } }

    /// For each running observer other than the subject, the first time it saw `event(subject)`.
    public func firstTimes(of subject: PeerID, after start: Double, where matches: (MembershipEvent) -> Bool) -> [PeerID: Double] {
        var out: [PeerID: Double] = [:]
        for o in observations where o.time >= start && out[o.observer] == nil && matches(o.event) {
            out[o.observer] = o.time
        }
        return out
    }

    // MARK: Engine

    private func handle(_ event: Event) {
        switch event {
        case let .tick(id):
            guard var node = nodes[id], !node.crashed, node.pausedUntil == nil, node.scheduledTick <= now else { return }
            node.scheduledTick = .infinity
            nodes[id] = node
            let directives = nodes[id]!.instance.tick(now: now, rng: &rng)
            perform(directives, by: id)
            schedule(id)
        case let .deliver(message, from, to):
            guard var node = nodes[to], !node.crashed else { return }
            if node.pausedUntil != nil {
                node.inbox.append((message, from))  // the socket buffer holds it until the process runs again
                nodes[to] = node
                return
            }
            messagesDelivered += 1
            let directives = nodes[to]!.instance.receive(message, from: from, address: "", now: now, rng: &rng)
            perform(directives, by: to)
            schedule(to)
        case let .resume(id):
            guard var node = nodes[id], !node.crashed else { return }
            node.pausedUntil = nil
            let inbox = node.inbox
            node.inbox = []
            nodes[id] = node
            for (message, from) in inbox {
                messagesDelivered += 1
                perform(nodes[id]!.instance.receive(message, from: from, address: "", now: now, rng: &rng), by: id)
            }
            nodes[id]!.scheduledTick = .infinity
            queue.push(.tick(id), at: now)
            nodes[id]!.scheduledTick = now
        case let .action(action):
            run(action)
        }
    }

    private func run(_ action: Action) {
        switch action {
        case let .crash(id):
            nodes[id]?.crashed = true
        case let .leave(id):
            guard nodes[id] != nil else { return }
            perform(nodes[id]!.instance.leave(now: now, rng: &rng), by: id)
            schedule(id)
            // A leaving peer keeps gossiping for a second, then exits (as the real shell does).
            queue.push(.action(.stop(id)), at: now + 1)
        case let .stop(id):
            nodes[id]?.left = true
            nodes[id]?.crashed = true
        case let .join(id, seed):
            guard let seedNode = nodes[seed] else { return }
            perform(nodes[id]!.instance.join(seed: seed, address: seedNode.instance.address, now: now), by: id)
            schedule(id)
        case let .revoke(id, member):
            nodes[id]?.crashed = true
            guard nodes[member] != nil else { return }
            perform(nodes[member]!.instance.learn(Claim.make(.revoked, subject: id, incarnation: 0, key: authority), now: now), by: member)
            schedule(member)
        case let .pause(id, duration):
            guard nodes[id] != nil, !nodes[id]!.crashed else { return }
            nodes[id]!.pausedUntil = now + duration
            queue.push(.resume(id), at: now + duration)
        case let .block(a, b):
            blocked = (a, b)
        case .unblock:
            blocked = nil
        }
    }

    private func perform(_ directives: [MembershipDirective], by id: PeerID) {
        for directive in directives {
            switch directive {
            case let .send(message, to, _):
                if !message.isBulk && message.encoded().count > settings.maxMessageBytes { oversizedMessages += 1 }
                transmit(message, from: id, to: to)
            case let .event(event):
                if recordAllObservations || isFailureRelated(event) {
                    observations.append(Observation(time: now, observer: id, event: event))
                }
            }
        }
    }

    private func isFailureRelated(_ event: MembershipEvent) -> Bool {
        switch event {
        case .failed, .left, .joined, .suspected, .revoked: return true
        default: return false
        }
    }

    private func transmit(_ message: MembershipMessage, from: PeerID, to: PeerID) {
        if let (a, b) = blocked, (a.contains(from) && b.contains(to)) || (b.contains(from) && a.contains(to)) {
            messagesLost += 1
            return
        }
        if Double.random(in: 0..<1, using: &rng) < network.loss {
            messagesLost += 1
            return
        }
        let copies = Double.random(in: 0..<1, using: &rng) < network.duplication ? 2 : 1
        for _ in 0..<copies {
            queue.push(.deliver(message, from: from, to: to), at: now + Double.random(in: network.latency, using: &rng))
        }
    }

    private func schedule(_ id: PeerID) {
        guard let node = nodes[id], !node.crashed else { return }
        let at = max(now, node.instance.nextDeadline)
        if at < node.scheduledTick {
            nodes[id]!.scheduledTick = at
            queue.push(.tick(id), at: at)
        }
    }
}
