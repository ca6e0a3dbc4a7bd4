import NIOConcurrencyHelpers
import NIOCore
import NIOHTTP1
import NIOPosix

/// A response of the admin endpoint.
public struct AdminResponse: Sendable {
    public var status: HTTPResponseStatus
    public var contentType: String
    public var body: [UInt8]

    public init(status: HTTPResponseStatus = .ok, contentType: String, body: [UInt8]) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }

    public static func text(_ s: String, status: HTTPResponseStatus = .ok) -> AdminResponse {
        AdminResponse(status: status, contentType: "text/plain; charset=utf-8", body: Array(s.utf8))
    }
}

/// One request as the router sees it.
public struct AdminRequest: Sendable {
    public var method: HTTPMethod
    public var path: String
    public var body: [UInt8]
    /// The bearer token of an `Authorization: Bearer …` header, if any.
    public var bearer: String?
}

/// Routes a request → response (computed on the peer's event loop).
public typealias AdminRouter = @Sendable (AdminRequest) -> EventLoopFuture<AdminResponse>

/// What the admin server refuses before any route runs (docs/security.md, "Admin endpoint").
struct AdminGuard: Sendable {
    /// `Host` values accepted ("host:port"): the bound address and, on loopback, localhost names.
    /// Anything else is a DNS-rebinding page or a misdirected request.
    var hosts: Set<String>
    /// Seconds a connection may stay idle before it is closed.
    var idleTimeout: Int64 = 10
    /// Seconds from a connection's start (or its last answer) to a complete request: a client
    /// that sends a byte a second is closed at this deadline, however steadily it trickles.
    var requestTimeout: Int64 = 10
    /// Connections served at once. When all are taken, a new one takes the place of the one that
    /// has waited longest for its request to be complete (a slow sender), so `/status` stays
    /// answerable while someone holds every connection open; only when every connection is
    /// being answered is a new one closed at accept.
    var maxConnections = 32
    /// Request bodies are small JSON documents (fault settings); anything larger is refused.
    static let maxBody = 64 * 1024

    /// Bound to every interface (0.0.0.0, ::): the machine's names are not known, so any Host
    /// naming the bound port is accepted (such a bind needs the admin token anyway).
    var anyHostOnPort: Int?

    init(hosts: Set<String>, anyHostOnPort: Int? = nil) {
        self.hosts = hosts
        self.anyHostOnPort = anyHostOnPort
    }

    static func forBound(host: String, port: Int) -> AdminGuard {
        var names: Set<String> = [HostPort(host: host, port: port).description]
        if HostPort(host: host, port: port).isLoopback {
            names.formUnion(["127.0.0.1:\(port)", "localhost:\(port)", "[::1]:\(port)"])
        }
        return AdminGuard(hosts: names, anyHostOnPort: host == "0.0.0.0" || host == "::" ? port : nil)
    }

    /// Why the request is refused, or nil to route it.
    func refusal(_ head: HTTPRequestHead) -> String? {
        // Browsers send Origin on cross-site requests; the tools that use this endpoint never do.
        if let origin = head.headers.first(name: "Origin") { return "requests from web pages (Origin: \(origin)) are refused" }
        guard let host = head.headers.first(name: "Host") else { return "a Host header is required" }
        if let port = anyHostOnPort, host.hasSuffix(":\(port)") { return nil }
        guard hosts.contains(host.lowercased()) else { return "Host \(host) is not this endpoint (\(hosts.sorted().joined(separator: ", ")))" }
        return nil
    }
}

/// A minimal HTTP/1.1 server for /status, /metrics, /parameters, /faults and /leave.
final class AdminHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    // @unchecked: used only on its channel's event loop.
    private let router: AdminRouter
    private let guardian: AdminGuard
    private let connections: AdminConnections?
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    private var deadline: Scheduled<Void>?

    init(router: @escaping AdminRouter, guardian: AdminGuard, connections: AdminConnections? = nil) {
        self.router = router
        self.guardian = guardian
        self.connections = connections
    }

    func handlerAdded(context: ChannelHandlerContext) {
        if context.channel.isActive { awaitRequest(context: context) }
    }

    func channelActive(context: ChannelHandlerContext) {
        awaitRequest(context: context)
        context.fireChannelActive()
    }

    /// A complete request must arrive within `requestTimeout`, however it trickles in.
    private func awaitRequest(context: ChannelHandlerContext) {
        deadline?.cancel()
        let channel = context.channel
        connections?.awaiting(channel, since: NIODeadline.now())
        deadline = context.eventLoop.scheduleTask(in: .seconds(guardian.requestTimeout)) { channel.close(promise: nil) }
    }

    func channelInactive(context: ChannelHandlerContext) {
        deadline?.cancel()
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(head):
            self.head = head
            body = []
        case var .body(buffer):
            if body.count <= AdminGuard.maxBody {
                body += buffer.readBytes(length: min(buffer.readableBytes, AdminGuard.maxBody + 1 - body.count)) ?? []
            }
        case .end:
            guard let head else { return }
            self.head = nil
            deadline?.cancel()
            deadline = nil
            connections?.answering(context.channel)
            let request = AdminRequest(
                method: head.method, path: String(head.uri.split(separator: "?", maxSplits: 1).first ?? ""), body: body,
                bearer: head.headers.first(name: "Authorization").flatMap { $0.hasPrefix("Bearer ") ? String($0.dropFirst(7)) : nil })
            body = []
            let answer: EventLoopFuture<AdminResponse>
            if let refusal = guardian.refusal(head) {
                answer = context.eventLoop.makeSucceededFuture(.text("\(refusal)\n", status: .forbidden))
            } else if request.body.count > AdminGuard.maxBody {
                answer = context.eventLoop.makeSucceededFuture(.text("request body over \(AdminGuard.maxBody) bytes\n", status: .payloadTooLarge))
            } else {
                answer = router(request)
            }
            respond(answer, to: head, context: context)
        }
    }

    private func respond(_ answer: EventLoopFuture<AdminResponse>, to head: HTTPRequestHead, context: ChannelHandlerContext) {
        let keepAlive = head.isKeepAlive
        let version = head.version
        let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
        answer.hop(to: context.eventLoop).whenComplete { result in
            let context = loopBound.value
            let response: AdminResponse
            switch result {
            case let .success(r): response = r
            case let .failure(error): response = .text("internal error: \(error)\n", status: .internalServerError)
            }
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: response.contentType)
            headers.add(name: "Content-Length", value: String(response.body.count))
            headers.add(name: "Connection", value: keepAlive ? "keep-alive" : "close")
            context.write(self.wrapOutboundOut(.head(HTTPResponseHead(version: version, status: response.status, headers: headers))), promise: nil)
            context.write(self.wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: response.body)))), promise: nil)
            context.writeAndFlush(self.wrapOutboundOut(.end(nil))).whenComplete { _ in
                if keepAlive { self.awaitRequest(context: loopBound.value) } else { loopBound.value.close(promise: nil) }
            }
        }
    }

    /// Idle or half-sent connections are closed (one file descriptor each is not free).
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is IdleStateHandler.IdleStateEvent { context.close(promise: nil) } else { context.fireUserInboundEventTriggered(event) }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

/// The admin endpoint's open connections, and since when each has waited for a complete
/// request (nil while it is being answered): who gives way when every connection is taken.
final class AdminConnections: Sendable {
    private struct Open {
        var channel: Channel
        var awaitingSince: NIODeadline?
    }

    private let open = NIOLockedValueBox<[ObjectIdentifier: Open]>([:])

    var count: Int { open.withLockedValue { $0.count } }

    /// Admits `channel` when there is room, or when a connection still waiting for its request
    /// can give way (the one waiting longest is closed). False: every connection is being answered.
    func admit(_ channel: Channel, max: Int) -> Bool {
        let evicted: Channel? = open.withLockedValue { table in
            var victim: Channel?
            if table.count >= max {
                guard let (key, entry) = table.filter({ $0.value.awaitingSince != nil }).min(by: { $0.value.awaitingSince! < $1.value.awaitingSince! })
                else { return nil }
                table[key] = nil
                victim = entry.channel
            }
            table[ObjectIdentifier(channel)] = Open(channel: channel, awaitingSince: NIODeadline.now())
            return victim
        }
        guard open.withLockedValue({ $0[ObjectIdentifier(channel)] != nil }) else { return false }
        evicted?.close(promise: nil)
        channel.closeFuture.whenComplete { [weak self] _ in self?.open.withLockedValue { _ = $0.removeValue(forKey: ObjectIdentifier(channel)) } }
        return true
    }

    func awaiting(_ channel: Channel, since: NIODeadline) {
        open.withLockedValue { $0[ObjectIdentifier(channel)]?.awaitingSince = since }
    }

    func answering(_ channel: Channel) {
        open.withLockedValue { $0[ObjectIdentifier(channel)]?.awaitingSince = nil }
    }
}

enum AdminServer {
    static func bind(host: String, port: Int, group: EventLoopGroup, router: @escaping AdminRouter) async throws -> Channel {
        let connections = AdminConnections()
        // The Host check needs the port actually bound (port 0 picks one): filled in after bind.
        let guardian = NIOLockedValueBox(AdminGuard(hosts: []))
        let channel = try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                let rules = guardian.withLockedValue { $0 }
                guard connections.admit(channel, max: rules.maxConnections) else { return channel.close() }
                return channel.pipeline.addHandler(IdleStateHandler(readTimeout: .seconds(rules.idleTimeout))).flatMap {
                    channel.pipeline.configureHTTPServerPipeline()
                }.flatMap {
                    channel.pipeline.addHandler(AdminHTTPHandler(router: router, guardian: rules, connections: connections))
                }
            }
            .bind(host: host, port: port).get()
        let bound = channel.localAddress?.port ?? port
        guardian.withLockedValue { $0 = AdminGuard.forBound(host: host, port: bound) }
        return channel
    }
}
