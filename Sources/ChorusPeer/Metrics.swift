import ChorusAveraging
import ChorusCrypto
import ChorusMembership
import ChorusWire
import Prometheus

/// Prometheus exposition of a peer's status (swift-prometheus), one `peer` label on every series
/// so that one Prometheus can scrape a whole network. Owned by the loop-bound shell.
/// The series are listed in Peers/README.md; scripts/grafana-dashboard.json draws them.
final class PeerMetrics {
    let registry = PrometheusCollectorRegistry()
    /// Last value reported per counter (name + labels), so counters advance by the difference.
    private var reported: [String: Int] = [:]

    func render(_ s: PeerStatus) -> [UInt8] {
        let peer = ("peer", s.peerId)
        func gauge(_ name: String, _ help: String, _ value: Double, _ labels: [(String, String)] = []) {
            registry.makeGauge(descriptor: descriptor(name, help), labels: [peer] + labels).set(to: value)
        }
        func counter(_ name: String, _ help: String, _ value: Int, _ labels: [(String, String)] = []) {
            let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
            let delta = value - (reported[key] ?? 0)
            // Made even at 0: a counter that exists from the start makes rate() work from the start.
            let series = registry.makeCounter(descriptor: descriptor(name, help), labels: [peer] + labels)
            if delta > 0 { series.increment(by: Int64(delta)) }
            reported[key] = max(value, reported[key] ?? 0)
        }

        // Training and convergence.
        gauge("step", "Step count the network sees (trained here plus inherited)", Double(s.step))
        gauge("steps_trained", "Steps this process trained itself (not adopted or restored)", Double(s.stepsTrained))
        gauge("epoch", "Passes over the local shard", Double(s.epoch))
        gauge("test_accuracy", "Accuracy on the held-out test set at the last evaluation", s.testAccuracy)
        gauge("test_loss", "Loss on the held-out test set at the last evaluation", s.loss)
        gauge("train_loss", "Moving average of the training loss", s.trainLoss)
        gauge("learning_rate", "Current learning rate", s.learningRate)
        gauge("self_weight", "Mixing weight this peer keeps on its own parameters", s.selfWeight)
        // NaN until the first mix with a contribution: Prometheus shows "no value yet".
        gauge("distance_to_neighbours", "Relative distance to the neighbours' weighted average at the last mix", s.distanceToNeighbours ?? .nan)
        gauge("active_neighbours", "Neighbours heard within the silence timeout", Double(s.neighbours.filter { $0.weight > 0 }.count))
        counter("mixes_total", "Averaging rounds", s.mixes)
        counter("contributions_mixed_total", "Neighbour vectors mixed in", s.contributionsMixed)
        for phase in ["joining", "training", "leaving"] {
            gauge("phase", "1 for the phase the peer is in", s.phase == phase ? 1 : 0, [("phase", phase)])
        }

        // Membership.
        for state in ["alive", "suspect", "failed", "left"] {
            gauge("members", "Members this peer sees in each state, itself included", Double(s.members.filter { $0.status == state }.count), [("state", state)])
        }
        gauge("isolated", "1 while no other member answers although entry points are configured", s.isolated ? 1 : 0)
        gauge("local_health", "Lifeguard local health multiplier (0 is healthy)", Double(s.localHealth))
        gauge("incarnation", "This peer's incarnation (boot epoch x 2^16 + refutations)", Double(s.incarnation))
        let m = s.membershipCounts
        counter("probes_total", "Failure-detector probes sent", m.probes)
        counter("probes_failed_total", "Probes that got no ack in time", m.probesFailed)
        counter("indirect_probes_total", "Indirect probes asked of other members", m.indirectProbes)
        counter("suspicions_raised_total", "Suspicions this peer raised", m.suspicionsRaised)
        counter("failures_declared_total", "Members this peer declared failed", m.failuresDeclared)
        counter("refutations_total", "Accusations against this peer that it refuted", m.refutations)

        // Traffic.
        counter("bytes_total", "UDP payload bytes", s.bytesSent, [("direction", "sent")])
        counter("bytes_total", "UDP payload bytes", s.bytesReceived, [("direction", "received")])
        counter("datagrams_total", "Datagrams", s.datagramsSent, [("direction", "sent")])
        counter("datagrams_total", "Datagrams", s.datagramsReceived, [("direction", "received")])
        for channel in ["parameters", "membership", "membership_sync", "model_request", "model"] {
            counter("payload_bytes_total", "Payload bytes of messages and objects, by channel (datagram overhead not included)",
                    s.payloadBytesSent[channel] ?? 0, [("direction", "sent"), ("channel", channel)])
            counter("payload_bytes_total", "Payload bytes of messages and objects, by channel (datagram overhead not included)",
                    s.payloadBytesReceived[channel] ?? 0, [("direction", "received"), ("channel", channel)])
        }
        counter("datagrams_rejected_total", "Datagrams dropped by the datagram layer", s.datagramsRejected)
        for reason in Set(Self.knownReasons).union(s.rejections.keys).sorted() {
            counter("rejections_total", "Inputs dropped, by reason (datagram layer, claims, parameters, injected faults)",
                    s.rejections[reason] ?? 0, [("reason", reason)])
        }
        gauge("faults_active", "1 while faults are injected (drop, delay, duplicate or blocked peers)", s.faults.isActive ? 1 : 0)
        gauge("uptime_seconds", "Seconds since the peer started", s.uptime)

        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }

    /// Reasons reported from the start (at 0), so that rates and alerts work before the first drop.
    static let knownReasons = WireRejection.allCases.map(\.rawValue)
        + ClaimRejection.allCases.map { "claims." + $0.rawValue }
        + GossipAverager<PeerID>.Rejection.allCases.map { "parameters." + $0.rawValue }

    private func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "chorus", metricName: name, unitName: "", helpText: help)
    }
}
