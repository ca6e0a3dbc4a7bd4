// `PeerSimulation`'s state and its engine: the slots and their running instances, the event
// queue, start-up, the run loop, booting and stopping a peer, and handling each event (ticks,
// deliveries, learning results, directives). The rest of the class is in extensions, by concept:
//   PeerSimulation+Network.swift   datagrams on the simulated network: loss, latency, partitions, faults
//   PeerSimulation+Churn.swift     carrying out schedule actions and Poisson churn (crash, leave, join, …)
//   PeerSimulation+Checks.swift    invariants, the detection bound, seen by all, the liveness phase
//   PeerSimulation+Sampling.swift  series.csv rows, view agreement, the summary and totals
// Its options are in SimulationOptions.swift.

import CPrefetch
@_spi(Simulation) import ChorusCore
import ChorusCrypto
import ChorusLearning
import ChorusMembership
import ChorusRuns
import ChorusWire
import Foundation

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
        /// The entry points of its latest boot.
        var seeds: [PeerAddress] = []
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
    public internal(set) var samples: [RunOutput.Sample] = []
    public internal(set) var events: [RunOutput.Event] = []
    public private(set) var falseFailures = 0
    public internal(set) var violation: Violation?
    /// Invariant violations recorded and passed over (`stopOnViolation` off), in order.
    public internal(set) var violationsPassed: [Violation] = []

    var slots: [Slot] = []
    /// Each slot's address, apart from the rest of the slot: every datagram sent reads its
    /// sender's, and 16-byte entries stay in cache where the slot table is a miss at thousands.
    var addresses: [PeerAddress] = []
    /// The running instance of each slot (nil: crashed, left, or down for a restart). Boxed, so
    /// reading one never copies the whole instance.
    var instances: [Box?] = []
    final class Box {
        var value: PeerInstance
        init(_ value: PeerInstance) { self.value = value }
        /// Reads through an inout access: a plain read of `value` would copy the whole instance.
        func read<T>(_ body: (inout PeerInstance) -> T) -> T { body(&value) }
    }
    /// When each slot's next tick is queued (so a slot has at most one pending tick).
    private var scheduledTick: [Double] = []
    var order: Range<Int> { 0..<slots.count }
    /// Reads a running instance in place (a plain read of `Box.value` copies the whole instance).
    func peek<T>(_ index: Int, _ body: (inout PeerInstance) -> T) -> T { instances[index]!.read(body) }
    func running(_ index: Int) -> Bool { instances[index] != nil }
    var live: [Int] { order.filter { instances[$0] != nil } }
    var queue = EventQueue<Event>()
    /// The network's randomness (loss, latency, duplication) apart from the scenario's (targets).
    var networkRNG: Xoshiro256
    var scenarioRNG: Xoshiro256
    private var seeds: SplitMix64
    /// Loss and delay as the schedule last set them (`--loss`, `loss` and `delay` actions).
    var faults: NetworkFaults
    /// The partition in force, if any, and those that ended (`Partitions`).
    var partitions = Partitions()
    /// The link model as the run stands (the liveness phase removes its loss, duplication and
    /// reordering).
    var link: LinkModel
    /// Where the liveness phase begins (the run's end without one).
    var calmAt: Double { options.duration - options.livenessSeconds }
    var calm = false
    var consensusAtCalm: Double?
    /// Whether anything in this run may lose push-sum mass by design (a crash, a leave, a
    /// restart, a failure declared, a partition, a pause, loss above `pushSumExactLoss`); if
    /// not, the liveness phase checks the average is kept (`checkAverageKept`).
    var massMayBeLost = false
    /// The clocks' generator, apart from the others so that runs without clock faults stay as they were.
    private var clockRNG: Xoshiro256
    private var shared: SharedData?
    let startingPeers: Int
    /// Whether the run prefetches (`prefetch(handling:)`): only from `prefetchFromPeers` on.
    private let prefetching: Bool
    var dropped = 0, droppedSeen = 0
    var lastSampleAt = 0.0
    private let verifier: ClaimVerifier
    private let keyring: NetworkKeyring
    /// The shared clock's Unix time at 0 s. Gossip rounds are aligned to it (round r starts at
    /// r · interval, Unix time): it is chosen so that rounds start a quarter round after each
    /// multiple of the interval (here 0.025 s, 0.125 s, …) and mix half a round later, so samples
    /// taken at multiples of the interval see every peer's model as of its last mix, never
    /// half-way through a round. (A fraction of a second here changes nothing else.)
    private let unixTimeAtZero: Double
    /// Actions not yet seen by every live peer, by index into `events`.
    var pending: [(event: Int, slot: Int?, kind: Schedule.Kind, incarnation: UInt64)] = []
    /// Shards whose peer is gone (crashed or left, not restarting), oldest first: joiners take them.
    /// Who holds which data shard: joiners take the shards of departed peers (`ShardLedger`).
    var shards: ShardLedger
    /// Counters of the instances that stopped (added to the running ones' in the summary).
    var retired = RunOutput.Totals()
    /// Restarts waiting for their peer to come back, by slot: index into `events`, and the
    /// incarnation of the boot that crashed (the new one must be seen above it).
    var restartEvents: [Int: (event: Int, before: UInt64)] = [:]
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
            var bootKeys: [PeerID: [UInt8]] = [:]
            for index in order { peek(index) { peer in peer.wire.bootPublicKey.map { bootKeys[peer.id] = $0 } } }
            var first: Int?
            for index in order {
                instances[index]!.value.preload(claims, sharing: first.map { instances[$0]!.value }, now: localNow(index), bootKeys: bootKeys)
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
        noteHeavyLoss()
        for (i, action) in options.schedule.actions.enumerated() where action.time < calmAt { queue.push(.action(i), at: action.time) }
        if let p = options.schedule.poisson, p.ratePerMinute > 0 { schedulePoisson(after: p.start) }
        queue.push(.sample, at: 0)
        queue.push(.check, at: 0.25)
        if options.livenessSeconds > 0 { queue.push(.calm, at: calmAt) }
    }

    func addSlot(shard: Int) -> Int {
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

    func boot(_ index: Int, seeds: [PeerAddress], fetchModel: Bool) {
        var slot = slots[index]
        slot.bootCount += 1
        slot.seeds = seeds
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

    /// Takes a slot's instance down (a crash, the end of a leave, a restart's down time): its
    /// counters go to `retired`, and its data shard is freed unless it is restarting.
    func stop(_ index: Int, restarting: Bool = false) {
        guard running(index) else { return }
        peek(index) { Self.add($0, to: &retired) }
        instances[index] = nil
        scheduledTick[index] = .infinity
        if !restarting { shards.release(slots[index].shard) }
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
    func localNow(_ index: Int) -> Double { now * slots[index].clockRate }

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

    func perform(_ directives: [PeerDirective], by index: Int) {
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
            massMayBeLost = true
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

    /// Ticks in a row that left a peer's next deadline at or before the tick's time. A tick must
    /// do what is due: one that leaves it due asks to be ticked again at the same instant, and
    /// a shell that obeys spins there forever (the real shell's loop, this simulator's queue).
    private var stalledTicks: [Int: Int] = [:]
    static let spinLimit = 1000

    /// Queues the peer's next tick at its deadline. After a tick, a deadline still due is a
    /// stall (`stalledTicks`), reported once it repeats `spinLimit` times.
    func schedule(_ index: Int, afterTick: Bool = false) {
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
    func slotIndex(of id: PeerID) -> Int? {
        if idToSlot.count != slots.count {
            for i in order { idToSlot[slots[i].key.peerID] = i }
        }
        return idToSlot[id]
    }
}
