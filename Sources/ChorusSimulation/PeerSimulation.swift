import CPrefetch
@_spi(Simulation) import ChorusCore
import ChorusCrypto
import ChorusLearning
import ChorusMembership
import ChorusRuns
import ChorusWire
import Foundation

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

/// N `PeerInstance`s, the very code of a real peer, datagram layer included, on a virtual clock
/// and a seeded network and churn model: the same seed gives the same run, byte for byte.
///
/// Invariants are checked as the run goes (no NaN in any model, every mixing row non-negative
/// and summing to one, no member declared failed while it runs and is reachable); a violation
/// stops the run and names the seed and the time.
public final class PeerSimulation {
    public struct Violation: Error, CustomStringConvertible {
        public var time: Double
        public var seed: UInt64
        public var message: String
        public var description: String { String(format: "invariant violated at %.3f s (seed %llu): %@", time, seed, message) }
    }

    /// One simulated process slot: a peer identity that may crash, restart or leave. Its running
    /// instance lives apart in `instances`, so the hot paths never copy it.
    struct Slot {
        var name: String
        var key: SigningKey
        var shard: Int
        /// Last checkpoint (restarts resume from it).
        var checkpoint: ModelSnapshot?
        var bootCount: UInt64 = 0
        var linkFreeAt = 0.0
        var rejectedSeen = 0
        var bytesSentSeen = 0
        /// The slot's clock: local monotonic time is real time × `clockRate`; its wall clock
        /// reads the shared one plus `clockOffset`.
        var clockRate = 1.0
        var clockOffset = 0.0
        /// Stopped (a `pause` action) until then: its events wait.
        var pausedUntil = -Double.infinity
        /// Until when the slot's traffic was outside membership's envelope (`envelopeLoss`, a
        /// slow link or send queue): infinity while it is.
        var degradedUntil = -Double.infinity
        /// What `checkEveryEvent` last saw: the peer's own incarnation and its view's.
        var incarnationSeen: UInt64 = 0
        var viewIncarnations: [PeerID: UInt64] = [:]
        var memberChangesSeen = UInt64.max
        var timerExpiriesSeen = 0
        /// The cluster size the view last gave (live members and itself), and when it last
        /// changed, on the slot's clock: a suspicion timeout shrinks with it.
        var clusterSizeSeen = 0
        var clusterChangedAt = 0.0
        /// A poisoning insider (`Options.byzantine`); not measured, its own model unchecked.
        var byzantine: ByzantineKind?
    }

    enum Event {
        case tick(Int)
        /// Datagrams that arrive together, in order (one burst, or one datagram).
        case deliver(to: Int, datagrams: [[UInt8]], from: PeerAddress)
        case action(Int)
        case poisson
        case restart(Int)
        case sample
        case check
        /// A training job's result, for the boot of the slot that started it.
        case learned(Int, boot: UInt64, LearningResult)
        /// The start of the liveness phase: faults healed, churn stopped.
        case calm

        /// The slot whose instance the event runs, if any.
        var peer: Int? {
            switch self {
            case let .tick(index), let .deliver(index, _, _), let .learned(index, _, _): index
            default: nil
            }
        }
    }

    public let options: SimulationOptions
    public private(set) var now = 0.0
    public private(set) var samples: [RunOutput.Sample] = []
    public private(set) var events: [RunOutput.Event] = []
    public private(set) var falseFailures = 0
    public private(set) var violation: Violation?
    /// Invariant violations recorded and passed over (`stopOnViolation` off), in order.
    public private(set) var violationsPassed: [Violation] = []

    private var slots: [Slot] = []
    /// Each slot's address, apart from the rest of the slot: every datagram sent reads its
    /// sender's, and 16-byte entries stay in cache where the slot table is a miss at thousands.
    private var addresses: [PeerAddress] = []
    /// The running instance of each slot (nil: crashed, left, or down for a restart). Boxed, so
    /// reading one never copies the whole instance.
    private var instances: [Box?] = []
    final class Box {
        var value: PeerInstance
        init(_ value: PeerInstance) { self.value = value }
        /// Reads through an inout access: a plain read of `value` would copy the whole instance.
        func read<T>(_ body: (inout PeerInstance) -> T) -> T { body(&value) }
    }
    /// When each slot's next tick is queued (so a slot has at most one pending tick).
    private var scheduledTick: [Double] = []
    private var order: Range<Int> { 0..<slots.count }
    /// Reads a running instance in place (a plain read of `Box.value` copies the whole instance).
    private func peek<T>(_ index: Int, _ body: (inout PeerInstance) -> T) -> T { instances[index]!.read(body) }
    private func running(_ index: Int) -> Bool { instances[index] != nil }
    private var live: [Int] { order.filter { instances[$0] != nil } }
    private var queue = EventQueue<Event>()
    /// The network's randomness (loss, latency, duplication) apart from the scenario's (targets).
    private var networkRNG: Xoshiro256
    private var scenarioRNG: Xoshiro256
    private var seeds: SplitMix64
    /// Loss and delay as the schedule last set them (`--loss`, `loss` and `delay` actions).
    private var faults: NetworkFaults
    private var sides: [Int: Int] = [:]  // slot → partition side (absent: side 0); empty when healed
    /// Which way the partition cuts: both, or only what side 1 sends (out) or receives (in).
    private var partitionDirection = Schedule.Direction.both
    /// The link model as the run stands (the liveness phase removes its loss, duplication and
    /// reordering).
    private var link: LinkModel
    /// Where the liveness phase begins (the run's end without one).
    private var calmAt: Double { options.duration - options.livenessSeconds }
    private var calm = false
    private var consensusAtCalm: Double?
    /// The clocks' generator, apart from the others so that runs without clock faults stay as they were.
    private var clockRNG: Xoshiro256
    /// The sides of the partitions that ended, and when: suspicions raised across one may still
    /// run out (and be declared) a while after the heal, which is no false failure. Every one
    /// counts, not only the last: a partition replaced by another one left its own suspicions
    /// running (found by `chorus simulate fuzz --seeds 67`).
    private var healed: [(sides: [Int: Int], at: Double)] = []
    private var shared: SharedData?
    private let startingPeers: Int
    /// Whether the run prefetches (`prefetch(handling:)`): only from `prefetchFromPeers` on.
    private let prefetching: Bool
    private var dropped = 0, droppedSeen = 0
    private var lastSampleAt = 0.0
    private let verifier: ClaimVerifier
    private let keyring: NetworkKeyring
    /// The shared clock's Unix time at 0 s. Gossip rounds are aligned to it (round r starts at
    /// r · interval, Unix time): it is chosen so that rounds start a quarter round after each
    /// multiple of the interval (here 0.025 s, 0.125 s, …) and mix half a round later, so samples
    /// taken at multiples of the interval see every peer's model as of its last mix, never
    /// half-way through a round. (A fraction of a second here changes nothing else.)
    private let unixTimeAtZero: Double
    /// Actions not yet seen by every live peer, by index into `events`.
    private var pending: [(event: Int, slot: Int?, kind: Schedule.Kind, incarnation: UInt64)] = []
    /// Shards whose peer is gone (crashed or left, not restarting), oldest first: joiners take them.
    /// Who holds which data shard: joiners take the shards of departed peers (`ShardLedger`).
    private var shards: ShardLedger
    /// Counters of the instances that stopped (added to the running ones' in the summary).
    private var retired = RunOutput.Totals()
    /// Restarts waiting for their peer to come back, by slot: index into `events`, and the
    /// incarnation of the boot that crashed (the new one must be seen above it).
    private var restartEvents: [Int: (event: Int, before: UInt64)] = [:]
    /// `--task average`: the true average of the starting peers' initial vectors.
    public private(set) var trueAverage: [Double]?

    public init(options: SimulationOptions) throws {
        self.options = options
        self.networkRNG = Xoshiro256(seed: options.seed)
        self.scenarioRNG = Xoshiro256(seed: options.seed ^ 0x5CE7_A210)
        self.seeds = SplitMix64(seed: options.seed ^ 0x9EE5)
        self.faults = NetworkFaults(loss: options.link.loss)
        self.link = options.link
        self.clockRNG = Xoshiro256(seed: options.seed ^ 0xC10C)
        self.startingPeers = options.peers
        self.prefetching = options.peers >= Self.prefetchFromPeers
        let interval = options.settings.gossipInterval
        self.unixTimeAtZero = (1_800_000_000 / interval).rounded() * interval - (1 - options.settings.collectFraction) * interval / 2
        self.shards = ShardLedger(startingPeers: max(1, options.peers))
        self.verifier = ClaimVerifier(mode: options.crypto)
        var keySeed = SplitMix64(seed: options.seed ^ 0x4E7)
        let keyBytes = (0..<4).flatMap { _ in withUnsafeBytes(of: keySeed.next()) { Array($0) } }
        self.keyring = NetworkKeyring([try NetworkKey(bytes: keyBytes, mode: options.crypto)])
        if options.task != .membership {
            let all = try options.data.load(seed: options.learning.initialSeed)
            shared = try SharedData(all, testFraction: options.testFraction, seed: options.learning.initialSeed)
        }
    }

    // MARK: Running

    /// Runs to `options.duration`; `progress` is called about every simulated 10 s. `shouldStop`
    /// is polled every few thousand events: when it says so (Ctrl-C), the run ends where it is,
    /// with a last sample, so what was measured can still be written.
    public func run(progress: ((Double) -> Void)? = nil, shouldStop: () -> Bool = { false }) {
        let before = Self.processCPUSeconds()
        start()
        let started = Self.processCPUSeconds()
        defer { cpuSeconds = .init(startup: started - before, run: Self.processCPUSeconds() - started) }
        var next = 10.0
        var handled = 0
        while violation == nil, let t = queue.nextTime, t <= options.duration {
            let (time, event) = queue.pop()!
            now = time
            if prefetching { prefetch(handling: event) }
            handle(event)
            if now >= next {
                progress?(now)
                next = now + 10
            }
            handled += 1
            if handled % 4096 == 0 && shouldStop() {
                interruptedAt = now
                break
            }
        }
        if violation == nil && interruptedAt == nil { now = options.duration }
        if samples.last?.time != now { sample() }
        checkPending()
        if options.livenessSeconds > 0 && violation == nil && interruptedAt == nil { checkLiveness() }
    }

    /// Prefetching: with thousands of peers every event's peer comes from memory. While one event
    /// is handled, the next one's peer instance is on its way to the caches; when its turn comes,
    /// the heap memory it reads first (its datagram, session table, members tree) is asked for at
    /// once, not one miss after another. Hints only: results do not depend on them.
    ///
    /// Where the peers' state still sits in the caches the hints are pure overhead: paired runs on
    /// the project machine (32 MB of L3) measured +4 % at 256 to 1024 peers, −5 % at 2048 and
    /// −10 % at 4096 (docs/performance.md), hence the threshold.
    static let prefetchFromPeers = 1536

    private func prefetch(handling event: Event) {
        if let index = event.peer, let box = instances[index] {
            if case let .deliver(_, datagrams, _) = event {
                datagrams.first?.withUnsafeBytes { if let bytes = $0.baseAddress { chorus_prefetch(bytes, 64) } }
            }
            box.read { $0.memoryHints { chorus_prefetch($0, $1) } }
        }
        if let next = queue.peekNext({ $0.peer }) ?? nil, let box = instances[next] {
            chorus_prefetch(Unmanaged.passUnretained(box).toOpaque(), 16 + MemoryLayout<PeerInstance>.size)
        }
    }

    /// CPU seconds of this process spent building the starting network and running, for
    /// benchmarks (`scripts/bench-simulator.sh`): the start-up grows as n², the run should not.
    public private(set) var cpuSeconds: RunOutput.Summary.CPUSeconds?

    static func processCPUSeconds() -> Double {
        var t = timespec()
        clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t)
        return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
    }

    /// The simulated time at which the run was interrupted (nil: it ran to the end).
    public private(set) var interruptedAt: Double?

    private func start() {
        for index in 0..<options.peers { _ = addSlot(shard: index) }
        switch options.bootstrap {
        case .preload:
            for index in order { boot(index, seeds: [], fetchModel: false) }
            // A network in steady state: every peer starts knowing all the others (as a configured
            // network's peers do after their first sync), without n² start-up syncs.
            let claims = order.map { peek($0) { $0.aliveClaim } }
            var first: Int?
            for index in order {
                instances[index]!.value.preload(claims, sharing: first.map { instances[$0]!.value }, now: localNow(index))
                first = first ?? index
                schedule(index)
            }
        case .join:
            // Two seeds each, as a configured network lists a few: with one, newcomers that joined
            // through a newcomer whose view was still partial, and which left soon after, stayed
            // an island (fuzz seed 1005 of generator version 6).
            for index in order {
                var seeds = Set<Int>()
                for _ in 0..<min(2, index) { seeds.insert(Int.random(in: 0..<index, using: &scenarioRNG)) }
                boot(index, seeds: seeds.sorted().map { addresses[$0] }, fetchModel: false)
            }
        }
        if options.task == .average { trueAverage = Consensus.mean(order.map { peek($0) { $0.learner.parameters } }) }
        for (i, action) in options.schedule.actions.enumerated() where action.time < calmAt { queue.push(.action(i), at: action.time) }
        if let p = options.schedule.poisson, p.ratePerMinute > 0 { schedulePoisson(after: p.start) }
        queue.push(.sample, at: 0)
        queue.push(.check, at: 0.25)
        if options.livenessSeconds > 0 { queue.push(.calm, at: calmAt) }
    }

    private func addSlot(shard: Int) -> Int {
        let index = slots.count
        var seedBytes: [UInt8] = []
        for _ in 0..<4 { withUnsafeBytes(of: seeds.next()) { seedBytes += $0 } }
        let key = try! SigningKey(seed: seedBytes, mode: options.crypto)  // 32 bytes by construction
        var slot = Slot(name: "p\(index)", key: key, shard: shard)
        if options.clockOffset > 0 { slot.clockOffset = Double.random(in: -options.clockOffset...options.clockOffset, using: &clockRNG) }
        if options.clockDrift > 0 { slot.clockRate = 1 + Double.random(in: -options.clockDrift...options.clockDrift, using: &clockRNG) }
        if faults.loss > options.envelopeLoss { slot.degradedUntil = .infinity }
        if let b = options.byzantine, index < startingPeers, index >= startingPeers - b.count { slot.byzantine = b.kind }
        slots.append(slot)
        addresses.append(Self.address(ofSlot: index))
        instances.append(nil)
        scheduledTick.append(.infinity)
        return index
    }

    private func makeLearner(for slot: Slot) -> Learner {
        var settings = options.learning
        settings.model = options.model
        if slot.byzantine == .lr100 { settings.learningRate = 100 }
        settings.seed = options.learning.seed &+ UInt64(slot.shard) &* 7919 &+ slot.bootCount
        let data = shared ?? Self.tinyData
        let shard = (try? data.shard(slot.shard, of: startingPeers, scheme: options.partition, seed: options.learning.initialSeed))
            ?? data.train
        var learner = try! Learner(shard: shard, test: data.test, settings: settings)  // shapes agree by construction
        if options.task == .average {
            try! learner.replaceParameters(Learner.randomValues(count: learner.parameterCount,
                                                                seed: options.seed ^ UInt64(slot.shard) &* 0x9E37_79B9))
        }
        return learner
    }

    /// Membership-only runs still give each instance a (tiny) learner: it never trains.
    private static let tinyData: SharedData = {
        let d = try! Dataset(featureCount: 1, classCount: 2, features: [0, 1, 0, 1, 0], labels: [0, 1, 0, 1, 0])
        return try! SharedData(d, testFraction: 0.4, seed: 1)
    }()

    private func boot(_ index: Int, seeds: [PeerAddress], fetchModel: Bool) {
        var slot = slots[index]
        slot.bootCount += 1
        var settings = options.settings
        settings.fetchModel = fetchModel
        settings.evaluationInterval = 0  // the simulator evaluates at its own sample times
        if options.task == .membership { settings.gossipRounds = false }
        if options.task == .average {
            settings.stepsPerRound = 0
            settings.averaging.float64Values = true  // the exact averages the theory predicts, not float32's
        }
        switch slot.byzantine {
        case .huge: settings.poison = .huge
        case .random: settings.poison = .random
        case .lr100, nil: break
        }
        var learner = makeLearner(for: slot)
        if let saved = slot.checkpoint { try? learner.resume(parameters: saved.parameters, steps: saved.steps, epoch: saved.epoch) }
        let local = now * slot.clockRate
        let wallAtZero = unixTimeAtZero + slot.clockOffset
        let epoch = UInt64(wallAtZero + local) + slot.bootCount  // grows across restarts
        var instance = PeerInstance(
            identity: slot.key, keyring: keyring, epoch: epoch, address: addresses[index], settings: settings, learner: learner,
            now: local, unixTimeAtZero: wallAtZero, seed: self.seeds.next(), claimVerifier: verifier)
        let directives = instance.start(seeds: seeds, knownPeers: [], now: local)
        slots[index] = slot
        instances[index] = Box(instance)
        scheduledTick[index] = .infinity
        perform(directives, by: index)
        schedule(index)
    }

    // MARK: Engine

    private func handle(_ event: Event) {
        if let index = event.peer, slots[index].pausedUntil > now {
            queue.push(event, at: slots[index].pausedUntil)  // a stopped process: it all waits, in order
            return
        }
        switch event {
        case let .tick(index):
            guard running(index), scheduledTick[index] <= now else { return }
            scheduledTick[index] = .infinity
            let directives = instances[index]!.value.tick(now: localNow(index))
            perform(directives, by: index)
            schedule(index, afterTick: true)
        case let .deliver(index, datagrams, from):
            for (i, bytes) in datagrams.enumerated() {
                guard running(index) else { dropped += datagrams.count - i; return }
                let directives = instances[index]!.value.receive(bytes, from: from, now: localNow(index))
                perform(directives, by: index)
            }
            schedule(index)
        case let .learned(index, boot, result):
            guard running(index), slots[index].bootCount == boot else { return }
            finishLearning(result, by: index)
            schedule(index)
        case .calm:
            beginLiveness()
        case let .action(i):
            apply(options.schedule.actions[i])
        case .poisson:
            if !calm { poissonEvent() }
        case let .restart(index):
            guard !running(index) else { return }
            let seeds = entryPoints(for: index)
            boot(index, seeds: seeds, fetchModel: false)
            if let restart = restartEvents.removeValue(forKey: index) {
                pending.append((restart.event, index, .restart, restart.before))
            }
        case .sample:
            sample()
            if now + options.sampleInterval <= options.duration + 1e-9 { queue.push(.sample, at: now + options.sampleInterval) }
        case .check:
            checkPending()
            checkDetectionBound()
            queue.push(.check, at: now + 0.25)
        }
        if options.checkEveryEvent, let index = event.peer { checkSafety(of: index, after: event) }
    }

    /// The slot's own monotonic clock now (real time with its drift).
    private func localNow(_ index: Int) -> Double { now * slots[index].clockRate }

    /// The earliest real time at which the slot's clock reads `local`.
    private func realTime(_ index: Int, atLocal local: Double) -> Double {
        let rate = slots[index].clockRate
        guard rate != 1, local.isFinite else { return local }
        var t = local / rate
        while t * rate < local { t = t.nextUp }
        return t
    }

    private func finishLearning(_ result: LearningResult, by index: Int) {
        let more = instances[index]!.value.learningFinished(result, now: localNow(index))
        checkModel(of: index)
        perform(more, by: index)
    }

    private func perform(_ directives: [PeerDirective], by index: Int) {
        var work = directives
        var i = 0
        while i < work.count {
            switch work[i] {
            case let .send(datagrams, address, _, channel):
                transmit(datagrams, from: index, to: address, channel: channel)
            case let .learn(job):
                let result = job.run()  // on a copy of the parameters, as the real shell's thread
                if options.stepSeconds > 0 {
                    queue.push(.learned(index, boot: slots[index].bootCount, result), at: now + Double(job.steps) * options.stepSeconds)
                } else {
                    work += instances[index]!.value.learningFinished(result, now: localNow(index))
                    checkModel(of: index)
                }
            case let .saveCheckpoint(snapshot):
                slots[index].checkpoint = snapshot
            case let .event(event):
                record(event, by: index)
            }
            i += 1
        }
    }

    private func record(_ event: PeerEvent, by index: Int) {
        switch event {
        case .stopped:
            stop(index)
        case let .membership(.failed(subject)):
            // Only this peer's own declaration (its probe failed) is checked here: a failure it
            // merely learned was checked where it was declared, and one declared across a
            // partition may still arrive after the heal, until the subject refutes it.
            // A verdict on an earlier boot of a peer that restarted since is right: that boot crashed.
            let claim = peek(index) { $0.membership.members[subject]?.statusClaim }
            guard let claim, claim.accuser == peek(index, { $0.id }),
                  let s = slotIndex(of: subject), running(s), claim.incarnation >= peek(s, { $0.membership.incarnation }),
                  reachable(s, index), reachable(index, s), !separatedRecently(s, index)
            else { return }
            falseFailures += 1
            violate("\(slots[index].name) declared \(slots[s].name) failed while it runs and is reachable")
        default:
            break
        }
    }

    /// Sends one directive's datagrams. Without a bandwidth limit, duplication or reordering they
    /// travel as one burst: each may be lost, the rest share one latency and arrive in order (one
    /// event instead of one per datagram: a quarter of a training simulation's time was spent
    /// queueing, delivering and scheduling datagrams one by one).
    private func transmit(_ datagrams: [[UInt8]], from index: Int, to address: PeerAddress, channel: UInt8?) {
        let link = self.link
        guard link.bandwidth == nil, link.duplication == 0, link.reorder == 0 else {
            for bytes in datagrams { transmitOne(bytes, from: index, to: address, channel: channel) }
            return
        }
        guard let target = slot(at: address), reachable(index, target) else { dropped += datagrams.count; return }
        var burst = datagrams  // shared, not copied, unless one is lost
        let loss = lossProbability(from: index, to: target, channel: channel)
        if loss > 0 {
            var kept = 0
            for (i, bytes) in datagrams.enumerated() where Double.random(in: 0..<1, using: &networkRNG) >= loss {
                if kept != i { burst[kept] = bytes }
                kept += 1
            }
            dropped += burst.count - kept
            if kept == 0 { return }
            burst.removeLast(burst.count - kept)
        }
        queue.push(.deliver(to: target, datagrams: burst, from: addresses[index]),
                   at: now + latency(link) + faults.extraDelay(from: index, to: target))
    }

    private func lossProbability(from: Int, to: Int, channel: UInt8?) -> Double {
        if let only = link.lossChannels, !(channel.map(only.contains) ?? false) { return 0 }
        return faults.lossProbability(from: from, to: to)
    }

    /// One datagram on its own: its departure behind the sender's earlier ones (bandwidth), and
    /// its own loss, duplication, latency and reordering.
    private func transmitOne(_ bytes: [UInt8], from index: Int, to address: PeerAddress, channel: UInt8?) {
        var departure = now
        if let bandwidth = link.bandwidth {
            departure = max(now, slots[index].linkFreeAt) + Double(bytes.count) / bandwidth
            slots[index].linkFreeAt = departure
            // A queue this long delays probes and acks as much as a slow link: outside
            // membership's envelope until it drains (fuzz seed 32 of version 3: parameters
            // filled a 245 kB/s link).
            if departure - now >= options.settings.membership.probeTimeout / 4 {
                slots[index].degradedUntil = max(slots[index].degradedUntil, departure)
            }
        }
        guard let target = slot(at: address), reachable(index, target) else { dropped += 1; return }
        let loss = lossProbability(from: index, to: target, channel: channel)
        if loss > 0 && Double.random(in: 0..<1, using: &networkRNG) < loss { dropped += 1; return }
        let link = self.link
        let copies = link.duplication > 0 && Double.random(in: 0..<1, using: &networkRNG) < link.duplication ? 2 : 1
        let from = addresses[index]
        for _ in 0..<copies {
            var delay = latency(link) + faults.extraDelay(from: index, to: target)
            if link.reorder > 0 && Double.random(in: 0..<1, using: &networkRNG) < link.reorder { delay += link.reorderDelay }
            queue.push(.deliver(to: target, datagrams: [bytes], from: from), at: departure + delay)
        }
    }

    private func latency(_ link: LinkModel) -> Double {
        link.jitter > 0 ? link.base - link.jitter * log(1 - Double.random(in: 0..<1, using: &networkRNG)) : link.base
    }

    /// Slot i listens at 10.x.y.z:7000 where x·4096 + y·64 + z = i (y, z below 64): the address
    /// is read back into the slot (every datagram sent needs it) instead of hashing it into a
    /// dictionary, and up to 40 960 slots it is at most 15 bytes, which Swift keeps inside the
    /// string value. (With bytes up to 255, a quarter of 4096 peers' addresses took 16 bytes: a
    /// heap object retained, released and fetched from memory wherever the address went.)
    static func address(ofSlot index: Int) -> PeerAddress {
        "10.\(index / 4096 % 256).\(index / 64 % 64).\(index % 64):7000"
    }

    /// The slot listening at `address`, if any: read back from the text, which must be exactly
    /// what `address(ofSlot:)` hands out (no leading zeros, port 7000). Every datagram sent asks,
    /// so the slot table (a cache miss at thousands of peers) is not consulted.
    private func slot(at address: PeerAddress) -> Int? { Self.slot(at: address, below: slots.count) }

    static func slot(at address: PeerAddress, below slotCount: Int) -> Int? {
        let zero = UInt8(ascii: "0"), nine = UInt8(ascii: "9")
        var index = 0, value = 0, digits = 0, field = 0  // fields: 10 . x . y . z : port
        for byte in address.utf8 {
            if byte >= zero && byte <= nine {
                guard digits == 0 || value > 0, digits < 4 else { return nil }  // a leading zero, or too long
                value = value * 10 + Int(byte - zero)
                digits += 1
                continue
            }
            guard digits > 0, byte == UInt8(ascii: field < 3 ? "." : ":") else { return nil }
            switch field {
            case 0: guard value == 10 else { return nil }
            case 1: guard value < 256 else { return nil }
            default: guard value < 64 else { return nil }
            }
            if field > 0 { index = index * 64 + value }
            (field, value, digits) = (field + 1, 0, 0)
        }
        guard field == 4, value == 7000, index < slotCount else { return nil }
        return index
    }

    /// Whether what `a` sends reaches `b` across the partition, if any.
    private func reachable(_ a: Int, _ b: Int) -> Bool {
        guard !sides.isEmpty else { return true }
        let (sa, sb) = (sides[a] ?? 0, sides[b] ?? 0)
        if sa == sb { return true }
        switch partitionDirection {
        case .both: return false
        case .out: return sa == 0  // side 1 (the targets) cannot send to side 0
        case .in: return sb == 0  // side 1 cannot receive from side 0
        }
    }

    /// Whether `a` and `b` were cut apart by a partition that ended within the longest suspicion
    /// timeout (Lifeguard's maximum, stretched by the worst local health).
    /// A pause of either within that window excuses a verdict the same way: a stopped process
    /// does not answer, and one that wakes up finds its probes timed out.
    private func separatedRecently(_ a: Int, _ b: Int) -> Bool {
        let m = options.settings.membership
        let n = Double(max(live.count, 1))
        let window = m.suspicionMaxMultiplier * m.suspicionMultiplier * max(1, log10(n)) * m.probeInterval * Double(1 + m.maxLocalHealth)
        for s in [a, b] where now - slots[s].pausedUntil <= window || now - slots[s].degradedUntil <= window { return true }
        return healed.contains { now - $0.at <= window && ($0.sides[a] ?? 0) != ($0.sides[b] ?? 0) }
    }

    /// Ticks in a row that left a peer's next deadline at or before the tick's time. A tick must
    /// do what is due: one that leaves it due asks to be ticked again at the same instant, and
    /// a shell that obeys spins there forever (the real shell's loop, this simulator's queue).
    private var stalledTicks: [Int: Int] = [:]
    static let spinLimit = 1000

    /// Queues the peer's next tick at its deadline. After a tick, a deadline still due is a
    /// stall (`stalledTicks`), reported once it repeats `spinLimit` times.
    private func schedule(_ index: Int, afterTick: Bool = false) {
        guard running(index) else { return }
        let deadline = peek(index) { $0.nextDeadline }
        if afterTick {
            if deadline <= localNow(index) {
                stalledTicks[index, default: 0] += 1
                if stalledTicks[index]! >= Self.spinLimit {
                    violate("\(slots[index].name) spins: \(Self.spinLimit) ticks at \(String(format: "%.3f", now)) s left its next deadline due")
                    stop(index)  // so the run ends instead of hanging
                    return
                }
            } else if !stalledTicks.isEmpty {
                stalledTicks[index] = nil
            }
        }
        let at = max(now, realTime(index, atLocal: deadline))
        guard at.isFinite, at < scheduledTick[index] else { return }
        scheduledTick[index] = at
        queue.push(.tick(index), at: at)
    }

    private var idToSlot: [PeerID: Int] = [:]
    private func slotIndex(of id: PeerID) -> Int? {
        if idToSlot.count != slots.count {
            for i in order { idToSlot[slots[i].key.peerID] = i }
        }
        return idToSlot[id]
    }

    // MARK: Invariants

    private func checkModel(of index: Int) {
        guard running(index), slots[index].byzantine == nil else { return }
        let (mix, finite) = peek(index) { ($0.lastMix, $0.learner.parameters.allSatisfy(\.isFinite)) }
        if let mix {
            let sum = mix.selfWeight + mix.weights.values.reduce(0, +)
            if mix.selfWeight < -1e-12 || mix.weights.values.contains(where: { $0 < 0 }) || abs(sum - 1) > 1e-9 {
                violate("\(slots[index].name) mixed with weights that are negative or do not sum to one (sum \(sum), self \(mix.selfWeight))")
            }
        }
        if !finite { violate("\(slots[index].name) holds a NaN or infinite parameter") }
    }

    /// What `checkEveryEvent` checks after each event of a running peer. The model changes only
    /// in ticks (a mix), training results and, for a joiner, an adopted model, and the view only
    /// when `memberChanges` moved: only then are they read again (reading 650 parameters and
    /// every member after each of millions of deliveries made a 46-peer complete graph crawl).
    private func checkSafety(of index: Int, after event: Event) {
        guard running(index) else { return }
        let (incarnation, changes, reassembly, budget, joining, clusterSize) = peek(index) {
            ($0.membership.incarnation, $0.membership.memberChanges, $0.wire.reassemblyBytesInUse,
             $0.settings.wire.reassemblyBudgetBytes, $0.phase == .joining, $0.membership.liveMemberCount)
        }
        switch event {
        case .tick, .learned: checkModel(of: index)
        default: if joining { checkModel(of: index) }
        }
        if clusterSize != slots[index].clusterSizeSeen {
            (slots[index].clusterSizeSeen, slots[index].clusterChangedAt) = (clusterSize, localNow(index))
        }
        if case .tick = event { checkSuspicionTimer(of: index) }
        let name = slots[index].name
        if incarnation < slots[index].incarnationSeen {
            violate("\(name)'s own incarnation went back from \(slots[index].incarnationSeen) to \(incarnation)")
        }
        slots[index].incarnationSeen = incarnation
        if reassembly > budget { violate("\(name) holds \(reassembly) bytes of reassembly, over its budget of \(budget)") }
        guard changes != slots[index].memberChangesSeen else { return }
        slots[index].memberChangesSeen = changes
        let (members, own) = peek(index) { ($0.membership.members, $0.id) }
        if members.count > slots.count { violate("\(name) lists \(members.count) members, but only \(slots.count) peers ever existed") }
        let seen = slots[index].viewIncarnations
        var current: [PeerID: UInt64] = [:]
        current.reserveCapacity(members.count)
        for (id, member) in members where id != own {
            guard let subject = slotIndex(of: id) else {
                violate("\(name) lists a member \(id) that no simulated peer is")
                continue
            }
            if let before = seen[id], member.incarnation < before {
                violate("\(name)'s view of \(slots[subject].name) went back from incarnation \(before) to \(member.incarnation)")
            }
            current[id] = member.incarnation
        }
        slots[index].viewIncarnations = current
    }

    /// A suspicion timer runs out when Lifeguard's timeout as docs/membership.md states it says,
    /// recomputed here on its own from the peer's settings, the accusers (the first and `c`
    /// confirmations) and the cluster size it counted: no sooner, and no later than that, the
    /// last confirmation or the last change of cluster size (unless the peer was paused
    /// meanwhile). An off-by-one in the confirmations declares crashes a few seconds early and,
    /// since a lone accusation is verified by one more probe, no false failure shows it: only this
    /// check does (planted-bug check, docs/experiments.md).
    private func checkSuspicionTimer(of index: Int) {
        let (count, expiry, settings) = peek(index) { ($0.membership.timerExpiries, $0.membership.lastTimerExpiry, $0.membership.settings) }
        guard count != slots[index].timerExpiriesSeen, let expiry else { return }
        slots[index].timerExpiriesSeen = count
        let timeout = Self.documentedSuspicionTimeout(settings, accusers: expiry.accusers, clusterSize: expiry.clusterSize)
        let ran = expiry.expiredAt - expiry.startedAt
        let due = max(timeout, expiry.confirmedAt - expiry.startedAt, slots[index].clusterChangedAt - expiry.startedAt)
        let paused = slots[index].pausedUntil * slots[index].clockRate >= expiry.startedAt
        if ran < timeout - 1e-9 || (ran > due + 1e-6 && !paused) {
            let subject = slotIndex(of: expiry.subject).map { slots[$0].name } ?? "\(expiry.subject)"
            violate(String(format: "%@'s suspicion of %@ ran out after %.3f s, not when due at %.3f s (Lifeguard's timeout for %d accuser(s) in a cluster of %d is %.3f s)",
                           slots[index].name, subject, ran, due, expiry.accusers, expiry.clusterSize, timeout))
        }
    }

    /// Lifeguard's suspicion timeout as docs/membership.md states it, written here apart from
    /// `MembershipInstance` on purpose: the check compares the two.
    static func documentedSuspicionTimeout(_ settings: MembershipSettings, accusers: Int, clusterSize: Int) -> Double {
        let minimum = settings.suspicionMultiplier * max(1, log10(Double(max(clusterSize, 1)))) * settings.probeInterval
        let maximum = settings.suspicionMaxMultiplier * minimum
        let k = clusterSize - 2 < settings.expectedConfirmations ? 0 : settings.expectedConfirmations
        let c = Double(accusers - 1)  // confirmations beyond the first accuser
        return k == 0 ? minimum : max(minimum, maximum - (maximum - minimum) * log(c + 1) / log(Double(k) + 1))
    }

    /// Crashes still not seen by every live peer after `detectionBound` seconds, each reported once.
    private func checkDetectionBound() {
        guard let bound = options.detectionBound else { return }
        for entry in pending where entry.kind == .crash && now - events[entry.event].time > bound {
            let e = events[entry.event]
            let blind = live.filter { $0 != entry.slot && !isSeenByAll(entry, by: [$0]) }
            violate(String(format: "crash of %@ at %.2f s not seen by every live peer within the detection bound of %.1f s (not by %d of %d)",
                           e.peer, e.time, bound, blind.count, live.count))
            return
        }
    }

    // MARK: Liveness

    /// The liveness phase begins: every partition, loss, delay, duplication, reordering and pause
    /// ends, and no more churn comes (schedule actions and Poisson events stop here).
    private func beginLiveness() {
        calm = true
        endPartition()
        faults = NetworkFaults(loss: 0)
        link.loss = 0
        link.duplication = 0
        link.reorder = 0
        for index in order where slots[index].pausedUntil > now { slots[index].pausedUntil = now }
        markDegraded()
        events.append(.init(time: now, action: "liveness", peer: "network"))
        consensusAtCalm = consensusMax()
    }

    /// After the liveness phase: every action seen by all, every live view whole and, for
    /// averaging tasks, consensus contracted. Each miss is a violation naming what is missing.
    private func checkLiveness() {
        let phase = String(format: "%.0f s after faults healed and churn stopped", options.livenessSeconds)
        for entry in pending {
            // A join or restart whose peer went again later (a crash, a leave) is moot; a leave
            // whose goodbye was lost is recorded as failed, which is gone all the same.
            if entry.kind == .join || entry.kind == .restart, let slot = entry.slot, !running(slot) { continue }
            if entry.kind == .leave && isSeenByAll((entry.event, entry.slot, .crash, entry.incarnation)) { continue }
            let e = events[entry.event]
            let blind = live.filter { $0 != entry.slot && !isSeenByAll((entry.event, entry.slot, entry.kind, entry.incarnation), by: [$0]) }
            let names = blind.prefix(5).map { q -> String in
                guard let slot = entry.slot else { return slots[q].name }
                let id = slots[slot].key.peerID
                let seen = peek(q) { $0.membership.members[id] }.map { "\($0.status) \($0.incarnation)" } ?? "not listed"
                return "\(slots[q].name) has it \(seen)"
            }.joined(separator: ", ") + (blind.count > 5 ? ", …" : "")
            let own = entry.slot.flatMap { s in running(s) ? peek(s) { " (its incarnation \($0.membership.incarnation), \($0.phase))" } : nil } ?? ""
            violate(String(format: "liveness: %@ of %@%@ at %.2f s not seen by every live peer %@ (not by %d: %@)",
                           e.action, e.peer, own, e.time, phase, blind.count, names))
        }
        let live = self.live
        let ids = Set(live.map { slots[$0].key.peerID })
        for q in live {
            let view = Set(peek(q) { $0.membership.members.values.filter(\.isLive).map(\.id) + [$0.id] })
            if view != ids {
                let missing = ids.subtracting(view).compactMap(slotIndex(of:)).sorted().map { slots[$0].name }
                let extra = view.subtracting(ids).compactMap(slotIndex(of:)).sorted().map { slots[$0].name }
                violate("liveness: \(slots[q].name)'s view is not whole \(phase): missing [\(missing.joined(separator: " "))], gone but listed [\(extra.joined(separator: " "))]")
                break
            }
        }
        if options.task == .average, let before = consensusAtCalm, let after = consensusMax(),
           after > max(Self.consensusFloor, options.livenessContraction * before) {
            violate(String(format: "liveness: consensus max %.3g at the end, %.3g when faults healed: not down to %.2g of it %@",
                           after, before, options.livenessContraction, phase))
        }
    }

    /// Consensus this close counts as reached (float64 averaging's rounding noise is far below).
    public static let consensusFloor = 1e-9

    /// The largest relative distance between the estimates of the peers holding one.
    private func consensusMax() -> Double? {
        let vectors = live.filter { peek($0) { $0.phase } == .training }.compactMap { peek($0) { $0.estimate } }
        return vectors.count < 2 ? nil : Consensus.relativeDistances(vectors).max()
    }

    private func violate(_ message: String) {
        guard violation == nil else { return }
        let v = Violation(time: now, seed: options.seed, message: message)
        if options.stopOnViolation { violation = v } else { violationsPassed.append(v) }
    }

    // MARK: Churn

    private func apply(_ action: Schedule.Action) {
        for step in ChurnDriver.steps(for: action, targetable: live, startingPeers: startingPeers, using: &scenarioRNG) {
            carryOut(step, label: action.label)
        }
    }

    /// One churn step on the simulated network; `label` is events.csv's action column.
    private func carryOut(_ step: ChurnDriver.Step, label: String) {
        switch step {
        case let .crash(index):
            crash(index)
        case let .leave(index):
            leave(index)
        case let .restart(index, down):
            restartEvents[index] = (note(.restart, slot: index), peek(index) { $0.membership.incarnation })
            stop(index, restarting: true)
            queue.push(.restart(index), at: now + down)
        case .join:
            join()
        case let .partition(side, direction):
            endPartition()
            for i in order { sides[i] = side.contains(i) ? 1 : 0 }
            partitionDirection = direction
            events.append(.init(time: now, action: label, peer: "network"))
        case let .pause(chosen, seconds):
            for index in chosen { slots[index].pausedUntil = max(slots[index].pausedUntil, now + seconds) }
            events.append(.init(time: now, action: label, peer: chosen.map { slots[$0].name }.joined(separator: " ")))
        case .heal:
            endPartition()
            events.append(.init(time: now, action: "heal", peer: "network"))
            pending.append((events.count - 1, nil, .heal, 0))
        case let .fault(action, scope):
            switch scope {
            case let .link(a, b):
                faults.set(action, link: (a, b))
                events.append(.init(time: now, action: label, peer: action.linkName ?? "network"))
            case let .peers(chosen):
                for index in chosen { faults.set(action, peer: index) }
                events.append(.init(time: now, action: label, peer: chosen.map { slots[$0].name }.joined(separator: " ")))
            case .network:
                faults.loss = action.probability
                events.append(.init(time: now, action: label, peer: "network"))
            }
            markDegraded()
        }
    }

    /// Marks which slots' traffic is outside membership's envelope now (`envelopeLoss`, a delay
    /// of a quarter of the probe timeout), and when those that left it did.
    private func markDegraded() {
        let limit = options.envelopeLoss
        let slowDelay = options.settings.membership.probeTimeout / 4
        var degraded = Set<Int>()
        if faults.loss > limit {
            degraded = Set(order)
        } else {
            func combined(_ p: Double) -> Double { 1 - (1 - faults.loss) * (1 - p) }
            for (slot, p) in faults.lossIn.merging(faults.lossOut, uniquingKeysWith: max) where combined(p) > limit { degraded.insert(slot) }
            for (l, p) in faults.linkLoss where combined(p) > limit { degraded.formUnion([l.from, l.to]) }
            for (slot, d) in faults.delayIn.merging(faults.delayOut, uniquingKeysWith: max) where d >= slowDelay { degraded.insert(slot) }
            for (l, d) in faults.linkDelay where d >= slowDelay { degraded.formUnion([l.from, l.to]) }
        }
        for slot in order {
            if degraded.contains(slot) {
                slots[slot].degradedUntil = .infinity
            } else if slots[slot].degradedUntil == .infinity {
                slots[slot].degradedUntil = now
            }
        }
    }

    private func endPartition() {
        guard !sides.isEmpty else { return }
        healed.removeAll { now - $0.at > 3600 }  // far longer than any suspicion
        healed.append((sides, now))
        sides = [:]
    }

    private func note(_ kind: Schedule.Kind, slot: Int) -> Int {
        events.append(.init(time: now, action: kind.rawValue, peer: slots[slot].name))
        return events.count - 1
    }

    /// A new peer joins through a random live member, taking the shard of a departed peer when
    /// one is free (docs/experiments.md, "Data under churn").
    private func join() {
        let index = addSlot(shard: shards.assignJoiner())
        let seeds = entryPoints(for: index)
        let event = note(.join, slot: index)
        boot(index, seeds: seeds, fetchModel: options.task != .membership)
        pending.append((event, index, .join, 0))
    }

    /// Stops a peer at once (kill -9), and watches for every live peer to see it.
    private func crash(_ index: Int) {
        let event = note(.crash, slot: index)
        stop(index)
        pending.append((event, index, .crash, 0))
    }

    /// Starts a graceful leave (the peer lingers, then reports `stopped`), and watches for it.
    private func leave(_ index: Int) {
        let event = note(.leave, slot: index)
        perform(instances[index]!.value.leave(now: localNow(index)), by: index)
        schedule(index)
        pending.append((event, index, .leave, 0))
    }

    private func stop(_ index: Int, restarting: Bool = false) {
        guard running(index) else { return }
        peek(index) { Self.add($0, to: &retired) }
        instances[index] = nil
        scheduledTick[index] = .infinity
        if !restarting { shards.release(slots[index].shard) }
    }

    /// Entry points for a joiner or a restarted peer (`EntryPoints`: settled peers when there
    /// are any), among the live peers it can reach: across a partition a seed is out of reach,
    /// and a newcomer given one waited for it until it left, alone for good (fuzz seed 1276 of
    /// version 4); an operator would name reachable ones.
    private func entryPoints(for index: Int) -> [PeerAddress] {
        var candidates = live.filter { $0 != index && peek($0) { $0.phase } != .leaving }
        if !sides.isEmpty {
            let reachableOnes = candidates.filter { reachable(index, $0) && reachable($0, index) }
            if !reachableOnes.isEmpty { candidates = reachableOnes }
        }
        let settled = { (q: Int) in self.peek(q) { $0.phase == .training && $0.settled } }
        return EntryPoints.pick(from: candidates, settled: settled, using: &scenarioRNG).map { addresses[$0] }
    }

    private func schedulePoisson(after t: Double) {
        guard let at = options.schedule.poisson?.nextEvent(after: t, startingPeers: startingPeers, duration: calmAt,
                                                           using: &scenarioRNG) else { return }
        queue.push(.poisson, at: at)
    }

    private func poissonEvent() {
        guard let p = options.schedule.poisson else { return }
        let targetable = live.filter { peek($0) { $0.phase } != .leaving }
        for step in ChurnDriver.steps(for: p, targetable: targetable, using: &scenarioRNG) { carryOut(step, label: "") }
        schedulePoisson(after: now)
    }

    // MARK: Seen by all

    private func checkPending() {
        guard !pending.isEmpty else { return }
        pending.removeAll { entry in
            guard isSeenByAll(entry) else { return false }
            events[entry.event].seenByAllAfter = now - events[entry.event].time
            return true
        }
    }

    private func isSeenByAll(_ entry: (event: Int, slot: Int?, kind: Schedule.Kind, incarnation: UInt64), by observers: [Int]? = nil) -> Bool {
        let live = (observers ?? self.live).filter { $0 != entry.slot }
        switch entry.kind {
        case .heal:
            return viewAgreement() == 1
        case .crash, .leave, .join, .restart:
            let slot = entry.slot!
            let id = slots[slot].key.peerID
            let training = running(slot) && peek(slot) { $0.phase } == .training
            return SeenByAll.seen(entry.kind, subjectRunning: running(slot), subjectTraining: training, before: entry.incarnation,
                                  views: live.lazy.map { q in
                guard let m = self.peek(q, { $0.membership.members[id] }) else { return .absent }
                switch m.status {
                case .alive: return .alive(incarnation: m.incarnation)
                case .suspect: return .suspect(incarnation: m.incarnation)
                case .failed: return .failed
                case .left: return .left
                }
            })
        case .partition, .loss, .delay, .pause:
            return true
        }
    }

    // MARK: Sampling

    /// Fraction of live peers whose live view is exactly the set of running peers, compared by
    /// size and set digest (O(n) in all: comparing every view id by id was O(n²) per sample, a
    /// fifth of a 4096-member run).
    func viewAgreement() -> Double {
        let live = self.live
        guard !live.isEmpty else { return 1 }
        let truth = MembershipInstance.setDigest(live.map { slots[$0].key.peerID })
        var agreeing = 0
        for q in live where peek(q, { $0.membership.liveMemberCount == live.count && $0.membership.liveMembersDigest == truth }) {
            agreeing += 1
        }
        return Double(agreeing) / Double(live.count)
    }

    private func sample() {
        let live = self.live
        var bytes = 0, rejected = 0
        for i in live {
            let (sent, rejections) = peek(i) { ($0.traffic.bytesSent, $0.wire.totalRejected) }
            bytes += sent - slots[i].bytesSentSeen
            slots[i].bytesSentSeen = sent
            rejected += rejections - slots[i].rejectedSeen
            slots[i].rejectedSeen = rejections
        }
        let interval = max(now - lastSampleAt, 1e-9)
        lastSampleAt = now
        var row = RunOutput.Sample(
            time: now, livePeers: live.count, viewAgreement: viewAgreement(),
            bytesPerPeerPerSecond: live.isEmpty || now == 0 ? 0 : Double(bytes) / Double(live.count) / interval,
            datagramsDropped: dropped - droppedSeen, datagramsRejected: rejected)
        droppedSeen = dropped
        if options.task != .membership {
            let holders = live.filter { peek($0) { $0.phase } == .training && slots[$0].byzantine == nil }
            // Averaging alone is measured in double precision, on the estimates themselves.
            let vectors: [[Double]] = options.task == .average
                ? holders.compactMap { peek($0) { $0.estimate } }
                : holders.map { peek($0) { $0.learner.parameters.map(Double.init) } }
            if !vectors.isEmpty {
                let distances = Consensus.relativeDistances(vectors)
                row.consensusMean = distances.reduce(0, +) / Double(distances.count)
                row.consensusMax = distances.max()
                if let trueAverage { row.averageError = Consensus.relativeDistances(vectors, to: trueAverage).max() }
            }
            if options.task == .train && !holders.isEmpty {
                let evaluations = holders.map { peek($0) { $0.evaluate() } }
                let accuracies = evaluations.map(\.accuracy)
                row.accuracyMean = accuracies.reduce(0, +) / Double(accuracies.count)
                row.accuracyMin = accuracies.min()
                row.accuracyMax = accuracies.max()
                row.lossMean = evaluations.map(\.loss).reduce(0, +) / Double(evaluations.count)
            }
        }
        samples.append(row)
    }

    // MARK: Results

    public func summary(wallSeconds: Double) -> RunOutput.Summary {
        let last = samples.last
        return RunOutput.Summary(
            peers: options.peers, seed: options.seed, duration: options.duration, wallSeconds: wallSeconds,
            task: options.task.rawValue, crypto: options.crypto.rawValue,
            final: .init(livePeers: last?.livePeers ?? 0, accuracyMin: last?.accuracyMin, accuracyMean: last?.accuracyMean,
                         consensusMax: last?.consensusMax, averageError: last?.averageError),
            events: events, falseFailures: falseFailures, violation: (violation ?? violationsPassed.first)?.description,
            violationsPassed: violationsPassed.count, interruptedAt: interruptedAt, totals: totals, cpuSeconds: cpuSeconds)
    }

    /// The most optimiser steps a starting peer still running has taken itself (what a baseline
    /// must match: `chorus simulate --baseline`).
    public var stepsPerStartingPeer: Int {
        live.filter { $0 < startingPeers }.map { peek($0) { $0.learner.ownSteps } }.max() ?? 0
    }

    /// Every peer's counters added up: the stopped ones' and those running now.
    public var totals: RunOutput.Totals {
        var sum = retired
        for index in live { peek(index) { Self.add($0, to: &sum) } }
        return sum
    }

    private static func add(_ peer: PeerInstance, to totals: inout RunOutput.Totals) {
        totals.datagramsSent += peer.traffic.datagramsSent
        totals.bytesSent += peer.traffic.bytesSent
        totals.payloadBytesSent.merge(peer.traffic.payloadBytesSent, uniquingKeysWith: +)
        let s = peer.membership.stats
        let counters = ["probes": s.probes, "failedProbes": s.failedProbes, "indirectProbes": s.indirectProbes,
                        "directRetries": s.directRetries,
                        "suspicionsRaised": s.suspicionsRaised, "refutations": s.refutations,
                        "failuresDeclared": s.failuresDeclared, "pausesDetected": s.pausesDetected, "messagesSent": s.messagesSent]
        totals.membership.merge(counters, uniquingKeysWith: +)
        for (reason, count) in peer.averager.rejections { totals.parameters[reason.rawValue, default: 0] += count }
    }
}

/// Loss and extra delay as a run's schedule sets them: on every datagram, on what given peers
/// send or receive, or on one link (slot to slot). Probabilities combine as independent drops.
struct NetworkFaults {
    var loss: Double
    var lossIn: [Int: Double] = [:], lossOut: [Int: Double] = [:]
    var delayIn: [Int: Double] = [:], delayOut: [Int: Double] = [:]
    var linkLoss: [Link: Double] = [:], linkDelay: [Link: Double] = [:]

    struct Link: Hashable { var from: Int, to: Int }

    init(loss: Double) { self.loss = loss }

    func lossProbability(from: Int, to: Int) -> Double {
        guard !(loss == 0 && lossIn.isEmpty && lossOut.isEmpty && linkLoss.isEmpty) else { return 0 }
        var kept = 1 - loss
        kept *= 1 - (lossOut[from] ?? 0)
        kept *= 1 - (lossIn[to] ?? 0)
        kept *= 1 - (linkLoss[Link(from: from, to: to)] ?? 0)
        return 1 - kept
    }

    /// Seconds added to a datagram's latency.
    func extraDelay(from: Int, to: Int) -> Double {
        guard !(delayIn.isEmpty && delayOut.isEmpty && linkDelay.isEmpty) else { return 0 }
        return (delayOut[from] ?? 0) + (delayIn[to] ?? 0) + (linkDelay[Link(from: from, to: to)] ?? 0)
    }

    /// A loss or delay action on one peer's traffic.
    mutating func set(_ action: Schedule.Action, peer: Int) {
        let value = action.kind == .loss ? action.probability : action.delayMs / 1000
        if action.direction != .out { action.kind == .loss ? (lossIn[peer] = value) : (delayIn[peer] = value) }
        if action.direction != .in { action.kind == .loss ? (lossOut[peer] = value) : (delayOut[peer] = value) }
    }

    /// A loss or delay action on one link (both ways with direction both).
    mutating func set(_ action: Schedule.Action, link: (Int, Int)) {
        let value = action.kind == .loss ? action.probability : action.delayMs / 1000
        var links = [Link(from: link.0, to: link.1)]
        if action.direction == .both { links.append(Link(from: link.1, to: link.0)) }
        for l in links { action.kind == .loss ? (linkLoss[l] = value) : (linkDelay[l] = value) }
    }
}
