import ChorusCrypto
import Foundation

/// Faults injected in the transport, for tests and experiments (the kernel's netem is not
/// available everywhere): drop, delay, duplicate, and a list of peers to cut off (partitions).
public struct FaultSettings: Sendable, Equatable {
    /// Probability that an outgoing datagram is dropped.
    public var drop = 0.0
    /// Probability that an incoming datagram is dropped (before anything reads it).
    public var dropIn = 0.0
    /// Faults on the link to one peer, on top of the others: what this peer sends it.
    public var links: [PeerID: LinkFault] = [:]
    /// Probability that an outgoing datagram is sent twice.
    public var duplicate = 0.0
    /// Extra delay of each outgoing datagram, uniform in this range (seconds).
    public var delay: ClosedRange<Double> = 0...0
    /// Peers whose datagrams are dropped in both directions.
    public var blocked: Set<PeerID> = []

    public init() {}

    public var isActive: Bool { drop > 0 || duplicate > 0 || delay.upperBound > 0 || !blocked.isEmpty || !links.isEmpty }

    /// Whether incoming datagrams are looked at at all.
    public var filtersIncoming: Bool { dropIn > 0 || !blocked.isEmpty }

    /// One line for logs: "none", or e.g. "drop 0.1, delay 10–50 ms, 3 peers blocked".
    public var summary: String {
        var parts: [String] = []
        if drop > 0 { parts.append("drop \(drop)") }
        if dropIn > 0 { parts.append("drop incoming \(dropIn)") }
        if !links.isEmpty { parts.append("\(links.count) link\(links.count == 1 ? "" : "s") faulted") }
        if duplicate > 0 { parts.append("duplicate \(duplicate)") }
        if delay.upperBound > 0 { parts.append("delay \(Int(delay.lowerBound * 1000))–\(Int(delay.upperBound * 1000)) ms") }
        if !blocked.isEmpty { parts.append("\(blocked.count) peer\(blocked.count == 1 ? "" : "s") blocked") }
        return parts.isEmpty ? "none" : parts.joined(separator: ", ")
    }

    /// What to do with one outgoing datagram: the delays at which to send copies (empty: drop).
    public func plan(to peer: PeerID?, using rng: inout some RandomNumberGenerator) -> [Double] {
        if let peer, blocked.contains(peer) { return [] }
        if drop > 0 && Double.random(in: 0..<1, using: &rng) < drop { return [] }
        let link = peer.flatMap { links[$0] }
        if let link, link.drop > 0 && Double.random(in: 0..<1, using: &rng) < link.drop { return [] }
        let copies = duplicate > 0 && Double.random(in: 0..<1, using: &rng) < duplicate ? 2 : 1
        let extra = (link?.delayMs ?? 0) / 1000
        return (0..<copies).map { _ in (delay.upperBound > 0 ? Double.random(in: delay, using: &rng) : 0) + extra }
    }

    /// Whether an incoming datagram is dropped: its sender (read from its header) is cut off, or
    /// it falls to `dropIn`.
    public func blocks(incoming bytes: [UInt8], using rng: inout some RandomNumberGenerator) -> Bool {
        if dropIn > 0 && Double.random(in: 0..<1, using: &rng) < dropIn { return true }
        guard !blocked.isEmpty, bytes.count >= 38, let sender = try? PeerID(bytes: Array(bytes[6..<38])) else { return false }
        return blocked.contains(sender)
    }
}

/// Faults on the link to one peer.
public struct LinkFault: Sendable, Equatable, Codable {
    /// Probability that a datagram to that peer is dropped.
    public var drop: Double
    /// Extra milliseconds before a datagram to that peer leaves.
    public var delayMs: Double

    public init(drop: Double = 0, delayMs: Double = 0) {
        self.drop = drop
        self.delayMs = delayMs
    }
}

/// The JSON form of `FaultSettings`, for `GET`/`POST /faults` and `/status` (docs in
/// Peers/README.md): `{"drop": 0.1, "dropIn": 0, "duplicate": 0, "delayMs": [0, 50],
/// "blocked": ["<peer id>", …], "links": {"<peer id>": {"drop": 0.5, "delayMs": 20}}}`.
/// A `POST` replaces every fault at once; a missing field means "none".
extension FaultSettings: Codable {
    enum CodingKeys: String, CodingKey { case drop, dropIn, duplicate, delayMs, blocked, links }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(drop, forKey: .drop)
        try c.encode(dropIn, forKey: .dropIn)
        try c.encode(Dictionary(uniqueKeysWithValues: links.map { ($0.key.description, $0.value) }), forKey: .links)
        try c.encode(duplicate, forKey: .duplicate)
        try c.encode([delay.lowerBound * 1000, delay.upperBound * 1000], forKey: .delayMs)
        try c.encode(blocked.sorted().map(\.description), forKey: .blocked)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        func invalid(_ key: CodingKeys, _ message: String) -> DecodingError {
            DecodingError.dataCorruptedError(forKey: key, in: c, debugDescription: message)
        }
        self.init()
        drop = try c.decodeIfPresent(Double.self, forKey: .drop) ?? 0
        guard (0...1).contains(drop) else { throw invalid(.drop, "expected a probability in [0, 1], got \(drop)") }
        dropIn = try c.decodeIfPresent(Double.self, forKey: .dropIn) ?? 0
        guard (0...1).contains(dropIn) else { throw invalid(.dropIn, "expected a probability in [0, 1], got \(dropIn)") }
        for (text, link) in try c.decodeIfPresent([String: LinkFault].self, forKey: .links) ?? [:] {
            guard let id = PeerID(text: text) else { throw invalid(.links, "expected peer ids of 64 hexadecimal characters as keys, got \"\(text)\"") }
            guard (0...1).contains(link.drop), (0...60_000).contains(link.delayMs) else {
                throw invalid(.links, "link to \(text.prefix(8))…: expected drop in [0, 1] and delayMs in [0, 60000], got \(link.drop) and \(link.delayMs)")
            }
            links[id] = link
        }
        duplicate = try c.decodeIfPresent(Double.self, forKey: .duplicate) ?? 0
        guard (0...1).contains(duplicate) else { throw invalid(.duplicate, "expected a probability in [0, 1], got \(duplicate)") }
        let ms = try c.decodeIfPresent([Double].self, forKey: .delayMs) ?? [0, 0]
        guard ms.count == 2, ms[0] >= 0, ms[1] >= ms[0], ms[1] <= 60_000 else {
            throw invalid(.delayMs, "expected [min, max] milliseconds with 0 ≤ min ≤ max ≤ 60000, got \(ms)")
        }
        delay = ms[0] / 1000...ms[1] / 1000
        for text in try c.decodeIfPresent([String].self, forKey: .blocked) ?? [] {
            guard let id = PeerID(text: text) else { throw invalid(.blocked, "expected peer ids of 64 hexadecimal characters, got \"\(text)\"") }
            blocked.insert(id)
        }
    }

    /// Parses a `POST /faults` body; the error names the field.
    public static func parse(json bytes: [UInt8]) -> Result<FaultSettings, FaultSettingsError> {
        do { return .success(try JSONDecoder().decode(FaultSettings.self, from: Data(bytes))) } catch let DecodingError.dataCorrupted(context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            return .failure(FaultSettingsError(description: field.isEmpty ? "not a JSON object: \(context.debugDescription)" : "field '\(field)': \(context.debugDescription)"))
        } catch let DecodingError.typeMismatch(_, context) {
            let field = context.codingPath.map(\.stringValue).joined(separator: ".")
            return .failure(FaultSettingsError(description: "field '\(field)': wrong type (\(context.debugDescription))"))
        } catch {
            return .failure(FaultSettingsError(description: "not a fault description: \(error)"))
        }
    }
}

public struct FaultSettingsError: Error, CustomStringConvertible {
    public let description: String
}
