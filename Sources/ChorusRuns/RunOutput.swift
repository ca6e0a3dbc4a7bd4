import Foundation

/// The files a run writes (docs/experiments.md): `series.csv`, `events.csv`, `summary.json`.
/// One format for simulated and real runs, so they can be compared and plotted alike.
public enum RunOutput {
    /// One row of `series.csv`, taken every sample interval.
    public struct Sample: Sendable, Equatable {
        public var time: Double
        public var livePeers: Int
        /// ‖x_i − x̄‖ / ‖x̄‖ over the live peers that hold a model (nil for --task membership).
        public var consensusMean: Double?
        public var consensusMax: Double?
        /// Test accuracy and loss (nil unless the peers train).
        public var accuracyMean: Double?
        public var accuracyMin: Double?
        public var accuracyMax: Double?
        public var lossMean: Double?
        /// Fraction of live peers whose live view equals the true live set.
        public var viewAgreement: Double
        /// Bytes sent per live peer per second during the interval.
        public var bytesPerPeerPerSecond: Double
        /// Datagrams the network lost during the interval (loss, partitions, dead destinations).
        public var datagramsDropped: Int
        /// Datagrams the receivers' datagram layer rejected during the interval.
        public var datagramsRejected: Int
        /// `--task average`: the largest ‖z_i − x̄₀‖ / ‖x̄₀‖ over the live peers' estimates z_i,
        /// x̄₀ the true average of the starting peers' initial vectors: drift that consensus
        /// distance (to the current average) cannot show. nil for other tasks.
        public var averageError: Double?

        public init(time: Double, livePeers: Int, consensusMean: Double? = nil, consensusMax: Double? = nil,
                    accuracyMean: Double? = nil, accuracyMin: Double? = nil, accuracyMax: Double? = nil, lossMean: Double? = nil,
                    viewAgreement: Double, bytesPerPeerPerSecond: Double, datagramsDropped: Int, datagramsRejected: Int,
                    averageError: Double? = nil) {
            self.time = time
            self.livePeers = livePeers
            self.consensusMean = consensusMean
            self.consensusMax = consensusMax
            self.accuracyMean = accuracyMean
            self.accuracyMin = accuracyMin
            self.accuracyMax = accuracyMax
            self.lossMean = lossMean
            self.viewAgreement = viewAgreement
            self.bytesPerPeerPerSecond = bytesPerPeerPerSecond
            self.datagramsDropped = datagramsDropped
            self.datagramsRejected = datagramsRejected
            self.averageError = averageError
        }
    }

    /// One schedule action as it was applied to one peer (or to the network).
    public struct Event: Sendable, Equatable, Codable {
        public var time: Double
        public var action: String
        /// The peer's name (p0, p1, …), or "network" for partition, heal and loss.
        public var peer: String
        /// Seconds until every live peer saw it (nil: not by the end of the run).
        public var seenByAllAfter: Double?

        public init(time: Double, action: String, peer: String, seenByAllAfter: Double? = nil) {
            self.time = time
            self.action = action
            self.peer = peer
            self.seenByAllAfter = seenByAllAfter
        }

        /// Whether the run watches it spread (crashes, leaves, joins, restarts, heals): faults
        /// such as loss and delay are not "seen" by anyone.
        public var isWatched: Bool { ["crash", "leave", "join", "restart", "heal"].contains(action) }

        enum CodingKeys: String, CodingKey { case time, action, peer, seenByAllAfter }

        /// Every key is written, `null` where there is no value, so readers see one shape.
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(time, forKey: .time)
            try c.encode(action, forKey: .action)
            try c.encode(peer, forKey: .peer)
            try c.encode(seenByAllAfter, forKey: .seenByAllAfter)
        }
    }

    public struct Final: Sendable, Equatable, Codable {
        public var livePeers: Int
        public var accuracyMin: Double?
        public var accuracyMean: Double?
        public var consensusMax: Double?
        /// `--task average`: the last sample's `averageError` (null for other tasks).
        public var averageError: Double?

        public init(livePeers: Int, accuracyMin: Double? = nil, accuracyMean: Double? = nil, consensusMax: Double? = nil,
                    averageError: Double? = nil) {
            self.livePeers = livePeers
            self.accuracyMin = accuracyMin
            self.accuracyMean = accuracyMean
            self.consensusMax = consensusMax
            self.averageError = averageError
        }

        enum CodingKeys: String, CodingKey { case livePeers, accuracyMin, accuracyMean, consensusMax, averageError }

        /// `null` for what the task does not measure (e.g. accuracy in a membership run).
        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(livePeers, forKey: .livePeers)
            try c.encode(accuracyMin, forKey: .accuracyMin)
            try c.encode(accuracyMean, forKey: .accuracyMean)
            try c.encode(consensusMax, forKey: .consensusMax)
            try c.encode(averageError, forKey: .averageError)
        }
    }

    /// What the peers sent over the whole run, added up over every peer that ran (crashed and
    /// departed ones included): where the bytes and the protocol's work go. The simulator
    /// fills it; a real experiment leaves it out (its peers' /metrics have the same counters).
    public struct Totals: Sendable, Equatable, Codable {
        public var datagramsSent = 0
        public var bytesSent = 0
        /// Payload bytes (without the datagram layer's headers, signatures and tags) by channel.
        public var payloadBytesSent: [String: Int] = [:]
        /// Membership protocol counters: probes, failedProbes, indirectProbes, directRetries,
        /// suspicionsRaised, refutations, failuresDeclared, pausesDetected, messagesSent.
        public var membership: [String: Int] = [:]
        /// Parameter contributions dropped or changed by the averaging layer, by reason (late,
        /// duplicate, clipped, …; docs/averaging.md and docs/security.md).
        public var parameters: [String: Int] = [:]

        public init() {}
    }

    public struct Summary: Sendable, Equatable, Codable {
        public var peers: Int
        public var seed: UInt64
        public var duration: Double
        public var wallSeconds: Double
        public var task: String
        public var crypto: String
        public var final: Final
        public var events: [Event]
        public var falseFailures: Int
        /// The invariant that stopped the run, or with --keep-going the first one passed over.
        public var violation: String?
        /// Violations passed over with --keep-going (0 otherwise).
        public var violationsPassed: Int
        /// Seconds reached when the run was interrupted (Ctrl-C); null when it ran to the end.
        public var interruptedAt: Double?
        /// true for `chorus experiment` (real processes), false for the simulator.
        public var real: Bool
        /// The simulator's totals (nil, and not written, for real experiments).
        public var totals: Totals?
        /// With `--baseline`: what one process reaches with the same model, data, steps and
        /// schedule (`chorus baseline`), beside the run's own accuracy.
        public var baseline: BaselineAccuracy?
        /// The simulator's CPU time: building the starting network, and the run itself (nil, and
        /// not written, for real experiments). Like `wallSeconds`, not part of what a seed replays.
        public var cpuSeconds: CPUSeconds?
        /// What the run printed as warnings before it started (schedule actions left out because
        /// they fall after its end, …); not written when there are none.
        public var warnings: [String]?
        /// What `chorus simulate --replay` needs to run this again byte for byte: every option,
        /// and the schedule's text (the file may have changed since). Nil for real experiments.
        public var replay: Replay?
        /// `chorus experiment --hosts`: each machine and its clock against the controller's (every
        /// time in the files is the controller's, so offsets do not shift them; they matter to
        /// the peers, whose rounds follow their own clocks). Not written otherwise.
        public var hosts: [Host]?

        public struct Host: Sendable, Equatable, Codable {
            public var name: String
            public var address: String
            /// Its clock minus the controller's, seconds (NTP's estimate: the midpoint of the best of three round trips).
            public var clockOffset: Double
            public var roundTrip: Double
            public init(name: String, address: String, clockOffset: Double, roundTrip: Double) {
                self.name = name
                self.address = address
                self.clockOffset = clockOffset
                self.roundTrip = roundTrip
            }
        }

        public struct Replay: Sendable, Equatable, Codable {
            /// The command's options, every one spelled out (defaults included), without --out.
            public var arguments: [String]
            /// The text of the schedule file named in `arguments`, if any.
            public var schedule: String?
            public init(arguments: [String], schedule: String?) {
                self.arguments = arguments
                self.schedule = schedule
            }
        }

        public struct BaselineAccuracy: Sendable, Equatable, Codable {
            /// One learner on the union of the shards, the same samples seen.
            public var centralised: Double
            /// One learner per shard, exactly averaged every round (a parameter server).
            public var dataParallel: Double
            public var stepsPerPeer: Int
            public init(centralised: Double, dataParallel: Double, stepsPerPeer: Int) {
                self.centralised = centralised
                self.dataParallel = dataParallel
                self.stepsPerPeer = stepsPerPeer
            }
        }

        public struct CPUSeconds: Sendable, Equatable, Codable {
            public var startup: Double
            public var run: Double
            public init(startup: Double, run: Double) {
                self.startup = startup
                self.run = run
            }
        }

        public init(peers: Int, seed: UInt64, duration: Double, wallSeconds: Double, task: String, crypto: String, final: Final,
                    events: [Event], falseFailures: Int, violation: String? = nil, violationsPassed: Int = 0,
                    interruptedAt: Double? = nil, real: Bool = false, totals: Totals? = nil, cpuSeconds: CPUSeconds? = nil) {
            self.peers = peers
            self.seed = seed
            self.duration = duration
            self.wallSeconds = wallSeconds
            self.task = task
            self.crypto = crypto
            self.final = final
            self.events = events
            self.falseFailures = falseFailures
            self.violation = violation
            self.violationsPassed = violationsPassed
            self.interruptedAt = interruptedAt
            self.real = real
            self.totals = totals
            self.cpuSeconds = cpuSeconds
        }

        enum CodingKeys: String, CodingKey {
            case peers, seed, duration, wallSeconds, task, crypto, final, events, falseFailures, violation, violationsPassed, interruptedAt, real, totals, cpuSeconds, baseline, warnings, replay, hosts
        }

        public func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(peers, forKey: .peers)
            try c.encode(seed, forKey: .seed)
            try c.encode(duration, forKey: .duration)
            try c.encode(wallSeconds, forKey: .wallSeconds)
            try c.encode(task, forKey: .task)
            try c.encode(crypto, forKey: .crypto)
            try c.encode(final, forKey: .final)
            try c.encode(events, forKey: .events)
            try c.encode(falseFailures, forKey: .falseFailures)
            try c.encode(violation, forKey: .violation)  // null when the run was clean
            try c.encode(violationsPassed, forKey: .violationsPassed)
            try c.encode(interruptedAt, forKey: .interruptedAt)
            try c.encode(real, forKey: .real)
            try c.encodeIfPresent(totals, forKey: .totals)
            try c.encodeIfPresent(cpuSeconds, forKey: .cpuSeconds)
            try c.encodeIfPresent(baseline, forKey: .baseline)
            try c.encodeIfPresent(warnings, forKey: .warnings)
            try c.encodeIfPresent(replay, forKey: .replay)
            try c.encodeIfPresent(hosts, forKey: .hosts)
        }
    }

    public static let seriesHeader = "time,live_peers,consensus_mean,consensus_max,accuracy_mean,accuracy_min,accuracy_max,loss_mean,view_agreement,bytes_per_peer_per_s,datagrams_dropped,datagrams_rejected,average_error"
    public static let eventsHeader = "time,action,peer,seen_by_all_after"

    public static func seriesCSV(_ samples: [Sample]) -> String {
        var lines = [seriesHeader]
        for s in samples {
            let fields: [String] = [
                fixed(s.time, 3), "\(s.livePeers)", optional(s.consensusMean), optional(s.consensusMax),
                optional(s.accuracyMean), optional(s.accuracyMin), optional(s.accuracyMax), optional(s.lossMean),
                fixed(s.viewAgreement, 4), fixed(s.bytesPerPeerPerSecond, 1), "\(s.datagramsDropped)", "\(s.datagramsRejected)",
                optional(s.averageError),
            ]
            lines.append(fields.joined(separator: ","))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    public static func eventsCSV(_ events: [Event]) -> String {
        var lines = [eventsHeader]
        for e in events {
            lines.append("\(fixed(e.time, 3)),\(e.action),\(e.peer),\(e.seenByAllAfter.map { fixed($0, 3) } ?? "")")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Writes the three files into `directory` (created if needed).
    public static func write(samples: [Sample], summary: Summary, to directory: String) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        try seriesCSV(samples).write(toFile: directory + "/series.csv", atomically: true, encoding: .utf8)
        try eventsCSV(summary.events).write(toFile: directory + "/events.csv", atomically: true, encoding: .utf8)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        try encoder.encode(summary).write(to: URL(fileURLWithPath: directory + "/summary.json"))
    }

    /// Fixed decimals, locale-free (String(format:) would do, but this is exact and fast).
    static func fixed(_ value: Double, _ decimals: Int) -> String {
        guard value.isFinite else { return value.isNaN ? "nan" : (value > 0 ? "inf" : "-inf") }
        return String(format: "%.\(decimals)f", value)
    }

    /// Relative quantities span many decades: six significant digits.
    static func optional(_ value: Double?) -> String {
        guard let value else { return "" }
        guard value.isFinite else { return value.isNaN ? "nan" : "inf" }
        return String(format: "%.6g", value)
    }
}
