import ChorusAveraging
import ChorusCrypto
import ChorusLearning
import ChorusRuns
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A network of real peer processes on 127.0.0.1 with fresh keys in a temporary directory:
/// what `chorus demo` and the integration tests run.
public final class LocalNetwork: @unchecked Sendable {
    // @unchecked: driven from one task; `processes` is guarded by `lock` for the signal handler.
    public struct Options: Sendable {
        public var peers = 8
        public var model: ModelSpec = .softmax
        public var partition: PartitionScheme = .iid
        public var seed: UInt64 = 1
        public var topology: Topology = .exponential
        public var averaging = AveragingSettings()
        /// Average only: no training (steps_per_round 0), each peer from its own random values
        /// (`--task average`).
        public var averageOnly = false
        public var gossipIntervalMs = 100
        public var stepsPerRound = 5
        public var learningRate: Double?
        public var cosineSteps = 0
        public var executable: String
        public var directory: String?
        public var membershipProfile = "lan"
        /// Seconds between checkpoints while training (the peer's default when nil).
        public var checkpointIntervalSeconds: Double?
        /// Hosts to spread the peers over, round-robin (empty: every peer on 127.0.0.1):
        /// namespaces here or other machines (`Host`).
        public var hosts: [Host] = []
        /// `gossip.max_datagram_size` of every peer (the peer's default when nil).
        public var maxDatagramSize: Int?
        /// Admission: a network authority in keys/authority certifies every peer (keys/NAME/
        /// certificate), and peers admit only certified identities (docs/security.md).
        public var admission = false
        /// `gossip.session_keys` on every peer (per-pair keys, docs/protocol.md).
        public var sessionKeys = true

        public init(executable: String) { self.executable = executable }
    }

    public struct Member: Sendable {
        /// p0, p1, … in start order (the names schedules use); joiners continue the numbering.
        public var name: String
        /// The data shard it trains on (see `ShardLedger`).
        public var shard: Int
        public var id: PeerID
        public var configPath: String
        public var udp: HostPort
        public var admin: HostPort
        public var logPath: String
        /// Its admin token (keys/NAME/admin.token), for the admin routes that need one.
        public var adminToken: String
        /// The host it runs on (nil: this machine, loopback).
        public var host: Host?
    }

    public let options: Options
    public let directory: String
    public let networkKeyPath: String
    /// The network authority (with `Options.admission`): authority.secret and authority.public.
    public var authorityPath: String { directory + "/keys/authority" }
    public private(set) var members: [Member] = []
    /// Who holds which data shard: joiners take the shards of departed peers.
    public private(set) var shards: ShardLedger
    private var departed: Set<Int> = []
    private let lock = NSLock()
    private var processes: [Int: Process] = [:]
    /// Hosts whose run directory holds this binary already, and whose directory exists.
    private var prepared: Set<String> = []

    public init(options: Options) throws {
        self.options = options
        if let dir = options.directory {
            directory = dir
        } else {
            directory = NSTemporaryDirectory() + "chorus-demo-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        }
        try FileManager.default.createDirectory(atPath: directory + "/keys", withIntermediateDirectories: true)
        networkKeyPath = directory + "/keys/network.key"
        shards = ShardLedger(startingPeers: max(1, options.peers))
        try KeyFiles.writeNetworkKey(NetworkKey.generate(), to: networkKeyPath)
        if options.admission { try KeyFiles.writeAuthority(SigningKey.generate(), to: authorityPath) }
        for index in 0..<options.peers { members.append(try makeMember(index: index, shard: index)) }
        rewireAll()
    }

    /// Adds one more peer (keys, ports, a config without entry points) without starting it;
    /// start it with `--join` to bring it into the running network. It takes the data shard of a
    /// departed peer when one is free (`ShardLedger`). Returns its index.
    @discardableResult
    public func addMember() throws -> Int {
        let member = try makeMember(index: members.count, shard: shards.assignJoiner())
        members.append(member)
        try config(for: member, index: members.count - 1, entryPoints: [])
            .write(toFile: member.configPath, atomically: true, encoding: .utf8)
        return members.count - 1
    }

    /// Member `index` crashed or left for good (not a restart): its shard goes to the next joiner.
    public func departed(_ index: Int) {
        guard departed.insert(index).inserted else { return }
        shards.release(members[index].shard)
    }

    private func makeMember(index: Int, shard: Int) throws -> Member {
        let name = "p\(index)"
        let id = try KeyFiles.writeIdentity(SigningKey.generate(), to: "\(directory)/keys/\(name)")
        let token = try KeyFiles.writeAdminToken(to: "\(directory)/keys/\(name)")  // found beside the identity
        if options.admission {
            let authority = try KeyFiles.readAuthority(at: authorityPath)
            try KeyFiles.writeCertificate(Certificate(subject: id, authority: authority), authority: authority.peerID,
                                          to: "\(directory)/keys/\(name)/\(KeyFiles.certificateFileName)")
        }
        if !options.hosts.isEmpty {
            // Each host has its own ports; peer i uses 7100+i (UDP) and 8100+i (admin, with its token) on it.
            let host = options.hosts[index % options.hosts.count]
            return Member(
                name: name, shard: shard, id: id, configPath: "\(directory)/\(name).toml",
                udp: HostPort(host: host.address, port: 7100 + index), admin: HostPort(host: host.address, port: 8100 + index),
                logPath: "\(directory)/\(name).log", adminToken: token, host: host)
        }
        return Member(
            name: name, shard: shard, id: id, configPath: "\(directory)/\(name).toml",
            udp: HostPort(host: "127.0.0.1", port: try FreePort.udp()),
            admin: HostPort(host: "127.0.0.1", port: try FreePort.tcp()),
            logPath: "\(directory)/\(name).log", adminToken: token)
    }

    /// Writes every config. Each peer knows the first two peers as entry points (their ids and
    /// addresses); who its neighbours are then follows the live membership and the topology.
    public func rewireAll() {
        for index in members.indices {
            let entries = members.prefix(2).filter { $0.id != members[index].id }
            try? config(for: members[index], index: index, entryPoints: Array(entries))
                .write(toFile: members[index].configPath, atomically: true, encoding: .utf8)
        }
    }

    /// Rewrites member `index`'s configuration with these members as its entry points (e.g. live
    /// ones before it restarts; its first entry points may be gone).
    public func rewire(_ index: Int, entryPoints: [Int]) {
        let entries = entryPoints.filter { $0 != index }.map { members[$0] }
        try? config(for: members[index], index: index, entryPoints: entries)
            .write(toFile: members[index].configPath, atomically: true, encoding: .utf8)
    }

    /// Member `index`'s `learning.seed` (batch order; with `averageOnly`, its random start).
    public func learningSeed(of index: Int) -> UInt64 { options.seed &* 1000 &+ UInt64(index) }

    func config(for member: Member, index: Int, entryPoints: [Member]) -> String {
        var lines = [
            "# Generated by chorus demo.",
            "[peer]",
            "bind = \"\(member.udp)\"",
            "identity = \"keys/\(member.name)\"",
            "network_key = \"keys/network.key\"",
            "admin = \"\(member.admin)\"",
            "checkpoint = \"state/\(member.name).checkpoint\"",
        ] + (options.admission ? ["authority = \"keys/authority/\(KeyFiles.authorityPublicFileName)\"",
                                  "certificate = \"keys/\(member.name)/\(KeyFiles.certificateFileName)\""] : []) + (options.checkpointIntervalSeconds.map { ["checkpoint_interval_s = \($0)"] } ?? []) + [
            "",
            "[model]",
            "kind = \"\(options.model.description)\"",
        ] + (options.averageOnly ? ["start = \"random\""] : []) + [
            "",
            "[data]",
            "partition = \"\(options.partition.description)\"",
            "shards = \(shards.shards)",
            "shard = \(member.shard)",
            "seed = \(options.seed)",
            "",
            "[learning]",
            "steps_per_round = \(options.averageOnly ? 0 : options.stepsPerRound)",
            "cosine_steps = \(options.cosineSteps)",
            "seed = \(learningSeed(of: index))",
        ]
        if let lr = options.learningRate { lines.append("learning_rate = \(lr)") }
        lines += ["", "[gossip]", "interval_ms = \(options.gossipIntervalMs)", "topology = \"\(options.topology)\"",
                  "mixing = \"\(options.averaging.mixing)\"", "weights = \"\(options.averaging.weights)\""]
            + (options.averaging.clipFactor.map { ["clip = \($0)"] } ?? [])
            + (options.maxDatagramSize.map { ["max_datagram_size = \($0)"] } ?? [])
            + (options.sessionKeys ? [] : ["session_keys = false"])
        if options.averaging.float64Values || options.averageOnly { lines.append("float64 = true") }
        lines += ["", "[membership]", "profile = \"\(options.membershipProfile)\"", ""]
        for n in entryPoints {
            lines += ["[[neighbours]]", "id = \"\(n.id)\"", "address = \"\(n.udp)\"", ""]
        }
        return lines.joined(separator: "\n")
    }

    // MARK: Processes

    public func start(_ index: Int, extraArguments: [String] = []) throws {
        let member = members[index]
        let process = Process()
        let arguments = ["peer", "--config", member.configPath, "--exit-with-parent"] + extraArguments
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        if let host = member.host, let remote = host.runDirectory(runName) {
            // Another machine: its files go there first; the shell records the peer's pid (for
            // signals) and execs it, so its output comes back here as the shell's.
            try copyFiles(of: index, to: host)
            let binary = host.binary ?? remote + "/chorus"
            let command = "cd \(shellQuoted(remote)) && echo $$ > \(member.name).pid && exec \(shellQuoted(binary)) peer --config \(member.name).toml --exit-with-parent"
                + extraArguments.map { " " + shellQuoted($0) }.joined()
            process.arguments = host.argv(command)
        } else if let host = member.host {
            // A namespace here (`ip netns exec`): it execs the peer, same pid, same parent.
            process.arguments = host.execArgv([options.executable] + arguments)
        } else {
            process.executableURL = URL(fileURLWithPath: options.executable)
            process.arguments = arguments
        }
        _ = FileManager.default.createFile(atPath: member.logPath, contents: nil)
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: member.logPath))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        process.standardInput = FileHandle.nullDevice
        try process.run()
        lock.withLock { processes[index] = process }
    }

    /// The run's name, also its directory's name on other machines.
    private var runName: String { (directory as NSString).lastPathComponent }

    /// Checks every other machine before anything starts: creates the run's directory, copies
    /// this binary or checks the one there speaks the same protocol, and measures its clock.
    public func prepareHosts() throws -> [HostReport] {
        var reports: [HostReport] = []
        let mine = try Host.execute([options.executable, "--version"], timeout: 30).output
        for host in options.hosts where host.isRemote {
            let remote = host.runDirectory(runName)!
            if !prepared.contains(host.name) {
                let made = try host.run("mkdir -p \(shellQuoted(remote)) && chmod 700 \(shellQuoted(remote))")
                guard made.status == 0 else { throw StartupError("host \(host.name): cannot create \(remote) through `\(host.shell)`: \(made.output)") }
                if host.binary == nil {
                    let executable = URL(fileURLWithPath: options.executable).resolvingSymlinksInPath()
                    try send(["-C", executable.deletingLastPathComponent().path, "--transform", "s,.*,chorus,", executable.lastPathComponent], to: host)
                }
                prepared.insert(host.name)
            }
            let binary = host.binary ?? remote + "/chorus"
            let theirs = try host.run("\(shellQuoted(binary)) --version")
            guard theirs.status == 0, theirs.output == mine else {
                throw StartupError("host \(host.name): \(binary) \(theirs.status == 0 ? "is \"\(theirs.output)\"" : "does not run (\(theirs.output))"), "
                                   + "this is \"\(mine)\": install the same release there (scripts/install.sh), or remove `binary` from the hosts file to copy this one")
            }
            // The clock: a few round trips, the one with the least delay (as NTP filters).
            var best: HostReport?
            for _ in 0..<3 {
                let sent = Date().timeIntervalSince1970
                let said = try host.run("date +%s.%N")
                let back = Date().timeIntervalSince1970
                guard said.status == 0, let clock = Double(said.output) else { break }
                let report = HostReport(name: host.name, address: host.address, clockOffset: clock - (sent + back) / 2, roundTrip: back - sent)
                if best == nil || report.roundTrip < best!.roundTrip { best = report }
            }
            if let best { reports.append(best) }
        }
        return reports
    }

    /// Copies member `index`'s configuration, keys and the network key into its host's run
    /// directory, in the layout they have here (the configuration's paths are relative to it).
    private func copyFiles(of index: Int, to host: Host) throws {
        if !prepared.contains(host.name) { _ = try prepareHosts() }
        let name = members[index].name
        try send(["-C", directory, "\(name).toml", "keys/\(name)", "keys/network.key"]
                 + (options.admission ? ["keys/authority/\(KeyFiles.authorityPublicFileName)"] : []), to: host)
    }

    /// Packs files with tar (these `tar -c` arguments) and unpacks them in `host`'s run
    /// directory through its shell: one command, any size, modes kept (secrets stay 0600).
    private func send(_ tarArguments: [String], to host: Host) throws {
        let remote = host.runDirectory(runName)!
        let archive = NSTemporaryDirectory() + "chorus-send-\(getpid())-\(UInt64.random(in: 0...UInt64.max)).tar"
        defer { try? FileManager.default.removeItem(atPath: archive) }
        let packed = try Host.execute(["tar", "-cf", archive] + tarArguments, timeout: 120)
        guard packed.status == 0, let data = FileManager.default.contents(atPath: archive) else {
            throw StartupError("cannot pack \(tarArguments.suffix(from: 2).joined(separator: " ")) for \(host.name): \(packed.output)")
        }
        let result = try host.run("tar -C \(shellQuoted(remote)) -xf -", input: data, timeout: 300)
        guard result.status == 0 else { throw StartupError("host \(host.name): unpacking into \(remote) through `\(host.shell)` failed: \(result.output)") }
    }

    /// Sends `signal` to member `index`'s process, wherever it runs.
    public func signal(_ index: Int, _ signal: Int32) {
        guard let process = lock.withLock({ processes[index] }), process.isRunning else { return }
        if let host = members[index].host, let remote = host.runDirectory(runName) {
            _ = try? host.run("kill -\(signal) \"$(cat \(shellQuoted(remote + "/" + members[index].name + ".pid")))\"", timeout: 10)
        } else {
            kill(process.processIdentifier, signal)
        }
    }

    public func isRunning(_ index: Int) -> Bool {
        lock.withLock { processes[index]?.isRunning ?? false }
    }

    /// How member `index`'s last process ended: its exit status, or the signal that killed it
    /// (nil while it runs or if it never started).
    public func termination(_ index: Int) -> (status: Int32, bySignal: Bool)? {
        lock.withLock {
            guard let process = processes[index], !process.isRunning else { return nil }
            return (process.terminationStatus, process.terminationReason == .uncaughtSignal)
        }
    }

    public func pid(_ index: Int) -> Int32? {
        lock.withLock { processes[index]?.processIdentifier }
    }

    /// Sends `signal` and waits up to `timeout` seconds for the process to exit; returns its exit status.
    @discardableResult
    public func stop(_ index: Int, signal: Int32 = SIGTERM, timeout: Double = 5) -> Int32? {
        guard let process = lock.withLock({ processes[index] }) else { return nil }
        self.signal(index, signal)
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { usleep(20_000) }
        if process.isRunning {
            self.signal(index, SIGKILL)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        lock.withLock { processes[index] = nil }
        return process.terminationStatus
    }

    /// Stops every process (SIGTERM, then SIGKILL after the timeout).
    public func stopAll(timeout: Double = 5) {
        let running = lock.withLock { Array(processes.keys) }.sorted()
        for index in running { signal(index, SIGTERM) }
        for index in running { stop(index, timeout: timeout) }
    }

    /// Kills every peer immediately, wherever it runs (on other machines through their shell);
    /// safe to call from a signal handler's queue.
    public func killAll() {
        let running = lock.withLock { processes.filter { $0.value.isRunning } }
        for (index, process) in running.sorted(by: { $0.key < $1.key }) {
            signal(index, SIGKILL)
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        }
    }

    /// Removes the run's directory here and on every other machine.
    public func removeDirectory() {
        try? FileManager.default.removeItem(atPath: directory)
        for host in options.hosts where prepared.contains(host.name) {
            if let remote = host.runDirectory(runName) { _ = try? host.run("rm -rf \(shellQuoted(remote))", timeout: 30) }
        }
        prepared = []
    }

    /// Stops every process and removes the directory: the end of a test or a throwaway run.
    public func discard() {
        stopAll()
        removeDirectory()
    }

    /// Waits until every listed member answers /status; throws with the last log lines otherwise.
    /// `cancelled` is asked between polls (Ctrl-C during start-up).
    public func waitUntilReady(_ indices: [Int], timeout: Double = 30, cancelled: () -> Bool = { false }) throws {
        let deadline = Date().addingTimeInterval(timeout)
        var pending = Set(indices)
        while !pending.isEmpty {
            if cancelled() { throw StartupError("interrupted while the peers were starting") }
            for index in pending where (try? AdminClient.status(at: members[index].admin, timeout: 0.5)) != nil {
                pending.remove(index)
            }
            if pending.isEmpty { break }
            for index in pending where !isRunning(index) {
                throw StartupError("\(members[index].name) exited during start-up:\n\(tail(index))")
            }
            if Date() > deadline {
                let index = pending.first!
                throw StartupError("\(members[index].name) did not answer on \(members[index].admin) within \(Int(timeout)) s:\n\(tail(index))")
            }
            usleep(100_000)
        }
    }

    public func tail(_ index: Int, lines: Int = 10) -> String {
        let text = (try? String(contentsOfFile: members[index].logPath, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").suffix(lines).joined(separator: "\n")
    }
}

/// Asks the kernel for a free port by binding port 0. Another process could take it before the
/// peer binds it; peers then fail with a clear "address already in use" naming the field.
enum FreePort {
    static func udp() throws -> Int { try find(type: Int32(SOCK_DGRAM.rawValue)) }
    static func tcp() throws -> Int { try find(type: Int32(SOCK_STREAM.rawValue)) }

    private static func find(type: Int32) throws -> Int {
        let fd = socket(AF_INET, type, 0)
        guard fd >= 0 else { throw StartupError("cannot create a socket to find a free port") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
        guard bound == 0 else { throw StartupError("cannot bind 127.0.0.1:0 to find a free port") }
        _ = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
        return Int(UInt16(bigEndian: address.sin_port))
    }
}
