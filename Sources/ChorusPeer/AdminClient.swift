import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix

/// A small blocking HTTP/1.1 client for a peer's admin endpoint (loopback by default), used by
/// the verbs (`chorus status`, `leave`, `faults`, …), the demo, experiments and the integration
/// tests. SwiftNIO's HTTP/1 codec parses the answer (Content-Length or chunked, whatever the
/// server chooses), with explicit timeouts and a bound on what is read. Call it from a plain
/// thread, never from an event loop (it waits).
public enum AdminClient {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]
    }

    /// Largest answer read: a model of a few million parameters (`GET /parameters`), with room.
    public static let maxBodyBytes = 256 << 20

    /// - Parameter token: the peer's admin token, for the routes that need it (`/parameters`, `POST /faults`, `/leave`).
    public static func request(_ method: String = "GET", _ path: String, body: [UInt8] = [], token: String? = nil,
                               at address: HostPort, timeout: Double = 2) throws(Failure) -> Response {
        let group = MultiThreadedEventLoopGroup.singleton
        let answer = group.next().makePromise(of: Response.self)
        let limit = TimeAmount.milliseconds(Int64(max(0.001, timeout) * 1000))
        let channel: Channel
        do {
            channel = try ClientBootstrap(group: group)
                .connectTimeout(limit)
                .channelInitializer { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try channel.pipeline.syncOperations.addHTTPClientHandlers()
                        try channel.pipeline.syncOperations.addHandler(ResponseCollector(answer: answer, limit: maxBodyBytes))
                    }
                }
                .connect(host: address.host, port: address.port).wait()
        } catch {
            answer.fail(error)
            throw Failure(description: "cannot connect to \(address): \(describe(error)) (is the peer running, and is this its admin address?)")
        }
        defer { channel.close(promise: nil) }
        var head = HTTPRequestHead(version: .http1_1, method: HTTPMethod(rawValue: method), uri: path)
        head.headers.add(name: "Host", value: address.description)
        head.headers.add(name: "Connection", value: "close")
        if let token { head.headers.add(name: "Authorization", value: "Bearer \(token)") }
        if !body.isEmpty { head.headers.add(name: "Content-Type", value: "application/json") }
        head.headers.add(name: "Content-Length", value: String(body.count))
        channel.write(HTTPClientRequestPart.head(head), promise: nil)
        if !body.isEmpty { channel.write(HTTPClientRequestPart.body(.byteBuffer(ByteBuffer(bytes: body))), promise: nil) }
        channel.writeAndFlush(HTTPClientRequestPart.end(nil), promise: nil)
        let timer = channel.eventLoop.scheduleTask(in: limit) { answer.fail(TimedOut()) }
        defer { timer.cancel() }
        do {
            return try answer.futureResult.wait()
        } catch is TimedOut {
            throw Failure(description: "no answer from \(address) within \(timeout) s")
        } catch {
            throw Failure(description: "malformed or cut HTTP answer from \(address): \(describe(error))")
        }
    }

    private struct TimedOut: Error {}

    private static func describe(_ error: any Error) -> String {
        if let error = error as? IOError { return String(cString: strerror(error.errnoCode)) }
        return "\(error)"
    }

    /// Collects one response: its status and body, up to `limit` bytes.
    private final class ResponseCollector: ChannelInboundHandler {
        typealias InboundIn = HTTPClientResponsePart
        private let answer: EventLoopPromise<Response>
        private let limit: Int
        private var status = 0
        private var body: [UInt8] = []

        init(answer: EventLoopPromise<Response>, limit: Int) {
            self.answer = answer
            self.limit = limit
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case let .head(head):
                status = Int(head.status.code)
            case var .body(buffer):
                guard body.count + buffer.readableBytes <= limit else {
                    answer.fail(Failure(description: "an answer over \(limit) bytes"))
                    context.close(promise: nil)
                    return
                }
                body += buffer.readBytes(length: buffer.readableBytes) ?? []
            case .end:
                answer.succeed(Response(status: status, body: body))
                context.close(promise: nil)
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            answer.fail(Failure(description: "the connection closed before the answer ended"))
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            answer.fail(error)
            context.close(promise: nil)
        }
    }

    public static func status(at address: HostPort, timeout: Double = 2) throws(Failure) -> PeerStatus {
        let response = try request("GET", "/status", at: address, timeout: timeout)
        guard response.status == 200 else { throw Failure(description: "\(address)/status answered HTTP \(response.status)") }
        let decoder = JSONDecoder()
        decoder.nonConformingFloatDecodingStrategy = PeerStatus.floatDecoding
        do { return try decoder.decode(PeerStatus.self, from: Data(response.body)) } catch {
            throw Failure(description: "\(address)/status is not a Chorus status: \(error)")
        }
    }

    /// The faults a peer injects now (`GET /faults`).
    public static func faults(at address: HostPort, timeout: Double = 2) throws(Failure) -> FaultSettings {
        try decodeFaults(try request("GET", "/faults", at: address, timeout: timeout), from: address)
    }

    /// Replaces every fault a peer injects (`POST /faults`); returns what the peer now applies.
    @discardableResult
    public static func setFaults(_ faults: FaultSettings, token: String?, at address: HostPort, timeout: Double = 2) throws(Failure) -> FaultSettings {
        let body = (try? JSONEncoder().encode(faults)).map { Array($0) } ?? []
        return try decodeFaults(try request("POST", "/faults", body: body, token: token, at: address, timeout: timeout), from: address)
    }

    private static func decodeFaults(_ response: Response, from address: HostPort) throws(Failure) -> FaultSettings {
        guard response.status == 200 else {
            throw Failure(description: "\(address)/faults answered HTTP \(response.status): \(String(decoding: response.body, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))")
        }
        switch FaultSettings.parse(json: response.body) {
        case let .success(faults): return faults
        case let .failure(error): throw Failure(description: "\(address)/faults: \(error)")
        }
    }

    public static func parameters(token: String?, at address: HostPort, timeout: Double = 2) throws(Failure) -> [Float] {
        let response = try request("GET", "/parameters", token: token, at: address, timeout: timeout)
        guard response.status == 200, response.body.count % 4 == 0 else {
            throw Failure(description: "\(address)/parameters answered HTTP \(response.status) with \(response.body.count) bytes")
        }
        return response.body.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
    }
}
