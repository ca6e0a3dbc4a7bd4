// Churn on the simulated network: each schedule action and Poisson event drawn into
// `ChurnDriver` steps and carried out (crash, graceful leave, restart, join, partition, pause, heal,
// loss and delay faults), with the entry points a joiner or restarted peer is given.

import ChorusCore
import ChorusRuns

extension PeerSimulation {
    func apply(_ action: Schedule.Action) {
        for step in ChurnDriver.steps(for: action, targetable: live, startingPeers: startingPeers, using: &scenarioRNG) {
            carryOut(step, label: action.label)
        }
    }

    /// One churn step on the simulated network; `label` is events.csv's action column.
    private func carryOut(_ step: ChurnDriver.Step, label: String) {
        switch step {
        case .crash, .leave, .restart, .partition, .pause: massMayBeLost = true
        case .join, .heal, .fault: break
        }
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
            partitions.begin(side: side, of: order, direction: direction, at: now)
            events.append(.init(time: now, action: label, peer: "network"))
        case let .pause(chosen, seconds):
            for index in chosen { slots[index].pausedUntil = max(slots[index].pausedUntil, now + seconds) }
            events.append(.init(time: now, action: label, peer: chosen.map { slots[$0].name }.joined(separator: " ")))
        case .heal:
            partitions.end(at: now)
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

    /// Entry points for a joiner or a restarted peer (`EntryPoints`: settled peers when there
    /// are any), among the live peers it can reach: across a partition a seed is out of reach,
    /// and a newcomer given one waited for it until it left, alone for good (fuzz seed 1276 of
    /// version 4); an operator would name reachable ones.
    func entryPoints(for index: Int) -> [PeerAddress] {
        var candidates = live.filter { $0 != index && peek($0) { $0.phase } != .leaving }
        if partitions.inForce {
            let reachableOnes = candidates.filter { reachable(index, $0) && reachable($0, index) }
            if !reachableOnes.isEmpty { candidates = reachableOnes }
        }
        let settled = { (q: Int) in self.peek(q) { $0.phase == .training && $0.settled } }
        return EntryPoints.pick(from: candidates, settled: settled, using: &scenarioRNG).map { addresses[$0] }
    }

    func schedulePoisson(after t: Double) {
        guard let at = options.schedule.poisson?.nextEvent(after: t, startingPeers: startingPeers, duration: calmAt,
                                                           using: &scenarioRNG) else { return }
        queue.push(.poisson, at: at)
    }

    func poissonEvent() {
        guard let p = options.schedule.poisson else { return }
        let targetable = live.filter { peek($0) { $0.phase } != .leaving }
        for step in ChurnDriver.steps(for: p, targetable: targetable, using: &scenarioRNG) { carryOut(step, label: "") }
        schedulePoisson(after: now)
    }
}
