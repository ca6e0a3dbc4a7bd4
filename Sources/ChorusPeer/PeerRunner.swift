import ChorusCrypto
import ChorusLearning
import ChorusMembership
import Foundation
import Logging
import NIOCore
import NIOConcurrencyHelpers
import NIOHTTP1
import NIOPosix

/// Why a peer could not start; one line naming the file and field.
public struct StartupError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Starts a peer process from its configuration, runs it until SIGINT/SIGTERM, then shuts it
/// down cleanly and saves its checkpoint.
public enum PeerRunner {
    /// Loads everything that can fail before any socket is opened, so mistakes are reported early.
    static func prepare(config: PeerConfig) throws -> (SigningKey, NetworkKeyring, Learner, String?) {
        let identity: SigningKey
        do { identity = try KeyFiles.readIdentity(at: config.identityPath) } catch {
            throw StartupError("\(config.file): field 'peer.identity': \(error.description)")
        }
        let network = try keyring(of: config)
        if config.neighbours.contains(where: { $0.id == identity.peerID }) {
            throw StartupError("\(config.file): field 'neighbours': lists this peer's own id \(identity.peerID.short)…; remove it")
        }
        var learner = try config.makeLearner()
        do {
            if let checkpoint = try Checkpoint.load(from: config.checkpointPath) {
                guard checkpoint.model == config.model.description else {
                    throw StartupError("checkpoint is for model \(checkpoint.model), the configuration says \(config.model.description)")
                }
                do { try learner.resume(parameters: checkpoint.parameters, steps: checkpoint.steps, epoch: checkpoint.epoch) } catch {
                    throw StartupError("checkpoint does not fit the model: \(error)")
                }
            }
        } catch let error as StartupError {
            throw StartupError("\(config.checkpointPath): \(error.description) (field 'peer.checkpoint' in \(config.file); move the file away to start fresh)")
        } catch {
            throw StartupError("\(config.checkpointPath): cannot use checkpoint: \(error) (field 'peer.checkpoint' in \(config.file); move the file away to start fresh)")
        }
        var adminToken: String?
        if let path = config.adminTokenPath {
            do { adminToken = try KeyFiles.readAdminToken(at: path) } catch {
                throw StartupError("\(config.file): field 'peer.admin_token': \(error.description)")
            }
        }
        return (identity, network, learner, adminToken)
    }

    /// The authority and certificate a configuration names (nil without `peer.authority`), checked:
    /// the certificate must be for this identity and signed by that authority.
    static func admission(of config: PeerConfig, identity: PeerID) throws -> Admission? {
        guard let authorityPath = config.authorityPath, let certificatePath = config.certificatePath else { return nil }
        let authority: PeerID
        do { authority = try KeyFiles.readPublicKey(at: authorityPath, defaultFile: KeyFiles.authorityPublicFileName) } catch {
            throw StartupError("\(config.file): field 'peer.authority': \(error.description)")
        }
        let certificate: Certificate
        do { certificate = try KeyFiles.readCertificate(at: certificatePath) } catch {
            throw StartupError("\(config.file): field 'peer.certificate': \(error.description)")
        }
        guard certificate.subject == identity else {
            throw StartupError("\(config.file): field 'peer.certificate': \(certificatePath) certifies peer \(certificate.subject.short)…, not this identity \(identity.short)… (chorus certify --authority DIR --peer \(config.identityPath))")
        }
        guard certificate.isValid(authority: authority) else {
            throw StartupError("\(config.file): field 'peer.certificate': \(certificatePath) is not signed by the authority in peer.authority (\(authority.short)…): certify this identity with that authority (chorus certify)")
        }
        return Admission(authority: authority, certificate: certificate)
    }

    /// The revocations this peer learnt in earlier runs.
    static func keptRevocations(of config: PeerConfig) throws -> [Claim] {
        do { return try RevocationFile.load(from: revocationsPath(of: config)) } catch {
            throw StartupError("\(error.description) (kept by this peer beside peer.checkpoint in \(config.file); move it away to forget the revocations, which the network then tells again)")
        }
    }

    /// Where a peer keeps the revocations it learnt, beside its checkpoint.
    static func revocationsPath(of config: PeerConfig) -> String { config.checkpointPath + ".revocations" }

    /// The network keys a configuration names: `network_key` seals and opens, each of
    /// `accepted_network_keys` only opens (a key rotation's middle steps).
    static func keyring(of config: PeerConfig) throws -> NetworkKeyring {
        var keys: [NetworkKey] = []
        for (index, path) in ([config.networkKeyPath] + config.acceptedNetworkKeyPaths).enumerated() {
            do { keys.append(try KeyFiles.readNetworkKey(at: path)) } catch {
                let field = index == 0 ? "peer.network_key" : "peer.accepted_network_keys[\(index - 1)]"
                throw StartupError("\(config.file): field '\(field)': \(error.description)")
            }
        }
        return NetworkKeyring(keys)
    }

    /// Resolves every address the configuration names. Other peers are told `advertise`: a
    /// name that does not resolve here would spread through the network and get this peer
    /// declared failed.
    static func resolveAddresses(_ config: PeerConfig) throws -> (neighbours: [PeerID: SocketAddress], seeds: [SocketAddress]) {
        do { _ = try SocketAddress.makeAddressResolvingHost(config.advertise.host, port: config.advertise.port) } catch {
            throw StartupError("\(config.file): field 'peer.advertise': cannot resolve \(config.advertise.host): \(error); give the address other peers reach this one at")
        }
        var known: [PeerID: SocketAddress] = [:]
        for (index, n) in config.neighbours.enumerated() {
            do { known[n.id] = try SocketAddress.makeAddressResolvingHost(n.address.host, port: n.address.port) } catch {
                throw StartupError("\(config.file): field 'neighbours[\(index)].address': cannot resolve \(n.address): \(error)")
            }
        }
        var seeds: [SocketAddress] = []
        for (index, seed) in config.seeds.enumerated() {
            do { seeds.append(try SocketAddress.makeAddressResolvingHost(seed.host, port: seed.port)) } catch {
                throw StartupError("\(config.file): field 'membership.seeds[\(index)]': cannot resolve \(seed): \(error)")
            }
        }
        return (known, seeds)
    }

    /// What `chorus validate` reports about a configuration that would start.
    public struct Check: Sendable {
        public var peerID: PeerID
        public var parameterCount: Int
        /// Steps of the checkpoint it would resume from, nil when it starts fresh.
        public var resumesAt: UInt64?
        public var hasAdminToken: Bool
        /// The network authority it admits identities by (nil: admission is off).
        public var authority: PeerID?
    }

    /// Everything a start checks before it opens a socket or writes a file: the keys, token,
    /// model, data shard and checkpoint, and every address resolving. Writes nothing.
    public static func check(config: PeerConfig) throws -> Check {
        let (identity, _, learner, token) = try prepare(config: config)
        let admission = try admission(of: config, identity: identity.peerID)
        _ = try keptRevocations(of: config)
        _ = try resolveAddresses(config)
        let resumes = FileManager.default.fileExists(atPath: config.checkpointPath) ? learner.steps : nil
        return Check(peerID: identity.peerID, parameterCount: learner.parameterCount, resumesAt: resumes, hasAdminToken: token != nil,
                     authority: admission?.authority)
    }

    /// Runs until SIGINT/SIGTERM or `POST /leave`, then leaves gracefully (announces "left",
    /// hands its parameters to its neighbours), saves the checkpoint and returns within ~2 s.
    /// `log` gets the peer's id as metadata here.
    public static func run(config: PeerConfig, exitWithParent: Bool = false, log base: Logger) async throws {
        let (identity, network, learner, adminToken) = try prepare(config: config)
        let admission = try admission(of: config, identity: identity.peerID)
        let revocations = try keptRevocations(of: config)
        let log = { var log = base; log[metadataKey: "peer"] = "\(identity.peerID.short)"; return log }()
        for path in [config.checkpointPath, config.checkpointPath + ".epoch"] {
            for stale in AtomicFile.removeStaleTemporaries(of: path) { log.notice("removed a file left by a peer killed while writing", metadata: ["path": "\(stale)"]) }
        }
        let bootEpoch: UInt64
        do { bootEpoch = try BootEpoch.next(stateFile: config.checkpointPath + ".epoch") } catch let error as StartupError {
            throw StartupError("\(error.description) (field 'peer.checkpoint' in \(config.file))")
        } catch {
            throw StartupError("\(config.file): field 'peer.checkpoint': cannot write \(config.checkpointPath).epoch: \(error)")
        }
        let clock = Date().timeIntervalSince1970
        if Double(bootEpoch) > clock + 86_400 {
            log.warning("boot epoch \(bootEpoch) (from \(config.checkpointPath).epoch) is more than a day ahead of this machine's clock (\(UInt64(clock))): other peers reject its claims as absurd until their clocks catch up; fix the clock, or stop the peer and move that file away")
        }
        let (knownPeers, seedAddresses) = try resolveAddresses(config)

        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let loop = group.next()
        let node = try await loop.submit {
            NIOLoopBound(PeerNode(config: config, identity: identity, keyring: network, bootEpoch: bootEpoch,
                                  learner: learner, loop: loop, log: log, admission: admission, revocations: revocations), eventLoop: loop)
        }.get()
        let shutdown = ShutdownTrigger()
        let transport: UDPTransport
        do {
            transport = try await retryingWhileInUse {
                try await UDPTransport.bind(host: config.bind.host, port: config.bind.port, maxDatagramSize: config.wire.maxDatagramSize,
                                            on: loop) { bytes, address in
                    node.value.receive(bytes, from: address)
                }
            }
        } catch {
            try? await group.shutdownGracefully()
            throw StartupError("\(config.file): field 'peer.bind': cannot bind UDP \(config.bind): \(describe(error))")
        }
        if let granted = await transport.receiveBufferBytes(), granted < 32 * config.wire.maxDatagramSize {
            log.warning("the UDP receive buffer holds \(granted) bytes, fewer than 32 datagrams of \(config.wire.maxDatagramSize) bytes (gossip.max_datagram_size in \(config.file)): bursts will be lost; raise net.core.rmem_max (sysctl) or lower max_datagram_size")
        }
        let admin: Channel
        do {
            admin = try await retryingWhileInUse {
                try await AdminServer.bind(host: config.admin.host, port: config.admin.port, group: group) { request in
                    loop.submit { route(node.value, request, token: adminToken, shutdown: shutdown) }
                }
            }
        } catch {
            await transport.close()
            try? await group.shutdownGracefully()
            throw StartupError("\(config.file): field 'peer.admin': cannot listen on \(config.admin): \(describe(error))")
        }
        try await loop.submit {
            node.value.onFatal = { shutdown.fail($0) }
            node.value.start(transport: transport, seeds: seedAddresses, knownPeers: knownPeers)
        }.get()
        let udpPort = transport.localAddress?.port ?? config.bind.port
        let adminPort = admin.localAddress?.port ?? config.admin.port
        log.notice("listening", metadata: [
            "id": "\(identity.peerID)", "udp": "\(config.bind.host):\(udpPort)", "advertise": "\(config.advertise)",
            "admin": "http://\(config.admin.host):\(adminPort)", "epoch": "\(bootEpoch)", "model": "\(config.model.description)",
            "step": "\(learner.steps)", "joining": "\(config.fetchModel)", "version": "\(ChorusVersion.release)",
        ])

        let reason = await shutdown.wait(exitWithParent: exitWithParent)
        let fatal = shutdown.fatal
        if fatal == nil {
            log.notice("leaving", metadata: ["reason": "\(reason)"])
            // Announce "left" and linger (still answering) until the instance says the news has spread.
            await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                loop.execute { node.value.leave { done.resume() } }
            }
        }  // else no leave: the identity's "left" would be about the other, later process
        let (checkpoint, writer) = try await loop.submit { node.value.stop() }.get()
        var saveError: Error?
        if fatal == nil {
            do { try writer.saveNow(checkpoint) } catch { saveError = error }
        }
        try? await admin.close()
        await transport.close()
        try? await group.shutdownGracefully()
        if let fatal { throw StartupError(fatal) }
        if let saveError {
            throw StartupError("\(config.checkpointPath): could not save checkpoint: \(saveError)")
        }
        log.notice("left; checkpoint saved", metadata: ["path": "\(config.checkpointPath)", "step": "\(checkpoint.steps)"])
    }

    /// Routes that change the peer or reveal its model need the admin token; the rest are read-only.
    static let privileged: Set<String> = ["POST /leave", "GET /parameters", "POST /faults", "POST /keys/reload", "POST /revocations"]

    static func route(_ node: PeerNode, _ request: AdminRequest, token: String?, shutdown: ShutdownTrigger) -> AdminResponse {
        let (method, path, body) = (request.method, request.path, request.body)
        if privileged.contains("\(method) \(path)") {
            guard let token else {
                return .text("\(method) \(path) needs the admin token, and this peer has none: create one (chorus keygen --admin-token --out \(node.config.identityPath)) and restart the peer\n", status: .forbidden)
            }
            guard let bearer = request.bearer, constantTimeEquals(bearer, token) else {
                return .text("\(method) \(path) needs the admin token: Authorization: Bearer <the contents of \(node.config.adminTokenPath ?? "admin.token")> (chorus … --admin-token FILE)\n", status: .unauthorized)
            }
        }
        switch (method, path) {
        case (.GET, "/status"):
            return json(node.status())
        case (.GET, "/faults"):
            return json(node.faults)
        case (.POST, "/faults"):
            switch FaultSettings.parse(json: body) {
            case let .success(faults):
                node.setFaults(faults)
                return json(faults)
            case let .failure(error):
                return .text("POST /faults: \(error)\n", status: .badRequest)
            }
        case (.GET, "/keys"):
            return json(NetworkKeyIDs(node.keyring))
        case (.POST, "/keys/reload"):
            // The configuration file is the truth: what it names now is what a restart would use.
            do {
                let config = try PeerConfig.load(path: node.config.file)
                node.setKeyring(try keyring(of: config))
                return json(NetworkKeyIDs(node.keyring))
            } catch {
                return .text("POST /keys/reload: \(error)\n", status: .badRequest)
            }
        case (.POST, "/revocations"):
            // Revocations signed by the network authority (chorus revoke): applied here and gossiped on.
            do {
                let claims = try RevocationFile.parse(String(decoding: body, as: UTF8.self), what: "POST /revocations")
                guard !claims.isEmpty else { return .text("POST /revocations: no revocation in the body\n", status: .badRequest) }
                for claim in claims {
                    if let refused = node.revoke(claim) {
                        return .text("POST /revocations: revocation of \(claim.subject.short)… refused: \(refused.rawValue)\(refused == .notFromAuthority ? " (not signed by this peer's peer.authority, or it has none)" : "")\n", status: .badRequest)
                    }
                }
                return .text("revoked \(claims.count): \(claims.map { $0.subject.short }.joined(separator: " "))\n")
            } catch {
                return .text("\(error)\n", status: .badRequest)
            }
        case (.GET, "/metrics"):
            return AdminResponse(contentType: "text/plain; version=0.0.4", body: node.metricsText())
        case (.GET, "/parameters"):
            return AdminResponse(contentType: "application/octet-stream", body: node.parameterBytes())
        case (.POST, "/leave"):
            shutdown.fire("leave requested on the admin endpoint")
            return .text("leaving\n")
        case (.GET, "/"):
            return .text("chorus peer \(node.identity.peerID)\nGET /status  GET /metrics  GET /faults  GET /keys; with the admin token: GET /parameters  POST /faults  POST /keys/reload  POST /revocations  POST /leave\n")
        default:
            return .text("not found: \(method) \(path)\n", status: .notFound)
        }
    }

    /// Compares without an early exit, so the time taken says nothing about the token.
    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        var difference: UInt8 = 0
        for i in x.indices { difference |= x[i] ^ y[i] }
        return difference == 0
    }

    private static func json(_ value: some Encodable) -> AdminResponse {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        encoder.nonConformingFloatEncodingStrategy = PeerStatus.floatEncoding
        let body = (try? encoder.encode(value)).map { Array($0) } ?? Array("{}".utf8)
        return AdminResponse(contentType: "application/json", body: body)
    }

    /// Binds, retrying for up to `patience` seconds while the address is in use: right after a
    /// `kill -9`, the old process may not have released its ports yet. Other errors fail at once.
    static func retryingWhileInUse<T>(_ bind: () async throws -> T) async throws -> T {
        let deadline = Date().addingTimeInterval(bindPatience)
        while true {
            do { return try await bind() } catch let error as IOError where error.errnoCode == EADDRINUSE && Date() < deadline {
                try await Task.sleep(nanoseconds: 100_000_000)
            }
        }
    }

    static let bindPatience = 3.0

    static func describe(_ error: Error) -> String {
        if let io = error as? IOError {
            switch io.errnoCode {
            case EADDRINUSE: return "address already in use, still after \(Int(bindPatience)) s (another process has this port; pick another port)"
            case EADDRNOTAVAIL: return "address not available on this machine"
            case EACCES: return "permission denied (ports below 1024 need privileges)"
            default: return io.description
            }
        }
        return "\(error)"
    }
}

public typealias HTTPMethodName = NIOHTTP1.HTTPMethod

/// Ends a peer's run: SIGINT, SIGTERM, `POST /leave`, or (with `exitWithParent`) the parent
/// process going away, so peers started by `chorus demo` never outlive it. SIGPIPE is ignored.
final class ShutdownTrigger: Sendable {
    private let continuation = NIOLockedValueBox<CheckedContinuation<String, Never>?>(nil)
    private let early = NIOLockedValueBox<String?>(nil)

    /// Why the peer must stop without leaving, if it must.
    var fatal: String? { fatalMessage.withLockedValue { $0 } }
    private let fatalMessage = NIOLockedValueBox<String?>(nil)

    /// Stops the peer at once, without a graceful leave; `run` then throws `message`.
    func fail(_ message: String) {
        fatalMessage.withLockedValue { $0 = $0 ?? message }
        fire("stopping: \(message)")
    }

    func fire(_ reason: String) {
        let c: CheckedContinuation<String, Never>? = continuation.withLockedValue { c in defer { c = nil }; return c }
        if let c {
            c.resume(returning: reason)
        } else {
            early.withLockedValue { if $0 == nil { $0 = reason } }
        }
    }

    func wait(exitWithParent: Bool) async -> String {
        signal(SIGPIPE, SIG_IGN)
        let parent = getppid()
        let queue = DispatchQueue(label: "chorus.signals")
        var sources: [DispatchSourceProtocol] = []
        for (number, name) in [(SIGINT, "SIGINT"), (SIGTERM, "SIGTERM")] {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [self] in fire(name) }
            source.resume()
            sources.append(source)
        }
        if exitWithParent {
            let timer = DispatchSource.makeTimerSource(queue: queue)
            timer.schedule(deadline: .now() + 0.5, repeating: 0.5)
            timer.setEventHandler { [self] in if getppid() != parent { fire("parent process exited") } }
            timer.resume()
            sources.append(timer)
        }
        Self.keepAlive = sources
        return await withCheckedContinuation { (c: CheckedContinuation<String, Never>) in
            if let reason = early.withLockedValue({ $0 }) {
                c.resume(returning: reason)
            } else {
                continuation.withLockedValue { $0 = c }
                // A signal may have fired between the check and the store.
                if let reason = early.withLockedValue({ $0 }) { fire(reason) }
            }
        }
    }

    /// Dispatch sources stop when released; they live for the rest of the process.
    nonisolated(unsafe) private static var keepAlive: [DispatchSourceProtocol] = []
}
