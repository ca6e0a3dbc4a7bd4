import Prometheus

/// Prometheus exposition of a peer's status (swift-prometheus). Owned by the loop-bound shell.
final class PeerMetrics {
    let registry = PrometheusCollectorRegistry()
    private var reported: [String: Int] = [:]

    func render(_ s: PeerStatus) -> [UInt8] {
        gauge("step", "Local SGD steps taken").set(Double(s.step))
        gauge("steps_trained", "Steps this process trained itself (not adopted or restored)").set(Double(s.stepsTrained))
        gauge("epoch", "Passes over the local shard").set(Double(s.epoch))
        // NaN until the first mix with a contribution: Prometheus shows "no value yet".
        let distance: Double = s.distanceToNeighbours ?? .nan
        gauge("distance_to_neighbours", "Relative distance to the neighbours' weighted average at the last mix").set(distance)
        gauge("faults_active", "1 while faults are injected (drop, delay, duplicate or blocked peers)").set(s.faults.isActive ? 1.0 : 0.0)
        gauge("test_accuracy", "Accuracy on the held-out test set at the last evaluation").set(s.testAccuracy)
        gauge("test_loss", "Loss on the held-out test set at the last evaluation").set(s.loss)
        gauge("learning_rate", "Current learning rate").set(s.learningRate)
        gauge("active_neighbours", "Neighbours heard within the silence timeout").set(Double(s.neighbours.filter { $0.weight > 0 }.count))
        gauge("members_alive", "Members this peer sees alive, itself included").set(Double(s.members.filter { $0.status == "alive" }.count))
        gauge("members_suspect", "Members this peer suspects").set(Double(s.members.filter { $0.status == "suspect" }.count))
        gauge("local_health", "Lifeguard local health multiplier (0 is healthy)").set(Double(s.localHealth))
        advance("bytes_sent_total", "UDP payload bytes sent", to: s.bytesSent)
        advance("bytes_received_total", "UDP payload bytes received", to: s.bytesReceived)
        advance("datagrams_sent_total", "Datagrams sent", to: s.datagramsSent)
        advance("datagrams_received_total", "Datagrams received", to: s.datagramsReceived)
        advance("datagrams_rejected_total", "Datagrams dropped by the datagram layer", to: s.datagramsRejected)
        advance("mixes_total", "Averaging rounds", to: s.mixes)
        var out: [UInt8] = []
        registry.emit(into: &out)
        return out
    }

    private func gauge(_ name: String, _ help: String) -> Gauge {
        registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "chorus", metricName: name, unitName: "", helpText: help))
    }

    private func advance(_ name: String, _ help: String, to value: Int) {
        let delta = value - (reported[name] ?? 0)
        if delta > 0 {
            registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "chorus", metricName: name, unitName: "", helpText: help))
                .increment(by: Int64(delta))
        }
        reported[name] = value
    }
}
