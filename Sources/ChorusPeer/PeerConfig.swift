import ChorusAveraging
import ChorusCore
import ChorusCrypto
import ChorusLearning
import ChorusMembership
import ChorusRuns
import ChorusWire
import Foundation
import TOMLKit

/// A configuration mistake: one line naming the file, the field and what would be valid.
public struct ConfigError: Error, CustomStringConvertible, Equatable {
    public let file: String
    public let field: String?
    public let message: String

    public init(file: String, field: String?, _ message: String) {
        self.file = file
        self.field = field
        self.message = message
    }

    public var description: String {
        if let field { return "\(file): field '\(field)': \(message)" }
        return "\(file): \(message)"
    }
}

/// One configured neighbour.
public struct NeighbourConfig: Sendable, Equatable {
    public var id: PeerID
    public var address: HostPort
}

/// Everything one peer process needs, read from a TOML file (format: Peers/README.md).
public struct PeerConfig: Sendable {
    public var file: String
    // [peer]
    public var bind: HostPort
    public var advertise: HostPort
    public var identityPath: String
    public var networkKeyPath: String
    /// Further network keys accepted from others but never used to seal (`accepted_network_keys`):
    /// the middle steps of a key rotation (docs/security.md, "Rotating the network key").
    public var acceptedNetworkKeyPaths: [String] = []
    public var admin: HostPort
    /// The admin token file (`chorus keygen` writes one beside the identity): without it the
    /// endpoint serves only read-only routes and must stay on loopback.
    public var adminTokenPath: String?
    /// The network authority's public key (`peer.authority`: a file, or the directory `chorus
    /// keygen --authority` wrote) and this peer's certificate from it (`peer.certificate`): both
    /// or neither. With them, only identities the authority certified are admitted.
    public var authorityPath: String?
    public var certificatePath: String?
    public var checkpointPath: String
    /// Seconds between checkpoints while training (0: only at shutdown), so `kill -9` loses little.
    public var checkpointInterval: Double
    // [[neighbours]]
    public var neighbours: [NeighbourConfig]
    // [model]
    public var model: ModelSpec
    /// Every peer starts from the same parameters (false), or from its own random values in
    /// [−1, 1] drawn from `learning.seed` (averaging experiments: the network must find their mean).
    public var randomStart: Bool
    // [data]
    public var dataSource: DataSource
    public var partition: PartitionScheme
    public var shard: Int
    public var shards: Int
    public var dataSeed: UInt64
    public var testFraction: Double
    // [learning]
    public var learningRate: Double
    public var momentum: Double
    public var batchSize: Int
    public var stepsPerRound: Int
    public var weightDecay: Double
    /// Steps over which the learning rate decays to zero by a cosine; 0 keeps it constant.
    public var cosineSteps: Int
    public var seed: UInt64
    // [gossip]
    public var gossipInterval: Double
    /// Seconds after a round's start at which its contributions are mixed.
    public var collect: Double
    public var averaging: AveragingSettings
    public var evaluationInterval: Double
    public var wire: WireSettings
    // [membership]
    public var membership: MembershipSettings
    public var seeds: [HostPort]
    public var topology: Topology
    /// Wait for the network's current model before training (set by `--join`).
    public var fetchModel: Bool
    /// Membership only: no training, no rounds, no parameters (`chorus peer --membership-only`,
    /// for measuring membership against other SWIM implementations).
    public var membershipOnly = false
    /// An insider's attack for experiments on poisoned parameters (`chorus peer --poison`, a
    /// hidden option; docs/security.md). Never read from the file.
    public var poison: Poison?
    // [faults]
    public var faults: FaultSettings

    /// Largest configuration file read: a real one is a few kilobytes, and a huge one (a 10 MB
    /// string) kept the TOML parser busy for tens of seconds before any field was checked.
    public static let maxFileBytes = 1 << 20
    /// Longest string field (paths are at most 4096 bytes on Linux).
    public static let maxStringBytes = 4096

    /// Reads and validates a configuration file. Relative paths inside it are relative to the file.
    public static func load(path: String) throws(ConfigError) -> PeerConfig {
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > maxFileBytes {
            throw ConfigError(file: path, field: nil, "the file has \(size) bytes; a peer configuration has a few thousand (at most \(maxFileBytes) accepted)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            let reason = FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file"
            throw ConfigError(file: path, field: nil, reason)
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(file: path, field: nil, "not UTF-8 text")
        }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(ConfigError) -> PeerConfig {
        guard text.utf8.count <= maxFileBytes else {
            throw ConfigError(file: file, field: nil, "the file has \(text.utf8.count) bytes; a peer configuration has a few thousand (at most \(maxFileBytes) accepted)")
        }
        let root: TOMLTable
        do { root = try TOMLText.parse(text) } catch { throw ConfigError(file: file, field: nil, error.description) }
        let base = (file as NSString).deletingLastPathComponent
        func resolve(_ p: String) -> String {
            p.hasPrefix("/") || base.isEmpty ? p : (base as NSString).appendingPathComponent(p)
        }

        var top = TableReader(file: file, table: root, prefix: "")
        var peer = try top.table("peer", required: true)!
        let bind = try peer.address("bind", allowZero: true)
        let advertise = try peer.optionalAddress("advertise") ?? bind
        if advertise.port == 0 {
            throw ConfigError(file: file, field: "peer.advertise", "needs a fixed port when peer.bind uses port 0")
        }
        if let problem = advertiseProblem(advertise) {
            let given = (try? peer.isPresent("advertise")) ?? false
            throw ConfigError(file: file, field: "peer.advertise", given ? problem : "missing, so peer.bind is advertised, and \(problem)")
        }
        let identity = resolve(try peer.string("identity"))
        let networkKey = resolve(try peer.string("network_key"))
        let acceptedNetworkKeys = try peer.optionalStringArray("accepted_network_keys").map(resolve)
        let admin = try peer.optionalAddress("admin", allowZero: true) ?? HostPort(host: "127.0.0.1", port: 0)
        var adminToken = try peer.optionalString("admin_token").map(resolve)
        if adminToken == nil {
            let beside = (identity as NSString).appendingPathComponent(KeyFiles.adminTokenFileName)
            var isDirectory: ObjCBool = false
            if FileManager.default.fileExists(atPath: identity, isDirectory: &isDirectory), isDirectory.boolValue,
               FileManager.default.fileExists(atPath: beside) { adminToken = beside }
        }
        if adminToken == nil && !admin.isLoopback {
            throw ConfigError(file: file, field: "peer.admin", "\(admin) is reachable from other machines, and no admin token protects it: keep admin on 127.0.0.1, or create a token (chorus keygen --admin-token --out \(identity)) and firewall the port")
        }
        let authority = try peer.optionalString("authority").map(resolve)
        let certificate = try peer.optionalString("certificate").map(resolve)
        if (authority == nil) != (certificate == nil) {
            throw ConfigError(file: file, field: authority == nil ? "peer.authority" : "peer.certificate",
                              "admission needs both peer.authority (the authority's public key) and peer.certificate (this peer's certificate, chorus certify); give both or neither")
        }
        let stem = ((file as NSString).lastPathComponent as NSString).deletingPathExtension
        let checkpoint = resolve(try peer.optionalString("checkpoint") ?? "state/\(stem).checkpoint")
        let checkpointInterval = try peer.optionalDouble("checkpoint_interval_s", range: 0...86_400) ?? 30
        try peer.finish()

        var neighbours: [NeighbourConfig] = []
        for (index, var entry) in try top.arrayOfTables("neighbours").enumerated() {
            let field = "neighbours[\(index)]"
            let idText = try entry.optionalString("id")
            let idFile = try entry.optionalString("id_file")
            let id: PeerID
            switch (idText, idFile) {
            case let (text?, nil):
                guard let parsed = PeerID(text: text) else {
                    throw ConfigError(file: file, field: field + ".id",
                                      "expected a peer id of 64 hexadecimal characters (as printed by 'chorus keygen'), got \"\(text)\"")
                }
                id = parsed
            case let (nil, path?):
                let resolved = resolve(path)
                guard let data = FileManager.default.contents(atPath: resolved),
                      let parsed = PeerID(text: String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
                else {
                    throw ConfigError(file: file, field: field + ".id_file",
                                      "\(resolved) is missing or does not hold a peer id (run 'chorus keygen --out DIR'; the id is DIR/identity.public)")
                }
                id = parsed
            default:
                throw ConfigError(file: file, field: field, "give exactly one of id (64 hex characters) or id_file (a path to identity.public)")
            }
            neighbours.append(NeighbourConfig(id: id, address: try entry.address("address")))
            try entry.finish()
        }

        var modelTable = try top.table("model") ?? TableReader(file: file, table: TOMLTable(), prefix: "model.")
        let modelText = try modelTable.optionalString("kind") ?? "softmax"
        let hidden = try modelTable.optionalInt("hidden", range: 1...100_000)
        var model: ModelSpec
        do { model = try ModelSpec(parsing: modelText) } catch {
            throw ConfigError(file: file, field: "model.kind", "expected softmax or mlp, got \"\(modelText)\"")
        }
        if let hidden {
            guard case .mlp = model else {
                throw ConfigError(file: file, field: "model.hidden", "only applies to model.kind = \"mlp\"")
            }
            if case let .mlp(_, activation) = model { model = .mlp(hidden: hidden, activation: activation) }
        }
        let startText = try modelTable.optionalString("start") ?? "shared"
        guard startText == "shared" || startText == "random" else {
            throw ConfigError(file: file, field: "model.start", "expected \"shared\" (every peer starts from the same parameters) or \"random\" (each from its own random values, for averaging experiments), got \"\(startText)\"")
        }
        try modelTable.finish()

        var dataTable = try top.table("data") ?? TableReader(file: file, table: TOMLTable(), prefix: "data.")
        let sourceText = try dataTable.optionalString("source") ?? "digits"
        let dataSource: DataSource
        if sourceText == "digits" {
            dataSource = .digits
        } else if sourceText.hasPrefix("csv:") {
            let classes = try dataTable.optionalInt("classes", range: 2...100_000) ?? 10
            dataSource = .csv(path: resolve(String(sourceText.dropFirst(4))), classCount: classes)
        } else if sourceText == "synthetic" {
            dataSource = .synthetic(
                count: try dataTable.optionalInt("samples", range: 10...10_000_000) ?? 2000,
                features: try dataTable.optionalInt("features", range: 1...10_000_000) ?? 64,
                classes: try dataTable.optionalInt("classes", range: 2...100_000) ?? 10)
        } else {
            throw ConfigError(file: file, field: "data.source", "expected \"digits\", \"csv:PATH\" or \"synthetic\", got \"\(sourceText)\"")
        }
        if case let .synthetic(count, features, classes) = dataSource {
            try checkMemory(samples: count, features: features, classes: classes, model: model, file: file,
                            fields: (samples: "data.samples", features: "data.features", classes: "data.classes"))
        } else if dataSource == .digits {
            try checkMemory(samples: 1797, features: 64, classes: 10, model: model, file: file,
                            fields: (samples: "the digits' 1797 rows", features: "their 64 features", classes: "their 10 classes"))
        }
        let partitionText = try dataTable.optionalString("partition") ?? "iid"
        let partition: PartitionScheme
        do { partition = try PartitionScheme(parsing: partitionText) } catch {
            throw ConfigError(file: file, field: "data.partition", "expected \"iid\" or \"dirichlet:ALPHA\" with ALPHA > 0, got \"\(partitionText)\"")
        }
        let shards = try dataTable.optionalInt("shards", range: 1...1_000_000) ?? 1
        let shard = try dataTable.optionalInt("shard", range: 0...1_000_000) ?? 0
        guard shard < shards else {
            throw ConfigError(file: file, field: "data.shard", "must be below data.shards (\(shards)), got \(shard)")
        }
        let dataSeed = UInt64(try dataTable.optionalInt("seed", range: 0...Int.max) ?? 1)
        let testFraction = try dataTable.optionalDouble("test_fraction", range: 0.01...0.9) ?? 0.2
        try dataTable.finish()

        var learn = try top.table("learning") ?? TableReader(file: file, table: TOMLTable(), prefix: "learning.")
        let learningRate = try learn.optionalDouble("learning_rate", range: 1e-9...100, exclusiveLower: true) ?? 0.05
        let momentum = try learn.optionalDouble("momentum", range: 0...0.999) ?? 0.9
        let batchSize = try learn.optionalInt("batch_size", range: 1...65_536) ?? 32
        let stepsPerRound = try learn.optionalInt("steps_per_round", range: 0...100_000) ?? 5
        let weightDecay = try learn.optionalDouble("weight_decay", range: 0...1) ?? 0
        let cosineSteps = try learn.optionalInt("cosine_steps", range: 0...Int(Int32.max)) ?? 0
        let seed = UInt64(try learn.optionalInt("seed", range: 0...Int.max) ?? Int(shard + 1))
        try learn.finish()

        var gossip = try top.table("gossip") ?? TableReader(file: file, table: TOMLTable(), prefix: "gossip.")
        let interval = try gossip.optionalDouble("interval_ms", range: 1...600_000) ?? 100
        for removed in ["silence_timeout_ms", "max_contribution_age_ms"] {
            guard try gossip.isPresent(removed) else { continue }
            throw ConfigError(file: file, field: "gossip.\(removed)",
                              "no longer used: rounds are aligned to the clock and a contribution is mixed only in its own round (docs/averaging.md); remove the line")
        }
        let evaluation = try gossip.optionalDouble("evaluation_interval_ms", range: 10...3_600_000) ?? 1000
        var wire = WireSettings()
        wire.maxDatagramSize = try gossip.optionalInt("max_datagram_size", range: DatagramCodec.minimumDatagramSize...DatagramCodec.maximumDatagramSize) ?? 1200
        wire.sessionKeys = try gossip.optionalBool("session_keys") ?? true
        var averaging = AveragingSettings()
        let mixingText = try gossip.optionalString("mixing") ?? averaging.mixing.rawValue
        guard let mixing = MixingMode(rawValue: mixingText) else {
            throw ConfigError(file: file, field: "gossip.mixing", "expected \(MixingMode.help), got \"\(mixingText)\"")
        }
        averaging.mixing = mixing
        let weightsText = try gossip.optionalString("weights") ?? averaging.weights.rawValue
        guard let weights = WeightRule(parsing: weightsText) else {
            throw ConfigError(file: file, field: "gossip.weights", "expected \(WeightRule.help), got \"\(weightsText)\"")
        }
        averaging.weights = weights
        averaging.float64Values = try gossip.optionalBool("float64") ?? false
        averaging.clipFactor = try gossip.optionalDouble("clip", range: 0...1000)
        if let clip = averaging.clipFactor, clip > 0 && clip < 1 {
            throw ConfigError(file: file, field: "gossip.clip", "expected 0 (off) or a factor of at least 1, got \(clip)")
        }
        let collect = try gossip.optionalDouble("collect_ms", range: 0.001...600_000) ?? interval / 2
        guard collect < interval else {
            throw ConfigError(file: file, field: "gossip.collect_ms", "must be shorter than gossip.interval_ms (\(plain(interval)) ms), got \(plain(collect))")
        }
        var topologyText = try gossip.optionalString("topology")
        try gossip.finish()
        var member = try top.table("membership") ?? TableReader(file: file, table: TOMLTable(), prefix: "membership.")
        let profile = try member.optionalString("profile") ?? "lan"
        var membership: MembershipSettings
        switch profile {
        case "lan": membership = .lan
        case "fast": membership = .fast
        default: throw ConfigError(file: file, field: "membership.profile", "expected \"lan\" or \"fast\", got \"\(profile)\"")
        }
        // The peer drives membership every 50 ms: shorter probe intervals would look like pauses.
        if let v = try member.optionalDouble("probe_interval_ms", range: 100...600_000) { membership.probeInterval = v / 1000 }
        if let v = try member.optionalDouble("probe_timeout_ms", range: 10...600_000) { membership.probeTimeout = v / 1000 }
        if let v = try member.optionalDouble("sync_interval_ms", range: 1000...3_600_000) { membership.syncInterval = v / 1000 }
        if let v = try member.optionalDouble("suspicion_multiplier", range: 0.01...100) { membership.suspicionMultiplier = v }
        if membership.probeTimeout >= membership.probeInterval {
            throw ConfigError(file: file, field: "membership.probe_timeout_ms",
                              "must be shorter than membership.probe_interval_ms (\(plain(membership.probeInterval * 1000)) ms with profile \"\(profile)\"), got \(plain(membership.probeTimeout * 1000))")
        }
        membership.maxMessageBytes = wire.maxMessagePayload - 1
        if membership.maxMessageBytes < MembershipSettings.minimumMessageBytes {
            let overhead = wire.maxDatagramSize - membership.maxMessageBytes
            throw ConfigError(file: file, field: "gossip.max_datagram_size",
                              "expected at least \(MembershipSettings.minimumMessageBytes + overhead) (membership messages need \(MembershipSettings.minimumMessageBytes) bytes after \(overhead) bytes of headers and tags), got \(wire.maxDatagramSize)")
        }
        if let problem = membership.problems().first { throw ConfigError(file: file, field: "membership", problem) }
        var seeds: [HostPort] = []
        for (index, text) in try member.optionalStringArray("seeds").enumerated() {
            guard let seed = HostPort(parsing: text) else {
                throw ConfigError(file: file, field: "membership.seeds[\(index)]", "expected \"HOST:PORT\", got \"\(text)\"")
            }
            seeds.append(seed)
        }
        // The topology moved to [gossip]; [membership] topology is still read (not both).
        var topologyField = "gossip.topology"
        if let old = try member.optionalString("topology") {
            guard topologyText == nil else {
                throw ConfigError(file: file, field: "membership.topology", "give the topology once, as gossip.topology")
            }
            topologyText = old
            topologyField = "membership.topology"
        }
        guard let topology = Topology(parsing: topologyText ?? "exponential") else {
            throw ConfigError(file: file, field: topologyField, "expected \(Topology.help), got \"\(topologyText ?? "")\"")
        }
        if let problem = weights.problem(with: topology) { throw ConfigError(file: file, field: "gossip.weights", problem) }
        let fetchModel = try member.optionalBool("fetch_model") ?? false
        try member.finish()

        var faultTable = try top.table("faults") ?? TableReader(file: file, table: TOMLTable(), prefix: "faults.")
        var faults = FaultSettings()
        faults.drop = try faultTable.optionalDouble("drop", range: 0...1) ?? 0
        faults.dropIn = try faultTable.optionalDouble("drop_in", range: 0...1) ?? 0
        faults.duplicate = try faultTable.optionalDouble("duplicate", range: 0...1) ?? 0
        let delayMin = try faultTable.optionalDouble("delay_min_ms", range: 0...60_000) ?? 0
        let delayMax = try faultTable.optionalDouble("delay_max_ms", range: 0...60_000) ?? delayMin
        guard delayMax >= delayMin else {
            throw ConfigError(file: file, field: "faults.delay_max_ms", "must be at least faults.delay_min_ms (\(delayMin)), got \(delayMax)")
        }
        faults.delay = delayMin / 1000...delayMax / 1000
        for (index, text) in try faultTable.optionalStringArray("blocked").enumerated() {
            guard let id = PeerID(text: text) else {
                throw ConfigError(file: file, field: "faults.blocked[\(index)]", "expected a peer id of 64 hexadecimal characters, got \"\(text)\"")
            }
            faults.blocked.insert(id)
        }
        try faultTable.finish()
        try top.finish()

        var config = PeerConfig(
            file: file, bind: bind, advertise: advertise, identityPath: identity, networkKeyPath: networkKey,
            admin: admin, adminTokenPath: adminToken, checkpointPath: checkpoint, checkpointInterval: checkpointInterval, neighbours: neighbours, model: model, randomStart: startText == "random",
            dataSource: dataSource, partition: partition, shard: shard, shards: shards, dataSeed: dataSeed,
            testFraction: testFraction, learningRate: learningRate, momentum: momentum, batchSize: batchSize,
            stepsPerRound: stepsPerRound, weightDecay: weightDecay, cosineSteps: cosineSteps, seed: seed,
            gossipInterval: interval / 1000, collect: collect / 1000, averaging: averaging, evaluationInterval: evaluation / 1000, wire: wire,
            membership: membership, seeds: seeds, topology: topology, fetchModel: fetchModel, faults: faults)
        config.acceptedNetworkKeyPaths = acceptedNetworkKeys
        config.authorityPath = authority
        config.certificatePath = certificate
        return config
    }
}

extension PeerConfig {
    /// What one peer may hold of data and model together: a third of this kind of machine
    /// (24 GiB), so a few peers fit beside each other. Checked before anything is allocated:
    /// fields each within range multiplied to terabytes and ended in "failed to allocate".
    public static let memoryBudgetBytes = 8 << 30

    /// Bytes a peer holds for data and model: the data as loaded, its train/test split and this
    /// peer's shard (three float matrices of samples × features), and the model's parameters
    /// about eight times over (weights, gradient, momentum, neighbours' contributions, the mix,
    /// the checkpoint and the datagrams that carry them).
    public static func memoryEstimate(samples: Int, features: Int, classes: Int, model: ModelSpec) -> (data: Double, model: Double) {
        let data = 3 * 4 * Double(samples) * Double(features)
        let parameters: Double
        switch model {
        case .softmax: parameters = Double(features) * Double(classes) + Double(classes)
        case let .mlp(hidden, _): parameters = Double(features) * Double(hidden) + Double(hidden) + Double(hidden) * Double(classes) + Double(classes)
        }
        return (data, 8 * 4 * parameters)
    }

    /// Refuses data and model shapes whose product exceeds `memoryBudgetBytes`, naming the fields.
    static func checkMemory(samples: Int, features: Int, classes: Int, model: ModelSpec, file: String,
                            fields: (samples: String, features: String, classes: String)) throws(ConfigError) {
        let (data, weights) = memoryEstimate(samples: samples, features: features, classes: classes, model: model)
        let budget = Double(memoryBudgetBytes)
        guard data + weights > budget else { return }
        let over = "over the \(bytes(budget)) budget of one peer (data and model together: \(bytes(data + weights)))"
        if data >= weights {
            throw ConfigError(file: file, field: "data.samples",
                              "\(fields.samples) × \(fields.features) = \(samples) × \(features) values need \(bytes(data)) (the data, its train/test split and this peer's shard), \(over); lower them")
        }
        let parameters = Int(weights / 32)
        let (field, advice) = if case .mlp = model { ("model.hidden", "a smaller hidden width (model.hidden or model.kind) or fewer \(fields.features)") }
                              else { (fields.features == "data.features" ? "data.features" : "model.kind", "fewer \(fields.features) or \(fields.classes)") }
        throw ConfigError(file: file, field: field,
                          "model \(model) with \(fields.features) = \(features) and \(fields.classes) = \(classes) has \(parameters) parameters, which need \(bytes(weights)) (weights, gradient, momentum and neighbours' copies), \(over); choose \(advice)")
    }

    /// A problem with an `advertise` address that other peers could never use, or nil.
    static func advertiseProblem(_ address: HostPort) -> String? {
        let host = address.host.lowercased()
        if host.contains("new-host") || host.hasPrefix("<") || host == "host" {
            return "\"\(address)\" is the placeholder chorus init writes: replace it with the address other peers reach this one at, e.g. \"192.0.2.13:\(address.port)\""
        }
        if host == "0.0.0.0" || host == "::" || host == "0:0:0:0:0:0:0:0" {
            return "\"\(address)\" means every interface, which no other peer can reach: set peer.advertise to this machine's address, e.g. \"192.0.2.13:\(address.port)\""
        }
        return nil
    }
}

/// 8 GiB, 3.6 TiB, 512 MiB.
private func bytes(_ value: Double) -> String {
    let units = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
    var v = value, i = 0
    while v >= 1024 && i < units.count - 1 { v /= 1024; i += 1 }
    return i == 0 ? "\(Int(v)) bytes" : (v >= 100 || v == v.rounded() ? "\(Int(v.rounded())) \(units[i])" : String(format: "%.1f %@", v, units[i]))
}

/// Reads one TOML table strictly: typed accessors that name the field in every error, and
/// `finish()` that rejects any key nobody asked for (a typo is an error, not a silent default).
struct TableReader {
    let file: String
    let table: TOMLTable
    let prefix: String
    private var used: Set<String> = []

    init(file: String, table: TOMLTable, prefix: String) {
        self.file = file
        self.table = table
        self.prefix = prefix
    }

    private func error(_ key: String, _ message: String) -> ConfigError {
        ConfigError(file: file, field: prefix + key, message)
    }

    private mutating func value(_ key: String) -> TOMLValueConvertible? {
        used.insert(key)
        return table[key]
    }

    private func typeName(_ v: TOMLValueConvertible) -> String {
        switch v.type {
        case .string: return "a string"
        case .int: return "an integer"
        case .double: return "a number"
        case .bool: return "a boolean"
        case .table: return "a table"
        case .array: return "an array"
        default: return "a date or time"
        }
    }

    mutating func optionalString(_ key: String) throws(ConfigError) -> String? {
        guard let v = value(key) else { return nil }
        guard let s = v.string else { throw error(key, "expected a string, got \(typeName(v))") }
        guard s.utf8.count <= PeerConfig.maxStringBytes else {
            throw error(key, "a string of \(s.utf8.count) bytes; at most \(PeerConfig.maxStringBytes) accepted")
        }
        return s
    }

    mutating func string(_ key: String) throws(ConfigError) -> String {
        guard let s = try optionalString(key) else { throw error(key, "missing (required)") }
        return s
    }

    mutating func optionalInt(_ key: String, range: ClosedRange<Int>) throws(ConfigError) -> Int? {
        guard let v = value(key) else { return nil }
        guard v.type == .int, let i = v.int else { throw error(key, "expected an integer between \(range.lowerBound) and \(range.upperBound), got \(typeName(v))") }
        guard range.contains(i) else { throw error(key, "expected an integer between \(range.lowerBound) and \(range.upperBound), got \(i)") }
        return i
    }

    mutating func optionalDouble(_ key: String, range: ClosedRange<Double>, exclusiveLower: Bool = false) throws(ConfigError) -> Double? {
        guard let v = value(key) else { return nil }
        let d: Double
        if v.type == .int, let i = v.int { d = Double(i) } else if v.type == .double, let x = v.double { d = x } else {
            throw error(key, "expected a number between \(range.lowerBound) and \(range.upperBound), got \(typeName(v))")
        }
        guard d.isFinite, range.contains(d), !(exclusiveLower && d <= range.lowerBound) else {
            throw error(key, "expected a number between \(range.lowerBound) and \(range.upperBound), got \(d)")
        }
        return d
    }

    /// Whether the key is there at all (marks it as read).
    mutating func isPresent(_ key: String) throws(ConfigError) -> Bool { value(key) != nil }

    mutating func optionalBool(_ key: String) throws(ConfigError) -> Bool? {
        guard let v = value(key) else { return nil }
        guard v.type == .bool, let b = v.bool else { throw error(key, "expected true or false, got \(typeName(v))") }
        return b
    }

    mutating func optionalStringArray(_ key: String) throws(ConfigError) -> [String] {
        guard let v = value(key) else { return [] }
        guard let array = v.array else { throw error(key, "expected an array of strings, got \(typeName(v))") }
        var out: [String] = []
        for i in 0..<array.count {
            guard let s = array[i].string else { throw error("\(key)[\(i)]", "expected a string, got \(typeName(array[i]))") }
            guard s.utf8.count <= PeerConfig.maxStringBytes else {
                throw error("\(key)[\(i)]", "a string of \(s.utf8.count) bytes; at most \(PeerConfig.maxStringBytes) accepted")
            }
            out.append(s)
        }
        return out
    }

    mutating func optionalAddress(_ key: String, allowZero: Bool = false) throws(ConfigError) -> HostPort? {
        guard let text = try optionalString(key) else { return nil }
        guard let address = HostPort(parsing: text, allowZero: allowZero) else {
            throw error(key, "expected \"HOST:PORT\" with a port between \(allowZero ? 0 : 1) and 65535 (IPv6 as \"[::1]:7000\"), got \"\(text)\"")
        }
        return address
    }

    mutating func address(_ key: String, allowZero: Bool = false) throws(ConfigError) -> HostPort {
        guard let a = try optionalAddress(key, allowZero: allowZero) else { throw error(key, "missing (required), e.g. \"127.0.0.1:7001\"") }
        return a
    }

    mutating func table(_ key: String, required: Bool = false) throws(ConfigError) -> TableReader? {
        guard let v = value(key) else {
            if required { throw ConfigError(file: file, field: prefix + key, "missing section [\(prefix + key)]") }
            return nil
        }
        guard let t = v.table else { throw error(key, "expected a section [\(prefix + key)], got \(typeName(v))") }
        return TableReader(file: file, table: t, prefix: prefix + key + ".")
    }

    mutating func arrayOfTables(_ key: String) throws(ConfigError) -> [TableReader] {
        guard let v = value(key) else { return [] }
        guard let array = v.array else { throw error(key, "expected [[\(key)]] entries, got \(typeName(v))") }
        var out: [TableReader] = []
        for index in 0..<array.count {
            guard let t = array[index].table else { throw error("\(key)[\(index)]", "expected a table with id and address") }
            out.append(TableReader(file: file, table: t, prefix: "\(prefix)\(key)[\(index)]."))
        }
        return out
    }

    func finish() throws(ConfigError) {
        let unknown = table.keys.filter { !used.contains($0) }.sorted()
        if let first = unknown.first {
            let known = used.sorted().joined(separator: ", ")
            throw ConfigError(file: file, field: prefix + first, "unknown field (known here: \(known))")
        }
    }
}

/// A number as a user wrote it: 500, not 500.0.
private func plain(_ value: Double) -> String {
    value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
}
