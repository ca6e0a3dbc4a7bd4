import Foundation
import Logging

/// How a peer writes its log (swift-log): one line per entry on standard error, with time and
/// level, as text for people or as JSON for machines (`chorus peer --log-format`).
public struct PeerLogHandler: LogHandler {
    public enum Format: String, Sendable, CaseIterable {
        /// `2026-11-23T18:35:12.123Z info member 3f9c0a1b failed peer=77ab…`
        case text
        /// `{"time":"…","level":"info","message":"member 3f9c0a1b failed","peer":"77ab…"}`
        case json
    }

    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public let format: Format
    private let write: @Sendable (String) -> Void

    public init(label: String, level: Logger.Level, format: Format,
                write: @escaping @Sendable (String) -> Void = { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }) {
        self.logLevel = level
        self.format = format
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        write(Self.render(time: Date(), level: event.level, message: event.message.description, metadata: all, format: format))
    }

    static func render(time: Date, level: Logger.Level, message: String, metadata: Logger.Metadata, format: Format) -> String {
        let stamp = timestamp(time)
        let pairs = metadata.sorted { $0.key < $1.key }
        switch format {
        case .text:
            let tail = pairs.map { " \($0.key)=\($0.value)" }.joined()
            return "\(stamp) \(level) \(message)\(tail)"
        case .json:
            var object: [String: String] = ["time": stamp, "level": level.rawValue, "message": message]
            for (key, value) in pairs where object[key] == nil { object[key] = "\(value)" }
            let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
            return String(decoding: data, as: UTF8.self)
        }
    }

    /// RFC 3339 in UTC with milliseconds.
    static func timestamp(_ date: Date) -> String {
        let t = date.timeIntervalSince1970
        var seconds = time_t(t.rounded(.down))
        var parts = tm()
        gmtime_r(&seconds, &parts)
        let millis = Int((t - t.rounded(.down)) * 1000)
        return String(format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(parts.tm_year) + 1900, Int(parts.tm_mon) + 1, Int(parts.tm_mday),
                      Int(parts.tm_hour), Int(parts.tm_min), Int(parts.tm_sec), millis)
    }
}
