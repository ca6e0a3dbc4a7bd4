// What a whole-peer simulated run is configured with: the task (`SimulationTask`), the link
// model (`LinkModel`), every option of a run (`SimulationOptions`) and what a poisoning insider
// does (`ByzantineKind`). The run itself is `PeerSimulation`.

import ChorusCore
import ChorusCrypto
import ChorusLearning
import ChorusRuns

/// What the simulated peers do besides membership.
public enum SimulationTask: String, Sendable, CaseIterable {
    /// Train the model on local shards and average by gossip.
    case train
    /// Average only: every peer starts from its own random vector; no training.
    case average
    /// Membership only: no parameters are exchanged.
    case membership
}

/// How the simulated network treats each datagram. All randomness comes from the run's seed.
public struct LinkModel: Sendable, Equatable {
    /// One-way latency: `base` plus an exponential tail with mean `jitter` (seconds), drawn once
    /// per burst (the datagrams of one send, e.g. an object's, leave back to back and arrive in
    /// order, as on a real LAN), so bursts are late and overtake each other now and then.
    public var base = 0.0005
    public var jitter = 0.0005
    /// Probability that a datagram is lost.
    public var loss = 0.0
    /// Probability that a datagram is delivered twice.
    public var duplication = 0.0
    /// Probability that a datagram is held back by an extra `reorderDelay` (reordering, also
    /// within a burst).
    public var reorder = 0.0
    public var reorderDelay = 0.005
    /// Bytes per second each peer can send (nil: unlimited). Datagrams queue behind each other.
    public var bandwidth: Double?
    /// The application channels injected loss applies to (nil: every datagram). E.g. only the
    /// parameters, to study averaging under loss without membership losing its messages.
    public var lossChannels: Set<UInt8>?

    public init() {}
}

/// Everything a simulated run needs.
public struct SimulationOptions: Sendable {
    public var peers = 64
    public var duration = 300.0
    public var seed: UInt64 = 1
    public var task = SimulationTask.train
    public var model = ModelSpec.softmax
    public var partition = PartitionScheme.iid
    public var data = DataSource.digits
    public var testFraction = 0.2
    public var learning = LearningSettings()
    public var settings = PeerSettings()
    public var link = LinkModel()
    public var crypto = CryptoMode.real
    public var schedule = Schedule.steady
    /// Seconds between rows of series.csv (each row evaluates every training peer).
    public var sampleInterval = 5.0
    /// Stop at the first invariant violation (otherwise record it and go on).
    public var stopOnViolation = true
    /// How the starting network forms: `preload` (every peer starts knowing all the others, as
    /// a configured network after its first syncs, without n² start-up messages) or `join`
    /// (each peer but the first starts with up to two earlier peers as its seeds and joins
    /// through the real path: hello, session, sync).
    public var bootstrap = Bootstrap.preload
    public enum Bootstrap: String, Sendable, CaseIterable { case preload, join }
    /// Seconds at the end of the run with every fault healed and churn stopped (0: none). Schedule
    /// actions and Poisson churn stop where it begins; at the end every live view must be whole,
    /// every action seen by all, and (averaging tasks) consensus down by `livenessContraction`.
    public var livenessSeconds = 0.0
    /// The liveness phase's consensus target: the largest relative distance at its end at most
    /// this fraction of what it was at its start (or below `Self.consensusFloor`).
    public var livenessContraction = 0.5
    /// Every crash must be seen by every live peer within this many seconds (nil: not checked):
    /// a whole-network detection bound, checked as the run goes. The detection tail of issue 19
    /// (crashes seen by all after up to 70 s) passed every other check.
    public var detectionBound: Double?
    /// Check safety after every event (finite parameters, valid mixing rows, incarnations never
    /// going backwards, views naming only peers that exist, reassembly within its budget), not
    /// only after learning: the fuzzer's mode, O(n) per event.
    public var checkEveryEvent = false
    /// Clock faults: each peer's wall clock is off by up to ± `clockOffset` seconds and runs at
    /// 1 ± up to `clockDrift` times real speed (drawn per peer from the seed).
    public var clockOffset = 0.0
    public var clockDrift = 0.0
    /// Membership's envelope: a member declared failed while it runs and is reachable is a
    /// violation only while its and its accuser's traffic lose at most this fraction of
    /// datagrams and are delayed by less than a quarter of the probe timeout (more, recently,
    /// excuses the verdict: such a member does not answer in time).
    public var envelopeLoss = 0.2
    /// Virtual seconds one SGD step takes: a training job's result arrives this much later times
    /// its steps, and datagrams, ticks and churn happen meanwhile, as in a real peer (0: at once).
    public var stepSeconds = 0.0
    /// Poisoning insiders (docs/security.md, "Poisoned parameters"): the last `count` starting
    /// peers behave as `kind`. series.csv and the summary then describe the honest peers only.
    public var byzantine: (count: Int, kind: ByzantineKind)?

    public init() {}
}

/// What a poisoning insider does.
public enum ByzantineKind: String, Sendable, CaseIterable {
    /// Sends 10³⁰ for every value.
    case huge
    /// Sends values uniform in ±1000.
    case random
    /// Trains honestly with learning rate 100 (as a misconfigured or malicious peer may).
    case lr100
}
