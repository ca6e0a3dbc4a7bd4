import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A tiny blocking HTTP/1.1 client for a peer's admin endpoint (loopback by default), used by
/// `chorus status`, the demo and the integration tests. No dependencies, explicit timeouts.
public enum AdminClient {
    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    public struct Response: Sendable {
        public var status: Int
        public var body: [UInt8]
    }

    /// - Parameter token: the peer's admin token, for the routes that need it (`/parameters`, `POST /faults`, `/leave`).
    public static func request(_ method: String = "GET", _ path: String, body: [UInt8] = [], token: String? = nil,
                               at address: HostPort, timeout: Double = 2) throws(Failure) -> Response {
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var result: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(address.host, String(address.port), &hints, &result) == 0, let info = result else {
            throw Failure(description: "cannot resolve \(address.host)")
        }
        defer { freeaddrinfo(result) }
        let fd = socket(info.pointee.ai_family, info.pointee.ai_socktype, info.pointee.ai_protocol)
        guard fd >= 0 else { throw Failure(description: "cannot create a socket") }
        defer { close(fd) }
        var tv = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - Double(Int(timeout))) * 1e6))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        guard connect(fd, info.pointee.ai_addr, info.pointee.ai_addrlen) == 0 else {
            throw Failure(description: "cannot connect to \(address): \(String(cString: strerror(errno))) (is the peer running, and is this its admin address?)")
        }
        let contentType = body.isEmpty ? "" : "Content-Type: application/json\r\n"
        let authorization = token.map { "Authorization: Bearer \($0)\r\n" } ?? ""
        let request = Array("\(method) \(path) HTTP/1.1\r\nHost: \(address)\r\nConnection: close\r\n\(authorization)\(contentType)Content-Length: \(body.count)\r\n\r\n".utf8) + body
        guard request.withUnsafeBytes({ send(fd, $0.baseAddress, $0.count, 0) }) == request.count else {
            throw Failure(description: "cannot send the request to \(address)")
        }
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if n == 0 { break }
            guard n > 0 else { throw Failure(description: "no answer from \(address) within \(timeout) s") }
            data.append(contentsOf: buffer[0..<n])
        }
        guard let split = data.firstRange(of: Array("\r\n\r\n".utf8)),
              let head = String(bytes: data[..<split.lowerBound], encoding: .utf8),
              let statusText = head.split(separator: " ").dropFirst().first, let status = Int(statusText)
        else { throw Failure(description: "malformed HTTP answer from \(address)") }
        return Response(status: status, body: Array(data[split.upperBound...]))
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
