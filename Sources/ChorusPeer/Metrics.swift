import ChorusAveraging
import ChorusCrypto
import ChorusMembership
import ChorusWire
import Foundation
import Prometheus

/// Prometheus exposition of a peer's status (swift-prometheus), one `peer` label on every series
/// so that one Prometheus can scrape a whole network. The label is the id's first 8 hex
/// characters, as every table shows it, so Grafana legends stay readable; `chorus_peer_info`
/// maps it to the full id. Owned by the loop-bound shell.
/// The series are listed in Peers/README.md; scripts/grafana-dashboard.json draws them.
final class PeerMetrics {
    let registry = PrometheusCollectorRegistry()
    /// Last value reported per counter (name + labels), so counters advance by the difference.
    private var reported: [String: Int] = [:]
    private let peer: (String, String)
    private let detection: ValueHistogram
    private let mixSize: ValueHistogram
    private let roundTraining: ValueHistogram

    init(peer: PeerID) {
        self.peer = ("peer", peer.short)
        let labels = [self.peer]
        detection = registry.makeValueHistogram(
            descriptor: Self.descriptor("detection_seconds", "Seconds from the first suspicion of a member this peer heard of to its declaration as failed"),
            labels: labels, buckets: [0.5, 1, 2, 3, 4, 5, 6, 8, 10, 15, 20, 30, 60])
        mixSize = registry.makeValueHistogram(
            descriptor: Self.descriptor("mix_contributions", "Neighbour vectors in each averaging round's mix"),
            labels: labels, buckets: [0, 1, 2, 3, 4, 6, 8, 12, 16, 32])
        roundTraining = registry.makeValueHistogram(
            descriptor: Self.descriptor("round_training_seconds", "Wall time of each round's training steps on the worker thread (a round is the gossip interval)"),
            labels: labels, buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5])
    }

    func observeDetection(seconds: Double) { detection.record(seconds) }
    func observeMix(contributions: Int) { mixSize.record(Double(contributions)) }
    func observeRoundTraining(seconds: Double) { roundTraining.record(seconds) }

    func render(_ s: PeerStatus) -> [UInt8] {
        let peer = self.peer
        func gauge(_ name: String, _ help: String, _ value: Double, _ labels: [(String, String)] = []) {
            registry.makeGauge(descriptor: Self.descriptor(name, help), labels: [peer] + labels).set(to: value)
        }
        func counter(_ name: String, _ help: String, _ value: Int, _ labels: [(String, String)] = []) {
            let key = name + labels.map { "|\($0.0)=\($0.1)" }.joined()
            let delta = value - (reported[key] ?? 0)
            // Made even at 0: a counter that exists from the start makes rate() work from the start.
            let series = registry.makeCounter(descriptor: Self.descriptor(name, help), labels: [peer] + labels)
            if delta > 0 { series.increment(by: Int64(delta)) }
            reported[key] = max(value, reported[key] ?? 0)
        }

        // What runs here.
        gauge("build_info", "Always 1: the release and wire formats of this peer's binary", 1,
              [("version", ChorusVersion.release), ("wire_protocol", "\(ChorusVersion.wireProtocol)"),
               ("parameters_message", "\(ChorusVersion.parametersMessage)")])
        gauge("peer_info", "Always 1: the full id and address behind the short peer label", 1, [("id", s.peerId), ("address", s.address)])
        reportProcess()

        // Training and convergence.
        gauge("step", "Step count the network sees (trained here plus inherited)", Double(s.step))
        counter("steps_trained_total", "Steps this process trained itself (not adopted or restored)", s.stepsTrained)
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

    /// CPU seconds already added to `process_cpu_seconds_total`.
    private var reportedCPU = 0.0

    /// The process_* series every Prometheus client exports (client_golang's names), read from
    /// /proc/self on Linux; absent elsewhere.
    private func reportProcess() {
        guard let process = ProcessSample.read() else { return }
        func gauge(_ name: String, _ help: String, _ value: Double) {
            registry.makeGauge(descriptor: MetricNameDescriptor(namespace: "process", metricName: name, unitName: "", helpText: help),
                               labels: [peer]).set(to: value)
        }
        let cpu = registry.makeCounter(descriptor: MetricNameDescriptor(namespace: "process", metricName: "cpu_seconds_total", unitName: "",
                                                                        helpText: "Total user and system CPU time spent in seconds"),
                                       labels: [peer])
        if process.cpuSeconds > reportedCPU { cpu.increment(by: process.cpuSeconds - reportedCPU); reportedCPU = process.cpuSeconds }
        gauge("resident_memory_bytes", "Resident memory size in bytes", process.residentBytes)
        gauge("virtual_memory_bytes", "Virtual memory size in bytes", process.virtualBytes)
        gauge("open_fds", "Number of open file descriptors", process.openFDs)
        gauge("max_fds", "Maximum number of open file descriptors", process.maxFDs)
        gauge("start_time_seconds", "Start time of the process since unix epoch in seconds", process.startTime)
    }

    /// Reasons reported from the start (at 0), so that rates and alerts work before the first drop.
    static let knownReasons = WireRejection.allCases.map(\.rawValue)
        + ClaimRejection.allCases.map { "claims." + $0.rawValue }
        + GossipAverager<PeerID>.Rejection.allCases.map { "parameters." + $0.rawValue }

    private static func descriptor(_ name: String, _ help: String) -> MetricNameDescriptor {
        MetricNameDescriptor(namespace: "chorus", metricName: name, unitName: "", helpText: help)
    }
}

/// What /proc/self says about this process.
struct ProcessSample {
    var cpuSeconds: Double
    var residentBytes: Double
    var virtualBytes: Double
    var openFDs: Double
    var maxFDs: Double
    var startTime: Double

    static func read() -> ProcessSample? {
        #if os(Linux)
        guard let stat = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        // Fields after "(comm)": state is field 3, so index i here is field i + 3 (proc(5)).
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 21, let utime = Double(fields[11]), let stime = Double(fields[12]), let start = Double(fields[19]),
              let vsize = Double(fields[20]), let rss = Double(fields[21]) else { return nil }
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK))), page = Double(sysconf(Int32(_SC_PAGESIZE)))
        let boot = (try? String(contentsOfFile: "/proc/stat", encoding: .utf8))?
            .split(separator: "\n").first { $0.hasPrefix("btime ") }.flatMap { Double($0.dropFirst(6)) } ?? 0
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        return ProcessSample(cpuSeconds: (utime + stime) / ticks, residentBytes: rss * page, virtualBytes: vsize, openFDs: Double(open),
                             maxFDs: Double(limit.rlim_cur), startTime: boot + start / ticks)
        #else
        return nil
        #endif
    }
}
