import ChorusCrypto
import ChorusLearning
import Testing
@_spi(Simulation) @testable import ChorusMembership

/// A tiny seeded generator, so every test is reproducible bit for bit.
typealias SplitMix = SplitMix64

/// Deterministic identities, claims and instances. Peer `k` has the key whose seed is 32 bytes of `k`.
enum Fixture {
    static let unixTimeAtZero = 1_800_000_000.0
    /// The incarnation every fixture peer boots with (boot epoch · 2¹⁶).
    static let base = UInt64(1_800_000_000) << 16

    /// Slow, round numbers that make hand-computed times exact: 1 s probes, 0.4 s direct timeout,
    /// k = 2 relays, suspicion min = max(1, log10 n) s and max = 6 × min, 2 expected confirmations.
    /// Syncs are effectively off.
    static let hand = MembershipSettings(
        probeInterval: 1, probeTimeout: 0.4, indirectChecks: 2, suspicionMultiplier: 1, suspicionMaxMultiplier: 6,
        expectedConfirmations: 2, retransmitMultiplier: 3, gossipInterval: 0.25, gossipFanout: 2, syncInterval: 10_000,
        maxLocalHealth: 8, tombstoneTimeout: 30, announceFanout: 8, maxMessageBytes: 1057, maxIncarnationLeadSeconds: 86_400)

    /// For tests about the first probe's failure itself: no second direct ping at the indirect stage.
    static let withoutDirectRetry: MembershipSettings = {
        var s = hand
        s.directRetries = 0
        return s
    }()

    static func key(_ k: UInt8) -> SigningKey { try! SigningKey(seed: [UInt8](repeating: k, count: 32)) }
    static func id(_ k: UInt8) -> PeerID { key(k).peerID }
    static func address(_ k: UInt8) -> String { "10.0.0.\(k):7000" }

    static func alive(_ k: UInt8, incarnation: UInt64 = base, address: String? = nil) -> Claim {
        Claim.make(.alive, subject: id(k), incarnation: incarnation, address: address ?? self.address(k), key: key(k))
    }
    static func suspect(_ k: UInt8, by accuser: UInt8, incarnation: UInt64 = base) -> Claim {
        Claim.make(.suspect, subject: id(k), incarnation: incarnation, key: key(accuser))
    }
    static func failed(_ k: UInt8, by accuser: UInt8, incarnation: UInt64 = base) -> Claim {
        Claim.make(.failed, subject: id(k), incarnation: incarnation, key: key(accuser))
    }
    static func left(_ k: UInt8, incarnation: UInt64 = base) -> Claim {
        Claim.make(.left, subject: id(k), incarnation: incarnation, key: key(k))
    }

    /// Peer `k`, created at `now`, knowing `peers` (alive at `base`) without gossiping them.
    static func instance(_ k: UInt8, knowing peers: [UInt8] = [], settings: MembershipSettings = hand, now: Double = 0,
                         verifier: ClaimVerifier = ClaimVerifier()) -> MembershipInstance {
        var instance = MembershipInstance(key: key(k), address: address(k), incarnation: base, settings: settings, now: now,
                                          unixTimeAtZero: unixTimeAtZero, verifier: verifier)
        instance.preload(peers.filter { $0 != k }.map { alive($0) }, now: now)
        return instance
    }
}

extension Array where Element == MembershipDirective {
    var sends: [(message: MembershipMessage, to: PeerID)] {
        compactMap { if case let .send(message, to, _) = $0 { (message, to) } else { nil } }
    }
    var events: [MembershipEvent] {
        compactMap { if case let .event(event) = $0 { event } else { nil } }
    }
    var pings: [(sequence: UInt32, to: PeerID, claims: [Claim])] {
        sends.compactMap { if case let .ping(seq, claims) = $0.message { (seq, $0.to, claims) } else { nil } }
    }
    var pingRequests: [(sequence: UInt32, target: PeerID, address: String, to: PeerID)] {
        sends.compactMap {
            if case let .pingRequest(seq, target, address, _) = $0.message { (seq, target, address, $0.to) } else { nil }
        }
    }
    var acks: [(sequence: UInt32, to: PeerID, claims: [Claim])] {
        sends.compactMap { if case let .ack(seq, claims) = $0.message { (seq, $0.to, claims) } else { nil } }
    }
    var nacks: [(sequence: UInt32, to: PeerID)] {
        sends.compactMap { if case let .nack(seq, _) = $0.message { (seq, $0.to) } else { nil } }
    }
}

/// Drives one instance on a hand-controlled clock: ticks exactly at its deadlines and, for members
/// in `responsive`, answers each ping with an ack at the same instant. Everything is logged with its time.
struct Driver {
    var instance: MembershipInstance
    var rng: SplitMix
    private(set) var now: Double
    var responsive: Set<PeerID> = []
    private(set) var log: [(time: Double, directive: MembershipDirective)] = []
    /// Ticks so far (to check that idle instances are not ticked for nothing).
    private(set) var ticks = 0

    init(_ instance: MembershipInstance, seed: UInt64 = 1, now: Double = 0) {
        self.instance = instance
        self.rng = SplitMix(seed: seed)
        self.now = now
    }

    var me: PeerID { instance.me }

    @discardableResult
    mutating func tick(at time: Double) -> [MembershipDirective] {
        precondition(time >= now, "time runs forward")
        now = time
        ticks += 1
        let out = instance.tick(now: time, rng: &rng)
        record(out)
        return out
    }

    @discardableResult
    mutating func receive(_ message: MembershipMessage, from sender: PeerID, at time: Double) -> [MembershipDirective] {
        precondition(time >= now, "time runs forward")
        now = time
        let out = instance.receive(message, from: sender, address: "", now: time, rng: &rng)
        record(out)
        return out
    }

    @discardableResult
    mutating func leave(at time: Double) -> [MembershipDirective] {
        precondition(time >= now, "time runs forward")
        now = time
        let out = instance.leave(now: time, rng: &rng)
        record(out)
        return out
    }

    /// Ticks at the next deadline; returns what that tick produced.
    @discardableResult
    mutating func step() -> [MembershipDirective] {
        tick(at: max(now, instance.nextDeadline))
    }

    /// Ticks at every deadline up to and including `time`, then leaves the clock at `time`.
    mutating func run(until time: Double) {
        var steps = 0
        while instance.nextDeadline <= time {
            step()
            steps += 1
            precondition(steps < 1_000_000, "deadline loop")
        }
        now = max(now, time)
    }

    /// Steps until a tick produces a ping; returns it with its time.
    mutating func stepUntilPing(limit: Double = 1_000) -> (time: Double, sequence: UInt32, to: PeerID, claims: [Claim]) {
        while now < limit {
            let out = step()
            if let ping = out.pings.first { return (now, ping.sequence, ping.to, ping.claims) }
        }
        fatalError("no ping before \(limit)")
    }

    private mutating func record(_ directives: [MembershipDirective]) {
        for directive in directives {
            log.append((now, directive))
            if case let .send(.ping(seq, _), to, _) = directive, responsive.contains(to) {
                record(instance.receive(.ack(sequence: seq, claims: []), from: to, address: "", now: now, rng: &rng))
            }
        }
    }

    /// Events with their times, in order.
    var events: [(time: Double, event: MembershipEvent)] {
        log.compactMap { if case let .event(e) = $0.directive { ($0.time, e) } else { nil } }
    }
    /// Pings sent, with their times.
    var pings: [(time: Double, sequence: UInt32, to: PeerID)] {
        log.compactMap { if case let .send(.ping(seq, _), to, _) = $0.directive { ($0.time, seq, to) } else { nil } }
    }
    func firstTime(of wanted: MembershipEvent) -> Double? { events.first { $0.event == wanted }?.time }
}

extension Double {
    func isClose(to other: Double, within tolerance: Double = 1e-9) -> Bool { abs(self - other) <= tolerance }
}
