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

/// Routes: method + path + body → response (computed on the peer's event loop).
public typealias AdminRouter = @Sendable (HTTPMethod, String, [UInt8]) -> EventLoopFuture<AdminResponse>

/// A minimal HTTP/1.1 server for /status, /metrics, /parameters, /faults and /leave.
final class AdminHTTPHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    // @unchecked: used only on its channel's event loop.
    private let router: AdminRouter
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []
    /// Request bodies are small JSON documents (fault settings); anything larger is refused.
    static let maxBody = 64 * 1024

    init(router: @escaping AdminRouter) {
        self.router = router
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case let .head(head):
            self.head = head
            body = []
        case var .body(buffer):
            if body.count <= Self.maxBody { body += buffer.readBytes(length: min(buffer.readableBytes, Self.maxBody + 1 - body.count)) ?? [] }
        case .end:
            guard let head else { return }
            self.head = nil
            let request = body
            body = []
            let path = String(head.uri.split(separator: "?", maxSplits: 1).first ?? "")
            let keepAlive = head.isKeepAlive
            let version = head.version
            let loopBound = NIOLoopBound(context, eventLoop: context.eventLoop)
            let answer = request.count > Self.maxBody
                ? context.eventLoop.makeSucceededFuture(AdminResponse.text("request body over \(Self.maxBody) bytes\n", status: .payloadTooLarge))
                : router(head.method, path, request)
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
                    if !keepAlive { loopBound.value.close(promise: nil) }
                }
            }
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}

enum AdminServer {
    static func bind(host: String, port: Int, group: EventLoopGroup, router: @escaping AdminRouter) async throws -> Channel {
        try await ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 64)
            .serverChannelOption(ChannelOptions.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.pipeline.configureHTTPServerPipeline().flatMap {
                    channel.pipeline.addHandler(AdminHTTPHandler(router: router))
                }
            }
            .bind(host: host, port: port).get()
    }
}
