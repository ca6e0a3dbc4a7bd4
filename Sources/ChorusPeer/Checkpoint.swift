import ChorusCrypto
import ChorusLearning
import ChorusWire
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A saved model: parameters plus progress counters, so a restarted peer resumes where it stopped.
///
/// Binary layout (little-endian): "CHORUSCK" ‖ version u32 = 1 ‖ model (u16 length + UTF-8) ‖
/// steps u64 ‖ epoch u64 ‖ count u32 ‖ count × float32 ‖ BLAKE2b-256 of everything before.
/// Written to a temporary file, synced, then renamed, so a crash never leaves half a checkpoint.
public struct Checkpoint: Equatable, Sendable {
    public var model: String
    public var steps: UInt64
    public var epoch: UInt64
    public var parameters: [Float]

    public init(model: String, steps: UInt64, epoch: UInt64, parameters: [Float]) {
        self.model = model
        self.steps = steps
        self.epoch = epoch
        self.parameters = parameters
    }

    static let magic = Array("CHORUSCK".utf8)

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 64 + parameters.count * 4)
        w.raw(Self.magic)
        w.u32(1)
        w.string16(Array(model.utf8))
        w.u64(steps)
        w.u64(epoch)
        w.u32(UInt32(parameters.count))
        parameters.withUnsafeBytes { w.raw($0) }  // float32 little-endian on every platform we run on
        var bytes = w.bytes
        bytes += try! Blake2b.hash(bytes, outputLength: 32)
        return bytes
    }

    public struct DecodeError: Error, CustomStringConvertible {
        public let description: String
    }

    public static func decode(_ bytes: [UInt8]) throws(DecodeError) -> Checkpoint {
        guard bytes.count >= 8 + 4 + 32, Array(bytes.prefix(8)) == magic else {
            throw DecodeError(description: "not a Chorus checkpoint")
        }
        let body = Array(bytes.dropLast(32))
        guard let hash = try? Blake2b.hash(body, outputLength: 32), hash == Array(bytes.suffix(32)) else {
            throw DecodeError(description: "checksum mismatch (the file is damaged)")
        }
        var r = ByteReader(body, from: 8)
        do {
            guard try r.u32() == 1 else { throw DecodeError(description: "unsupported checkpoint version") }
            guard let model = String(validating: try r.string16(), as: UTF8.self) else {
                throw DecodeError(description: "model name is not UTF-8")
            }
            let steps = try r.u64()
            let epoch = try r.u64()
            let count = Int(try r.u32())
            let raw = try r.raw(count * 4)
            try r.finish()
            let parameters = raw.withUnsafeBytes { Array($0.bindMemory(to: Float.self)) }
            guard steps <= Learner.maxInheritedCount, epoch <= Learner.maxInheritedCount else {
                throw DecodeError(description: "step count \(steps) or epoch \(epoch) is beyond any real run (the file is damaged)")
            }
            guard parameters.allSatisfy(\.isFinite) else { throw DecodeError(description: "holds NaN or infinite parameters") }
            return Checkpoint(model: model, steps: steps, epoch: epoch, parameters: parameters)
        } catch let error as DecodeError {
            throw error
        } catch {
            throw DecodeError(description: "truncated or malformed")
        }
    }

    public func save(to path: String) throws {
        try AtomicFile.write(encoded(), to: path)
    }

    /// nil when there is no checkpoint yet.
    public static func load(from path: String) throws -> Checkpoint? {
        guard FileManager.default.fileExists(atPath: path) else { return nil }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw DecodeError(description: "cannot read")
        }
        return try decode(Array(data))
    }
}

/// Crash-safe file replacement: write a temporary file, fsync it, rename over the target.
enum AtomicFile {
    /// The temporary file of `path` written by process `pid`.
    static func temporary(of path: String, pid: Int32 = getpid()) -> String { path + ".tmp-\(pid)" }

    /// Removes the temporaries of `path` that processes killed mid-write left behind (`kill -9`
    /// during a checkpoint: nine after ten kills), returning their paths. Only `path.tmp-PID`
    /// files are touched, and only when process PID is gone: another live peer configured with
    /// the same path may be writing its own.
    static func removeStaleTemporaries(of path: String) -> [String] {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let prefix = url.lastPathComponent + ".tmp-"
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for name in names.sorted() where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count)), pid > 0, !processIsAlive(pid) else { continue }
            let stale = (directory as NSString).appendingPathComponent(name)
            if unlink(stale) == 0 { removed.append(stale) }
        }
        return removed
    }

    /// Whether process `pid` exists (signal 0 checks without sending; EPERM: it exists, not ours).
    static func processIsAlive(_ pid: Int32) -> Bool {
        pid == getpid() || kill(pid, 0) == 0 || errno == EPERM
    }

    static func write(_ bytes: [UInt8], to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        if !directory.isEmpty {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        let temporary = temporary(of: path)
        let fd = open(temporary, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO) }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            guard n > 0 else {
                close(fd)
                unlink(temporary)
                throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
            }
            offset += n
        }
        fsync(fd)
        close(fd)
        guard rename(temporary, path) == 0 else {
            unlink(temporary)
            throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EIO)
        }
    }
}

/// The boot epoch of this peer (see docs/protocol.md, "Epochs"): max(previous + 1, unix seconds),
/// persisted before the first datagram is sent, so it grows across restarts even when the clock
/// is wrong or the state file is lost (not both).
public enum BootEpoch {
    /// Incarnations are `epoch · 2¹⁶ + refutations` in a UInt64, so an epoch must stay below 2⁴⁸
    /// (about nine million years of Unix time): a larger one can only come from a damaged file.
    public static let limit: UInt64 = 1 << 48

    /// The next boot epoch, `max(previous + 1, unix time)`, written to `path` before it is used.
    /// A file that does not hold an epoch is an error naming it and saying what to do, never a
    /// crash or a silent restart from zero.
    public static func next(stateFile path: String, now: Date = Date()) throws -> UInt64 {
        var previous: UInt64 = 0
        if let data = FileManager.default.contents(atPath: path) {
            let text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            guard let value = UInt64(text) else {
                throw StartupError("\(path): expected a boot epoch (a whole number of seconds), found \"\(text.prefix(40))\"; the file is damaged: move it away and the peer starts at the current time")
            }
            guard value < limit - 1 else {
                throw StartupError("\(path): boot epoch \(value) is beyond any clock (at most \(limit - 2)); the file is damaged: move it away and the peer starts at the current time")
            }
            previous = value
        }
        let epoch = max(previous + 1, UInt64(max(1, now.timeIntervalSince1970)))
        try AtomicFile.write(Array("\(epoch)\n".utf8), to: path)
        return epoch
    }
}
