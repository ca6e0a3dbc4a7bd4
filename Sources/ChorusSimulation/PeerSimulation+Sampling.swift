// What a simulated run measures: a series.csv row every sample interval (live peers, view
// agreement, traffic, drops, consensus, accuracy), and the results (the summary, steps per
// starting peer, every peer's counters added up).

import ChorusCore
import ChorusMembership
import ChorusRuns

extension PeerSimulation {
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

    func sample() {
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

    static func add(_ peer: PeerInstance, to totals: inout RunOutput.Totals) {
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
