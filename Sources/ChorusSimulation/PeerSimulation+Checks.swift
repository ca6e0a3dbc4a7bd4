// What a simulated run checks: safety invariants (models, mixing rows, incarnations, views,
// reassembly budgets, Lifeguard's suspicion timer), the detection bound, whether each action was
// seen by every live peer, and the liveness phase at the end. Every miss goes through `violate`.

@_spi(Simulation) import ChorusCore
import ChorusCrypto
import ChorusMembership
import ChorusRuns
import Foundation

extension PeerSimulation {
    // MARK: Violations

    /// Records a violation: the first one ends the run (`stopOnViolation`), or else each is kept
    /// in `violationsPassed` and the run goes on.
    func violate(_ message: String) {
        guard violation == nil else { return }
        let v = Violation(time: now, seed: options.seed, message: message)
        if options.stopOnViolation { violation = v } else { violationsPassed.append(v) }
    }

    // MARK: Invariants

    func checkModel(of index: Int) {
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
    func checkSafety(of index: Int, after event: Event) {
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
        let (members, own, current) = peek(index) { ($0.membership.members, $0.id, $0.neighbourhoodIsCurrent) }
        if !current { violate("\(name)'s neighbourhood is not computed over its live view (the view changed without an event)") }
        if members.count > slots.count { violate("\(name) lists \(members.count) members, but only \(slots.count) peers ever existed") }
        let seen = slots[index].viewIncarnations
        var incarnations: [PeerID: UInt64] = [:]
        incarnations.reserveCapacity(members.count)
        for (id, member) in members where id != own {
            guard let subject = slotIndex(of: id) else {
                violate("\(name) lists a member \(id) that no simulated peer is")
                continue
            }
            if let before = seen[id], member.incarnation < before {
                violate("\(name)'s view of \(slots[subject].name) went back from incarnation \(before) to \(member.incarnation)")
            }
            incarnations[id] = member.incarnation
        }
        slots[index].viewIncarnations = incarnations
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
    func checkDetectionBound() {
        guard let bound = options.detectionBound else { return }
        for entry in pending where entry.kind == .crash && now - events[entry.event].time > bound {
            let e = events[entry.event]
            let blind = live.filter { $0 != entry.slot && !isSeenByAll(entry, by: [$0]) }
            violate(String(format: "crash of %@ at %.2f s not seen by every live peer within the detection bound of %.1f s (not by %d of %d)",
                           e.peer, e.time, bound, blind.count, live.count))
            return
        }
    }

    // MARK: Seen by all

    func checkPending() {
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
                case .revoked: return .failed  // out for good, as a crash is (simulations have no authority)
                }
            })
        case .partition, .loss, .delay, .pause:
            return true
        }
    }

    // MARK: Liveness

    /// The liveness phase begins: every partition, loss, delay, duplication, reordering and pause
    /// ends, and no more churn comes (schedule actions and Poisson events stop here).
    func beginLiveness() {
        calm = true
        partitions.end(at: now)
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
    /// A peer stranded before it joined is left out: it never accepted a datagram and every
    /// entry point it was given is gone (fuzz-corpus `joiner-entry-points-seed1850-v8`: both of
    /// a joiner's entry points crashed 11.6 s after it started, at 45 % loss, before one of its
    /// hellos was answered). Nothing a protocol does can bring in a peer that knows no live
    /// address; one that heard anyone at all is still checked.
    func checkLiveness() {
        let phase = String(format: "%.0f s after faults healed and churn stopped", options.livenessSeconds)
        let stranded = strandedPeers()
        let live = self.live.filter { !stranded.contains($0) }
        for entry in pending {
            if let slot = entry.slot, stranded.contains(slot) { continue }
            // A join or restart whose peer went again later (a crash, a leave) is moot; a leave
            // whose goodbye was lost is recorded as failed, which is gone all the same.
            if entry.kind == .join || entry.kind == .restart, let slot = entry.slot, !running(slot) { continue }
            if entry.kind == .leave && isSeenByAll((entry.event, entry.slot, .crash, entry.incarnation), by: live) { continue }
            let e = events[entry.event]
            let blind = live.filter { $0 != entry.slot && !isSeenByAll((entry.event, entry.slot, entry.kind, entry.incarnation), by: [$0]) }
            if blind.isEmpty { continue }  // only the stranded missed it
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
        checkAverageKept()
    }

    /// Push-sum's promise: without crashes, leaves, restarts, failures, partitions, pauses or
    /// heavy loss, every share's mass arrives in the end (running totals; a stopped stream's final
    /// totals resent until it closes), so the estimates gather around the true average of the
    /// starting vectors: each within its distance from the others' mean plus that mean's from the
    /// weighted one, twice the consensus distance at most (a ring may still be converging). Found
    /// broken once (peers that started by joining under 10 % loss ended up to 7 % off, at a
    /// consensus of 1e-10; docs/averaging.md) by a run of real peers, not by this simulator.
    func checkAverageKept() {
        guard options.task == .average, options.settings.averaging.mixing == .pushSum, options.byzantine == nil,
              !massMayBeLost, let trueAverage else { return }
        let vectors = live.filter { peek($0) { $0.phase } == .training }.compactMap { peek($0) { $0.estimate } }
        let consensus = consensusMax() ?? 0
        guard let error = Consensus.relativeDistances(vectors, to: trueAverage).max(),
              error > max(Self.consensusFloor, 4 * consensus) else { return }
        violate(String(format: "liveness: push-sum estimates %.3g from the true average at the end (consensus %.3g), with nothing in the run that may lose mass (no crash, leave, restart, failure, partition, pause or loss above %.2f)",
                       error, consensus, Self.pushSumExactLoss))
    }

    /// Loss above `pushSumExactLoss` on some path now (the base loss and the schedule's, at
    /// their worst combined) may lose push-sum mass: the average is not checked in this run.
    func noteHeavyLoss() {
        let kept = (1 - link.loss) * (1 - faults.loss) * (1 - (faults.lossIn.values.max() ?? 0))
            * (1 - (faults.lossOut.values.max() ?? 0)) * (1 - (faults.linkLoss.values.max() ?? 0))
        if 1 - kept > Self.pushSumExactLoss { massMayBeLost = true }
    }

    /// Loss up to which push-sum keeps the average in a run (checkAverageKept): a stopped
    /// stream's final totals (an object of about five datagrams) get some 60 tries; at 50 %
    /// loss, joining, some missed them all (docs/averaging.md).
    static let pushSumExactLoss = 0.25

    /// Live peers that never accepted a datagram and whose every entry point is gone.
    func strandedPeers() -> Set<Int> {
        Set(live.filter { q in
            !slots[q].seeds.isEmpty && peek(q) { $0.wire.acceptedDatagrams == 0 }
                && slots[q].seeds.allSatisfy { seed in addresses.firstIndex(of: seed).map { !running($0) } ?? true }
        })
    }

    /// Consensus this close counts as reached (float64 averaging's rounding noise is far below).
    public static let consensusFloor = 1e-9

    /// The largest relative distance between the estimates of the peers holding one.
    private func consensusMax() -> Double? {
        let vectors = live.filter { peek($0) { $0.phase } == .training }.compactMap { peek($0) { $0.estimate } }
        return vectors.count < 2 ? nil : Consensus.relativeDistances(vectors).max()
    }
}
