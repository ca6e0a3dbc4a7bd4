import ChorusPeer
import FuzzSupport

/// libFuzzer target `config`: `PeerConfig.parse`, a peer's TOML configuration (TOMLKit's toml++
/// parser, then every field's reader and range check).
///
/// The input is the file's text; input that is not UTF-8 is skipped, as `PeerConfig.load` refuses
/// it before parsing. The file is named inside a directory that does not exist, so relative paths
/// resolve to nothing. Checked: a configuration that parses gives settings the peer instance
/// accepts (`PeerSettings.problems()` empty; the instance traps on any), so a file that passes
/// `chorus peer`'s checks cannot crash it at start.

private let file = "/nonexistent/chorus-fuzz/peer.toml"

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let text = String(validating: UnsafeBufferPointer(start: data, count: size), as: UTF8.self) else { return 0 }
    guard let config = try? PeerConfig.parse(text, file: file) else { return 0 }
    let problems = config.peerSettings.problems()
    Fuzz.check(problems.isEmpty, "a configuration that parses gives invalid peer settings: \(problems)")
    _ = config.learningSettings
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    Fuzz.writeSeedsIfAsked {
        let b = Fuzz.bob.peerID.description
        let minimal = """
            [peer]
            bind = "127.0.0.1:7001"
            identity = "keys/a"
            network_key = "keys/network.key"

            """
        // Every section and field that Peers/README.md documents, with valid values.
        let full = """
            # every field
            [peer]
            bind = "0.0.0.0:7001"
            advertise = "192.0.2.13:7001"
            identity = "keys/a"
            network_key = "/etc/chorus/network.key"
            admin = "127.0.0.1:8001"
            checkpoint = "state/a.checkpoint"
            checkpoint_interval_s = 30

            [[neighbours]]
            id = "\(b)"
            address = "127.0.0.1:7002"

            [[neighbours]]
            id = "\(Fuzz.alice.peerID)"
            address = "[::1]:7003"

            [model]
            kind = "mlp"
            hidden = 32
            start = "random"

            [data]
            source = "synthetic"
            samples = 2000
            features = 64
            classes = 10
            partition = "dirichlet:0.5"
            shards = 4
            shard = 1
            seed = 3
            test_fraction = 0.25

            [learning]
            learning_rate = 0.05
            momentum = 0.9
            batch_size = 32
            steps_per_round = 5
            weight_decay = 0.0001
            cosine_steps = 10000
            seed = 2

            [gossip]
            interval_ms = 100
            collect_ms = 60
            evaluation_interval_ms = 1000
            max_datagram_size = 1400
            mixing = "push-sum"
            weights = "uniform"
            float64 = true
            clip = 2.5
            topology = "exponential"

            [membership]
            profile = "fast"
            probe_interval_ms = 500
            probe_timeout_ms = 200
            sync_interval_ms = 10000
            suspicion_multiplier = 3
            seeds = ["127.0.0.1:7002", "host.example:7003"]
            fetch_model = true

            [faults]
            drop = 0.05
            drop_in = 0.01
            duplicate = 0.02
            delay_min_ms = 1
            delay_max_ms = 5
            blocked = ["\(b)"]

            """
        let csv = minimal + """
            [data]
            source = "csv:data/train.csv"
            classes = 3
            partition = "iid"

            [gossip]
            topology = "ring"
            weights = "max-degree"

            """
        return [("minimal.toml", Array(minimal.utf8)), ("full.toml", Array(full.utf8)), ("csv.toml", Array(csv.utf8))]
    } valid: { bytes in
        (try? PeerConfig.parse(String(decoding: bytes, as: UTF8.self), file: file)) != nil
    }
    return 0
}
