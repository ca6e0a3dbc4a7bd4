import ChorusAveraging
import ChorusCore
import ChorusCrypto
import ChorusLearning
import ChorusPeer
import ChorusRuns
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A schedule run on real peer processes on loopback (`chorus experiment`): the counterpart of
/// the simulator, writing the same series.csv, events.csv and summary.json (docs/experiments.md).
///
/// Crash is kill -9, leave is SIGTERM (a graceful leave), join starts a new process with `--join`,
/// restart is kill -9 then the same configuration again after `down` seconds (it resumes from its
/// checkpoint). Partitions, heals and loss are set on the running peers through their admin
/// endpoints (`POST /faults`): a partition is real and heals without any restart.
///
/// The runner polls every live peer's `/status` a few times a second (to see when each action
/// was seen by all) and, every sample interval, its `/parameters` (for consensus).
public final class Experiment {
    public struct Options: Sendable {
        public var peers = 16
        public var duration = 120.0
        public var schedule = Schedule.steady
        public var seed: UInt64 = 1
        public var model: ModelSpec = .softmax
        public var partition: PartitionScheme = .iid
        public var topology: Topology = .exponential
        public var averaging = AveragingSettings()
        /// Average only (`--task average`): no training; every peer starts from its own random
        /// values, and series.csv's average_error says how far the estimates are from their mean.
        public var averageOnly = false
        public var sampleInterval = 1.0
        /// The learning rate decays to zero by a cosine over this fraction of the run (0: constant,
        /// as in the simulator by default; the demo uses 0.85 so that its end is pure averaging).
        public var cosineFraction = 0.0
        /// How often statuses are polled to see actions spread (seconds).
        public var pollInterval = 0.25
        public var executable: String
        /// Where the peers' configs, keys, logs and checkpoints go (a temporary directory when nil).
        public var workDirectory: String?
        /// Hosts to spread the peers over (`--hosts FILE`, or namespaces with `--netns`); empty: loopback.
        public var hosts: [LocalNetwork.Host] = []

        public init(executable: String) { self.executable = executable }
    }

    /// An action applied to one peer (or to the network), waiting to be seen by every live peer.
    struct Pending {
        var event: Int
        var kind: Schedule.Kind
        var member: Int?
        /// restart: the incarnation before the crash (the new one must be higher).
        var incarnation: UInt64 = 0
    }

    public let options: Options
    public let network: LocalNetwork
    private let progress: (String, Bool) -> Void
    private var rng: Xoshiro256
    private var start = Date()
    private var samples: [RunOutput.Sample] = []
    /// Each training peer at each sample: peers.csv (`peerSeriesCSV`). The series shows that one
    /// peer is apart (consensus_max against consensus_mean); this shows which, and whether it
    /// mixed (a real 32-peer churn run had one drift apart for good, and nothing kept told which).
    public private(set) var peerRows: [PeerRow] = []
    private var events: [RunOutput.Event] = []
    private var pending: [Pending] = []
    private var restarts: [(at: Double, member: Int)] = []
    /// Stopped processes (SIGSTOP) and when each is continued; when the last pause of each ended.
    private var paused: [Int: Double] = [:]
    private var pauseEnded: [Int: Double] = [:]
    private var nextPoisson = Double.infinity
    /// Members told to leave or killed: a killed process may not be reaped yet, and a leaving one
    /// lingers, but neither may be a target or an entry point any more.
    private var departing: Set<Int> = []
    private var latest: [Int: PeerStatus] = [:]
    /// Faults each member should have (partition side, loss, per-peer and per-link loss and
    /// delay) and what it was last given.
    private var loss = 0.0
    private var lossIn: [Int: Double] = [:], lossOut: [Int: Double] = [:], delayOut: [Int: Double] = [:]
    private var links: [Int: [Int: LinkFault]] = [:]
    private var partitionSide: Set<Int>?
    private var partitionDirection = Schedule.Direction.both
    /// The sides of the last partition and when it healed: verdicts across it are not false failures.
    private var lastPartition: (side: Set<Int>, healedAt: Double)?
    private var applied: [Int: FaultSettings] = [:]
    private var counters: [Int: (bytes: Int, rejected: Int, faulted: Int)] = [:]
    private var lastSampleAt = 0.0
    private var falseFailures: Set<String> = []
    private var startingAverage: [Double]?
    private var violation: String?

    /// - Parameter progress: a line for standard error, and whether it is transient (overwritten).
    public init(options: Options, progress: @escaping (String, Bool) -> Void) throws {
        self.options = options
        self.progress = progress
        self.rng = Xoshiro256(seed: options.seed)
        var local = LocalNetwork.Options(executable: options.executable)
        local.peers = options.peers
        local.model = options.model
        local.partition = options.partition
        local.seed = options.seed
        local.topology = options.topology
        local.averaging = options.averaging
        local.averageOnly = options.averageOnly
        local.hosts = options.hosts
        local.directory = options.workDirectory ?? NSTemporaryDirectory() + "chorus-experiment-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        let stepsPerSecond = Double(local.stepsPerRound) * 1000 / Double(local.gossipIntervalMs)
        local.cosineSteps = Int(options.duration * options.cosineFraction * stepsPerSecond)
        // Restarts resume from a recent checkpoint.
        local.checkpointIntervalSeconds = 2
        network = try LocalNetwork(options: local)
    }

    var elapsed: Double { Date().timeIntervalSince(start) }

    /// How the peers learn (their configurations say the same), for a baseline to match.
    public var learningSettings: LearningSettings {
        var l = LearningSettings(model: options.model, cosineSteps: network.options.cosineSteps, seed: options.seed, initialSeed: options.seed)
        if let lr = network.options.learningRate { l.learningRate = lr }
        return l
    }

    /// Optimiser steps per gossip round of every peer.
    public var stepsPerRound: Int { network.options.stepsPerRound }

    /// The most steps a starting peer trained itself, by its last status.
    public var stepsPerStartingPeer: Int {
        latest.filter { $0.key < options.peers }.map(\.value.stepsTrained).max() ?? 0
    }

    /// Starts the peers, applies the schedule for `duration` seconds (or until `interrupted`
    /// returns true), stops every peer and returns what was measured. Never leaves a child running.
    public func run(interrupted: () -> Bool) throws -> (samples: [RunOutput.Sample], summary: RunOutput.Summary) {
        let wallStart = Date()
        defer {
            resumeAll()  // a stopped process cannot act on SIGTERM
            network.stopAll(timeout: 3)
        }
        let hosts = try network.prepareHosts()
        for report in hosts {
            let late = abs(report.clockOffset) > Double(network.options.gossipIntervalMs) / 4000
            progress(String(format: "host %@ (%@): clock %+.1f ms from this one (round trip %.1f ms)%@", report.name, report.address,
                            report.clockOffset * 1000, report.roundTrip * 1000,
                            late ? "; more than a quarter of the gossip interval: its peers mix late (run NTP)" : ""), false)
        }
        for index in network.members.indices { try network.start(index) }
        try network.waitUntilReady(Array(network.members.indices), timeout: 60, cancelled: interrupted)
        start = Date()
        var actions = options.schedule.actions[...]
        if let p = options.schedule.poisson, p.ratePerMinute > 0 { schedulePoisson(after: p.start) }
        progress("experiment: \(options.peers) peers running; \(options.schedule.actions.count) actions\(options.schedule.poisson == nil ? "" : " and Poisson churn") over \(Int(options.duration)) s; files in \(network.directory)", false)
        poll()
        sample()
        var interruptedAt: Double?
        while elapsed < options.duration {
            if interrupted() { interruptedAt = elapsed; break }
            Thread.sleep(forTimeInterval: options.pollInterval)
            let now = elapsed
            while let action = actions.first, action.time <= now {
                actions.removeFirst()
                apply(action)
            }
            if now >= nextPoisson { poissonEvent() }
            while let due = restarts.first, due.at <= now {
                restarts.removeFirst()
                restart(due.member)
            }
            for (index, until) in paused.sorted(by: { $0.key < $1.key }) where until <= now { resume(index) }
            reportUnexpectedExits()
            poll()
            if now - lastSampleAt >= options.sampleInterval - options.pollInterval / 2 { sample() }
        }
        poll()
        sample()  // a last row at the end, or at the interruption
        let last = samples.last
        var summary = RunOutput.Summary(
            peers: options.peers, seed: options.seed, duration: options.duration, wallSeconds: Date().timeIntervalSince(wallStart),
            task: options.averageOnly ? "average" : "train", crypto: "real",
            final: .init(livePeers: last?.livePeers ?? 0, accuracyMin: last?.accuracyMin, accuracyMean: last?.accuracyMean,
                         consensusMax: last?.consensusMax, averageError: last?.averageError),
            events: events, falseFailures: falseFailures.count, violation: violation, interruptedAt: interruptedAt, real: true)
        if !hosts.isEmpty {
            summary.hosts = hosts.map { .init(name: $0.name, address: $0.address, clockOffset: $0.clockOffset, roundTrip: $0.roundTrip) }
        }
        return (samples, summary)
    }

    // MARK: Who is live

    /// Running processes: the true live set (a leaving peer counts until it exits, as in the simulator).
    private var live: [Int] { network.members.indices.filter { network.isRunning($0) } }

    /// Live peers that schedule actions may pick.
    private var targetable: [Int] { live.filter { !departing.contains($0) } }

    // MARK: Actions

    private func apply(_ action: Schedule.Action) {
        for step in ChurnDriver.steps(for: action, targetable: targetable, startingPeers: options.peers, using: &rng) {
            carryOut(step, label: action.label)
        }
    }

    /// One churn step on the processes; `label` is events.csv's action column.
    private func carryOut(_ step: ChurnDriver.Step, label: String) {
        switch step {
        case let .crash(index):
            crash(index)
        case let .leave(index):
            leave(index)
        case let .restart(index, down):
            beginRestart(index, down: down)
        case .join:
            join()
        case let .partition(side, direction):
            partitionSide = side
            partitionDirection = direction
            lastPartition = (side, .infinity)
            note(label, peer: "network")
            let cut = ["both": "cut off from", "out": "unheard by", "in": "deaf to"][direction.rawValue]!
            say("partition: \(side.sorted().map { network.members[$0].name }.joined(separator: " ")) \(cut) the other \(live.count - side.count) peers")
            reconcileFaults()
        case let .pause(chosen, seconds):
            for index in chosen {
                guard network.isRunning(index) else { continue }
                if paused[index] == nil { network.signal(index, SIGSTOP) }
                paused[index] = max(paused[index] ?? 0, elapsed + seconds)
                say("\(network.members[index].name) stopped (SIGSTOP) for \(seconds) s")
            }
            note(label, peer: chosen.map { network.members[$0].name }.joined(separator: " "))
        case .heal:
            partitionSide = nil
            if let last = lastPartition, last.healedAt == .infinity { lastPartition = (last.side, elapsed) }
            pending.append(Pending(event: note("heal", peer: "network"), kind: .heal))
            say("heal: every partition removed")
            reconcileFaults()
        case let .fault(action, scope):
            applyLossOrDelay(action, on: scope)
            say("\(label) on \(events.last?.peer ?? "the network")")
            reconcileFaults()
        }
    }

    /// Loss everywhere, on some peers' traffic, or on a link; delay on some peers' outgoing
    /// traffic or on a link. Real peers fault what they send (and, for `in`, what they receive):
    /// a delay on what a peer receives is put on what every other peer sends it.
    private func applyLossOrDelay(_ action: Schedule.Action, on scope: ChurnDriver.Scope) {
        let value = action.kind == .loss ? action.probability : action.delayMs
        switch scope {
        case let .link(a, b):
            for (from, to) in action.direction == .both ? [(a, b), (b, a)] : [(a, b)] {
                var fault = links[from]?[to] ?? LinkFault()
                if action.kind == .loss { fault.drop = value } else { fault.delayMs = value }
                links[from, default: [:]][to] = fault
            }
            note(action.label, peer: action.linkName ?? "network")
        case let .peers(chosen):
            for index in chosen {
                if action.kind == .loss {
                    if action.direction != .out { lossIn[index] = value }
                    if action.direction != .in { lossOut[index] = value }
                } else {
                    if action.direction != .in { delayOut[index] = value }
                    if action.direction != .out {
                        for other in network.members.indices where other != index {
                            var fault = links[other]?[index] ?? LinkFault()
                            fault.delayMs = value
                            links[other, default: [:]][index] = fault
                        }
                    }
                }
            }
            note(action.label, peer: chosen.map { network.members[$0].name }.joined(separator: " "))
        case .network:
            loss = action.probability
            note(action.label, peer: "network")
        }
    }

    /// Continues a paused process (SIGCONT).
    private func resume(_ index: Int) {
        guard paused.removeValue(forKey: index) != nil else { return }
        pauseEnded[index] = elapsed
        network.signal(index, SIGCONT)
        say("\(network.members[index].name) continued (SIGCONT)")
    }

    private func resumeAll() {
        for index in paused.keys.sorted() { resume(index) }
    }

    private func crash(_ index: Int) { depart(index, signal: SIGKILL, kind: .crash, saying: "killed (kill -9)") }

    private func leave(_ index: Int) { depart(index, signal: SIGTERM, kind: .leave, saying: "asked to leave (SIGTERM)") }

    /// A peer that goes for good: no longer a target or entry point, its shard free for a joiner,
    /// and watched until every live peer has seen it go.
    private func depart(_ index: Int, signal: Int32, kind: Schedule.Kind, saying what: String) {
        guard network.isRunning(index) else { return }
        network.signal(index, signal)
        departing.insert(index)
        network.departed(index)
        pending.append(Pending(event: note(kind.rawValue, member: index), kind: kind, member: index))
        say("\(network.members[index].name) \(what)")
    }

    /// A peer process that ended although no action stopped it (a crash of its own, an exit on an
    /// error) is reported at once, with how it ended and the end of its log, and recorded in
    /// events.csv as `exit`: the log goes with the run's temporary directory, and a run that only
    /// counted one live peer fewer left its cause unknown (a 32-peer churn run, 2026-12-05).
    private func reportUnexpectedExits() {
        // Reported once: it joins the departing members, which this loop skips.
        for index in network.members.indices where !departing.contains(index) {
            guard let (status, bySignal) = network.termination(index) else { continue }
            departing.insert(index)
            network.departed(index)
            note("exit", member: index)
            let how = bySignal ? "killed by signal \(status)" : "exit status \(status)"
            say("\(network.members[index].name) ended by itself (\(how)); the end of its log:\n" + network.tail(index, lines: 10))
        }
    }

    /// kill -9 now; the same configuration starts again after `down` seconds.
    private func beginRestart(_ index: Int, down: Double) {
        guard network.isRunning(index) else { return }
        let incarnation = latest[index]?.incarnation ?? 0
        network.signal(index, SIGKILL)
        departing.insert(index)
        pending.append(Pending(event: note("restart", member: index), kind: .restart, member: index, incarnation: incarnation))
        restarts.append((elapsed + down, index))
        restarts.sort { $0.at < $1.at }
        say("\(network.members[index].name) killed for a restart in \(down) s")
    }

    private func restart(_ index: Int) {
        // Entry points that are alive now (its first ones may have gone); it resumes from its checkpoint.
        network.rewire(index, entryPoints: entryPoints(excluding: index))
        applied[index] = nil
        counters[index] = nil
        do { try network.start(index) } catch { return say("could not restart \(network.members[index].name): \(error)") }
        departing.remove(index)
        say("\(network.members[index].name) started again from its checkpoint")
    }

    /// A new peer joins through two live members (`EntryPoints`: settled ones when there are
    /// any), with a shard of its own (`ShardLedger`).
    private func join() {
        let through = entryPoints(excluding: nil)
        guard !through.isEmpty else { return say("join skipped: no live peer to join through") }
        let index: Int
        do {
            index = try network.addMember()
            try network.start(index, extraArguments: through.flatMap { ["--join", network.members[$0].udp.description] })
        } catch {
            return say("could not start a joining peer: \(error)")
        }
        pending.append(Pending(event: note("join", member: index), kind: .join, member: index))
        say("\(network.members[index].name) started with --join \(through.map { network.members[$0].name }.joined(separator: " ")) (shard \(network.members[index].shard))")
    }

    /// Peers that are part of the network (training, not alone) when there are any: a joiner
    /// started through a peer killed a moment ago, or through an earlier joiner that is itself
    /// still alone, would make an island.
    private func entryPoints(excluding index: Int?) -> [Int] {
        EntryPoints.pick(from: targetable.filter { $0 != index }, settled: { self.latest[$0]?.phase == "training" && self.latest[$0]?.isolated == false },
                         using: &rng)
    }

    private func schedulePoisson(after t: Double) {
        nextPoisson = options.schedule.poisson?.nextEvent(after: t, startingPeers: options.peers, duration: options.duration, using: &rng) ?? .infinity
    }

    private func poissonEvent() {
        guard let p = options.schedule.poisson else { return }
        for step in ChurnDriver.steps(for: p, targetable: targetable, using: &rng) { carryOut(step, label: "") }
        schedulePoisson(after: nextPoisson)
    }

    @discardableResult
    private func note(_ action: String, member: Int) -> Int { note(action, peer: network.members[member].name) }

    @discardableResult
    private func note(_ action: String, peer: String) -> Int {
        events.append(RunOutput.Event(time: (elapsed * 1000).rounded() / 1000, action: action, peer: peer))
        return events.count - 1
    }

    private func say(_ line: String) {
        progress(String(format: "%7.1f s   ", elapsed) + line, false)
    }

    // MARK: Faults

    /// The faults member `index` should have now: the loss, and the other side of a partition.
    private func desiredFaults(_ index: Int) -> FaultSettings {
        var faults = FaultSettings()
        faults.drop = 1 - (1 - loss) * (1 - (lossOut[index] ?? 0))
        faults.dropIn = lossIn[index] ?? 0
        if let ms = delayOut[index], ms > 0 { faults.delay = ms / 1000...ms / 1000 }
        for (to, fault) in links[index] ?? [:] where fault != LinkFault() && to < network.members.count {
            faults.links[network.members[to].id] = fault
        }
        if let side = partitionSide {
            let mine = side.contains(index)
            let others = network.members.indices.filter { side.contains($0) != mine }
            switch partitionDirection {
            case .both:
                faults.blocked = Set(others.map { network.members[$0].id })
            case .out, .in:
                // One way: the targets' datagrams to the others are lost (out), or the others' to
                // the targets (in). Each sender drops what it must not deliver.
                let sends = partitionDirection == .out ? mine : !mine
                if sends {
                    for other in others { faults.links[network.members[other].id, default: LinkFault()].drop = 1 }
                }
            }
        }
        return faults
    }

    /// Gives every live peer the faults it should have; a peer that does not answer yet (just
    /// started) is tried again at the next poll.
    private func reconcileFaults() {
        for index in live {
            let desired = desiredFaults(index)
            if applied[index] == desired || (applied[index] == nil && !desired.isActive) { continue }
            let member = network.members[index]
            if (try? AdminClient.setFaults(desired, token: member.adminToken, at: member.admin, timeout: 1)) != nil {
                applied[index] = desired
            }
        }
    }

    // MARK: Observing

    /// Reads every live peer's status, then settles pending actions that every live peer has seen.
    private func poll() {
        latest = [:]
        for index in live {
            if let status = try? AdminClient.status(at: network.members[index].admin, timeout: 0.5) { latest[index] = status }
        }
        reconcileFaults()
        countFalseFailures()
        let now = (elapsed * 1000).rounded() / 1000
        pending.removeAll { entry in
            guard seenByAll(entry) else { return false }
            events[entry.event].seenByAllAfter = max(0, now - events[entry.event].time)
            let event = events[entry.event]
            say(String(format: "%@ of %@ seen by all %d live peers after %.1f s", event.action, event.peer, live.count, now - event.time))
            return true
        }
    }

    private func seenByAll(_ entry: Pending) -> Bool {
        let observers = live.filter { $0 != entry.member }
        guard observers.allSatisfy({ latest[$0] != nil }) else { return false }
        switch entry.kind {
        case .heal:
            return viewAgreement() == 1
        case .partition, .loss, .delay, .pause:
            return true
        case .crash, .leave, .join, .restart:
            guard let member = entry.member else { return false }
            let id = network.members[member].id.description
            let running = network.isRunning(member)
            return SeenByAll.seen(entry.kind, subjectRunning: running, subjectTraining: latest[member]?.phase == "training",
                                  before: entry.incarnation, views: observers.lazy.map { q in
                guard let row = self.latest[q]!.members.first(where: { $0.id == id }) else { return .absent }
                switch row.status {
                case "alive": return .alive(incarnation: row.incarnation)
                case "suspect": return .suspect(incarnation: row.incarnation)
                case "failed": return .failed
                default: return .left
                }
            })
        }
    }

    /// Fraction of live peers whose live view (alive or suspect, itself included) is exactly the
    /// set of running peers; a peer that did not answer counts as disagreeing.
    private func viewAgreement() -> Double {
        let live = self.live
        guard !live.isEmpty else { return 1 }
        let truth = Set(live.map { network.members[$0].id.description })
        let agreeing = live.filter { q in
            guard let status = latest[q] else { return false }
            return Set(status.members.filter { $0.status == "alive" || $0.status == "suspect" }.map(\.id)) == truth
        }
        return Double(agreeing.count) / Double(live.count)
    }

    /// A running peer seen "failed" by another at the incarnation it still has: counted once per
    /// observer, subject and incarnation (as the simulator counts). Verdicts across a partition
    /// (while it lasts, and for `partitionGrace` seconds after the heal, until they are refuted)
    /// are the partition's doing, not false failures.
    private func countFalseFailures() {
        let running = Dictionary(uniqueKeysWithValues: live.map { (network.members[$0].id.description, $0) })
        for (observer, status) in latest {
            for row in status.members where row.status == "failed" {
                guard let subject = running[row.id], let own = latest[subject], own.incarnation == row.incarnation else { continue }
                if let last = lastPartition, elapsed - last.healedAt < Self.partitionGrace,
                   last.side.contains(observer) != last.side.contains(subject) { continue }
                if [observer, subject].contains(where: { paused[$0] != nil || elapsed - (pauseEnded[$0] ?? -.infinity) < Self.partitionGrace }) {
                    continue  // a stopped process does not answer, and wakes to find its probes timed out
                }
                falseFailures.insert("\(observer)/\(row.id)/\(row.incarnation)")
            }
        }
    }

    /// Seconds after a heal during which verdicts across the old partition are excused.
    static let partitionGrace = 15.0

    // MARK: Sampling

    /// `averageOnly`: the mean of the starting peers' random values (each peer draws them from
    /// its learning seed, as its configuration says: `LocalNetwork.config`).
    private func trueAverage(dimension: Int) -> [Double]? {
        guard options.averageOnly else { return nil }
        if let cached = startingAverage, cached.count == dimension { return cached }
        let starts = (0..<options.peers).map { index in
            Learner.randomValues(count: dimension, seed: network.learningSeed(of: index)).map(Double.init)
        }
        startingAverage = Consensus.mean(starts)
        return startingAverage
    }

    private func sample() {
        let now = elapsed
        let live = self.live
        var bytes = 0, rejected = 0, faulted = 0
        for index in live {
            guard let s = latest[index] else { continue }
            let current = (bytes: s.bytesSent, rejected: s.datagramsRejected, faulted: s.rejections["faults.injected"] ?? 0)
            let before = counters[index] ?? (0, 0, 0)
            // A restarted process counts from zero again.
            bytes += current.bytes >= before.bytes ? current.bytes - before.bytes : current.bytes
            rejected += current.rejected >= before.rejected ? current.rejected - before.rejected : current.rejected
            faulted += current.faulted >= before.faulted ? current.faulted - before.faulted : current.faulted
            counters[index] = current
        }
        let interval = max(now - lastSampleAt, 1e-9)
        var row = RunOutput.Sample(
            time: (now * 1000).rounded() / 1000, livePeers: live.count, viewAgreement: viewAgreement(),
            bytesPerPeerPerSecond: samples.isEmpty || live.isEmpty ? 0 : Double(bytes) / Double(live.count) / interval,
            datagramsDropped: faulted, datagramsRejected: rejected)
        lastSampleAt = now
        let holders = live.filter { latest[$0]?.phase == "training" }
        var vectors: [[Float]] = []
        var fetched: [Int] = []
        for index in holders {
            let member = network.members[index]
            guard let v = try? AdminClient.parameters(token: member.adminToken, at: member.admin, timeout: 1) else { continue }
            if violation == nil && !v.allSatisfy(\.isFinite) {
                violation = String(format: "%@ holds a NaN or infinite parameter at %.1f s", network.members[index].name, now)
            }
            vectors.append(v)
            fetched.append(index)
        }
        if !vectors.isEmpty {
            let distances = Consensus.relativeDistances(vectors)
            for (index, distance) in zip(fetched, distances) {
                let status = latest[index]
                let rejections = status?.rejections ?? [:]
                let accuracy = options.averageOnly ? nil : status.flatMap { $0.loss.isNaN ? nil : $0.testAccuracy }
                peerRows.append(PeerRow(time: row.time, peer: network.members[index].name, consensusDistance: distance, accuracy: accuracy,
                                        contributionsMixed: status?.contributionsMixed ?? 0, clipped: rejections["parameters.clipped"] ?? 0,
                                        notANeighbour: rejections["parameters.notANeighbour"] ?? 0, late: rejections["parameters.late"] ?? 0))
            }
            row.consensusMean = distances.reduce(0, +) / Double(distances.count)
            row.consensusMax = distances.max()
            if let trueAverage = trueAverage(dimension: vectors[0].count) {
                row.averageError = Consensus.relativeDistances(vectors.map { $0.map(Double.init) }, to: trueAverage).max()
            }
        }
        // Averaging alone trains nothing: its accuracy columns stay empty, as in the simulator.
        let evaluated = options.averageOnly ? [] : holders.compactMap { latest[$0] }.filter { !$0.loss.isNaN }
        if !evaluated.isEmpty {
            let accuracies = evaluated.map(\.testAccuracy)
            row.accuracyMean = accuracies.reduce(0, +) / Double(accuracies.count)
            row.accuracyMin = accuracies.min()
            row.accuracyMax = accuracies.max()
            row.lossMean = evaluated.map(\.loss).reduce(0, +) / Double(evaluated.count)
        }
        samples.append(row)
        if options.averageOnly {
            progress(String(format: "%7.1f s   %d live   consensus max %@   error to the true average %@   views agree %3.0f %%",
                            now, live.count, row.consensusMax.map { String(format: "%.2e", $0) } ?? "   -    ",
                            row.averageError.map { String(format: "%.2e", $0) } ?? "   -    ", row.viewAgreement * 100), true)
            return
        }
        func percent(_ x: Double?) -> String { x.map { String(format: "%5.1f %%", $0 * 100) } ?? "    - " }
        progress(String(format: "%7.1f s   %d live   accuracy mean %@ min %@   consensus max %@   views agree %3.0f %%",
                        now, live.count, percent(row.accuracyMean), percent(row.accuracyMin),
                        row.consensusMax.map { String(format: "%.2e", $0) } ?? "   -    ", row.viewAgreement * 100), true)
    }
}

extension Experiment {
    /// One line of peers.csv.
    public struct PeerRow: Sendable {
        public var time: Double
        public var peer: String
        /// Relative distance of its parameters from the training peers' average (series.csv's
        /// consensus columns are the mean and the largest of these).
        public var consensusDistance: Double
        public var accuracy: Double?
        /// Its counters since it started: contributions mixed in, and those clipped, refused as
        /// not from a neighbour of the round, or refused as late.
        public var contributionsMixed: Int
        public var clipped: Int
        public var notANeighbour: Int
        public var late: Int
    }

    /// peers.csv: `time,peer,consensus_distance,accuracy,contributions_mixed,clipped,not_a_neighbour,late`.
    public static func peerSeriesCSV(_ rows: [PeerRow]) -> String {
        var text = "time,peer,consensus_distance,accuracy,contributions_mixed,clipped,not_a_neighbour,late\n"
        for r in rows {
            text += String(format: "%.3f,%@,%.6g,%@,%d,%d,%d,%d\n", r.time, r.peer, r.consensusDistance,
                           r.accuracy.map { String(format: "%.6g", $0) } ?? "", r.contributionsMixed, r.clipped, r.notANeighbour, r.late)
        }
        return text
    }
}
