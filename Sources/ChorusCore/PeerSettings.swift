import ChorusAveraging
import ChorusMembership
import ChorusWire

/// Everything that times or shapes one peer's protocol, shared by the real shell and the
/// simulator. Every field has a unit, a default and the reason for it.
public struct PeerSettings: Sendable, Equatable {
    /// Seconds between gossip rounds (train, send, collect, mix). Rounds are aligned to the wall
    /// clock: round r starts r·gossipInterval seconds after the Unix epoch on every peer.
    public var gossipInterval = 0.1
    /// Fraction of a round after its start at which the round's contributions are mixed: what
    /// the other peers trained and sent at the round's start arrives within it (training time,
    /// latency, clock offsets between peers, timer delays on a busy host). Half a round (50 ms by
    /// default) covers NTP-synchronised clocks with room to spare (docs/averaging.md).
    public var collectFraction = 0.5
    /// Whether the peer runs gossip rounds at all; off for membership-only simulations.
    public var gossipRounds = true
    /// Optimiser steps per round (0: average only, no training).
    public var stepsPerRound = 5
    /// Seconds between evaluations on the test set, folded into the next round's training job;
    /// 0 turns them off (the simulator evaluates on its own sampling schedule instead).
    public var evaluationInterval = 1.0
    /// Seconds between checkpoints while training (0: none), so a crash loses at most this much.
    public var checkpointInterval = 30.0
    /// How neighbourhoods are drawn from the live view.
    public var topology: Topology = .exponential
    public var averaging = AveragingSettings()
    public var membership = MembershipSettings.lan
    public var wire = WireSettings()
    /// Whether a new peer waits for the network's model before training (`--join`).
    public var fetchModel = false
    /// An insider's attack, for experiments on poisoned parameters (`chorus simulate
    /// --byzantine`; docs/security.md): what this peer sends instead of its value, to its
    /// neighbours and to joiners asking for the model. Never set from a configuration file.
    public var poison: Poison?
    /// Joining: seconds between model requests, each to the next neighbour in turn. One second
    /// lets an answer (a few datagrams) arrive before asking someone else.
    public var modelRequestInterval = 1.0
    /// Seconds between two model answers to one sender, and model answers per second in all:
    /// an answer is the whole model (a 143-byte request brings back 1205× its size for
    /// `mlp:1024`), so insiders and Sybils must not be able to ask for it at will. A joiner asks
    /// its neighbours in turn once a second, so an honest one is never refused twice in a row.
    public var modelAnswerInterval = 2.0
    public var modelAnswersPerSecond = 4
    /// Joining: models from this many neighbours (fewer when the network has fewer other members)
    /// before adopting one, the one nearest their coordinate-wise median: a single insider among
    /// them cannot hand a poisoned model over (docs/security.md, "Poisoned parameters").
    public var modelQuorum = 3
    /// Joining: seconds without any model before training from this peer's own start (it may be
    /// the first peer). Ten seconds covers a join sync and a few request rounds on a LAN.
    public var modelWaitTimeout = 10.0
    /// Leaving: seconds the peer keeps answering after announcing "left", so the announcement
    /// spreads directly and by a few gossip rounds (0.2 s each) before it goes quiet.
    public var leaveLinger = 0.8
    /// Seconds between measurements of the distance to the neighbours' average (a status gauge,
    /// taken at the next mix): at every 0.1 s round it was 8 % of a 256-peer simulation's time.
    public var distanceInterval = 1.0
    /// Seconds between housekeeping of the datagram layer (incomplete objects, hello retries).
    public var housekeepingInterval = 0.25
    /// Seconds between sweeps of idle stranger sessions (`WireEndpoint.forgetIdleSessions`),
    /// while there are more sessions than members.
    public var sessionSweepInterval = 5.0
    /// While this peer knows no other member, seconds between hellos to its entry points (seeds
    /// and configured neighbours) at first; the gap doubles after each unanswered round…
    public var seedRetryInterval = 1.0
    /// …up to this many seconds, forever: an isolated peer rejoins by itself within about this
    /// long once an entry point is reachable again.
    public var seedRetryMaxInterval = 8.0
    /// Once joined, seconds between hellos to the entry points that are not live members (each
    /// side of a partition that outlasted the tombstones has forgotten the other; the entry
    /// points are the way back, as Consul's retry_join). One datagram per such entry point.
    public var entryPointRecallInterval = 30.0
    /// Seconds alone (with entry points it cannot reach) before the shell is told to warn; then
    /// again every `warningInterval`.
    public var isolationWarningAfter = 10.0
    /// At most one warning per reason per this many seconds (isolation, traffic under another
    /// network key, parameters of another model): enough to be seen, never a flood.
    public var warningInterval = 60.0

    public init() {}

    /// Problems with the settings, each naming the field; empty when valid.
    public func problems() -> [String] {
        var out: [String] = []
        func positive(_ value: Double, _ name: String) {
            if !(value > 0 && value.isFinite) { out.append("\(name) must be a positive number of seconds, got \(value)") }
        }
        positive(gossipInterval, "gossipInterval")
        positive(modelRequestInterval, "modelRequestInterval")
        positive(modelWaitTimeout, "modelWaitTimeout")
        if !(1...16).contains(modelQuorum) { out.append("modelQuorum must be between 1 and 16 models, got \(modelQuorum)") }
        positive(housekeepingInterval, "housekeepingInterval")
        positive(sessionSweepInterval, "sessionSweepInterval")
        positive(distanceInterval, "distanceInterval")
        positive(seedRetryInterval, "seedRetryInterval")
        positive(entryPointRecallInterval, "entryPointRecallInterval")
        positive(isolationWarningAfter, "isolationWarningAfter")
        positive(warningInterval, "warningInterval")
        if !(seedRetryMaxInterval >= seedRetryInterval) {
            out.append("seedRetryMaxInterval (\(seedRetryMaxInterval) s) must be at least seedRetryInterval (\(seedRetryInterval) s)")
        }
        if !(collectFraction > 0 && collectFraction < 1) {
            out.append("collectFraction must be between 0 and 1 (exclusive), got \(collectFraction)")
        }
        if let problem = averaging.weights.problem(with: topology) { out.append("averaging.weights: " + problem) }
        if stepsPerRound < 0 { out.append("stepsPerRound must be 0 or more, got \(stepsPerRound)") }
        if !(evaluationInterval >= 0) { out.append("evaluationInterval must be 0 (off) or positive seconds, got \(evaluationInterval)") }
        if !(checkpointInterval >= 0) { out.append("checkpointInterval must be 0 (off) or positive seconds, got \(checkpointInterval)") }
        if !(leaveLinger >= 0) { out.append("leaveLinger must be 0 or more seconds, got \(leaveLinger)") }
        out += averaging.problems().map { "averaging." + $0 }
        out += membership.problems().map { "membership." + $0 }
        out += wire.problems().map { "wire." + $0 }
        return out
    }
}

/// What a poisoning insider sends in place of its parameters (plain mixing).
public enum Poison: String, Sendable, CaseIterable {
    /// Every value 10³⁰ (finite, so it passes the NaN check).
    case huge
    /// Every value uniform in ±1000, drawn afresh each round.
    case random
}
