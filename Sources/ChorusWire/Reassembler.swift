import ChorusCrypto

/// An object whose manifest and every chunk arrived and whose BLAKE2b-256 matched the signed manifest.
public struct CompletedObject: Sendable, Equatable {
    public var sender: PeerID
    public var channel: UInt8
    public var bytes: [UInt8]
}

/// Rebuilds chunked objects with bounded memory.
///
/// Each in-progress object is charged its declared length plus a fixed overhead against a per-sender
/// and a global budget; when a new object does not fit, the sender's (then anyone's) oldest
/// incomplete objects are evicted, and an object that could never fit is refused. Incomplete objects
/// are dropped after `timeout` seconds.
public struct Reassembler: Sendable {
    public struct Settings: Sendable {
        public var maxObjectBytes: Int
        public var budgetBytes: Int
        public var perSenderBudgetBytes: Int
        public var timeout: Double
        /// How the object hash is computed (`.simulated` only in simulations; see `CryptoMode`).
        public var mode: CryptoMode

        public init(maxObjectBytes: Int, budgetBytes: Int, perSenderBudgetBytes: Int, timeout: Double, mode: CryptoMode = .real) {
            self.mode = mode
            self.maxObjectBytes = maxObjectBytes
            self.budgetBytes = budgetBytes
            self.perSenderBudgetBytes = perSenderBudgetBytes
            self.timeout = timeout
        }
    }

    public enum Outcome: Equatable, Sendable {
        case pending
        case complete(CompletedObject)
        case rejected(WireRejection)
    }

    /// Charged per entry on top of its buffer, so floods of tiny objects are bounded too.
    public static let entryOverhead = 256

    struct Key: Hashable { var sender: PeerID; var objectID: UInt64 }

    struct Entry {
        var totalLength: UInt32
        var chunkSize: UInt16
        var buffer: [UInt8]
        var received: [UInt64]
        var receivedCount = 0
        var chunkCount: Int
        var manifest: ObjectManifest?
        var created: Double
        var cost: Int { buffer.count + received.count * 8 + Reassembler.entryOverhead }
    }

    public let settings: Settings
    private var entries: [Key: Entry] = [:]
    private var perSender: [PeerID: Int] = [:]
    /// Bytes currently charged against the budget (buffers, bitmaps and per-entry overhead).
    public private(set) var bytesInUse = 0
    public private(set) var evictions = 0
    public var objectsInProgress: Int { entries.count }

    public init(settings: Settings) {
        self.settings = settings
    }

    public mutating func add(manifest: ObjectManifest, from sender: PeerID, now: Double) -> Outcome {
        let key = Key(sender: sender, objectID: manifest.objectID)
        if manifest.totalLength == 0 {
            if entries[key] != nil { remove(key) }
            return verify(bytes: [], manifest: manifest, sender: sender)
        }
        let slot: Dictionary<Key, Entry>.Index
        switch entry(for: key, totalLength: manifest.totalLength, chunkSize: manifest.chunkSize, now: now) {
        case let .failure(reason): return .rejected(reason)
        case let .success(index): slot = index
        }
        let consistent = withEntry(at: slot) { entry in
            if let existing = entry.manifest, existing != manifest { return false }
            entry.manifest = manifest
            return true
        }
        guard consistent else {
            remove(key)
            return .rejected(.objectInconsistent)
        }
        return completeIfReady(slot)
    }

    public mutating func add(chunk: ObjectChunk, from sender: PeerID, now: Double) -> Outcome {
        let key = Key(sender: sender, objectID: chunk.objectID)
        // Every access below goes through this index: one hash lookup per chunk, and the entry
        // (with its buffer) is changed in place, never copied.
        let slot: Dictionary<Key, Entry>.Index
        switch entry(for: key, totalLength: chunk.totalLength, chunkSize: chunk.chunkSize, now: now) {
        case let .failure(reason): return .rejected(reason)
        case let .success(index): slot = index
        }
        let index = Int(chunk.index)
        let (word, mask) = (index / 64, UInt64(1) << (index % 64))
        let outcome: Outcome? = withEntry(at: slot) { entry in
            guard index < entry.chunkCount else { return .rejected(.objectInconsistent) }
            if entry.received[word] & mask != 0 { return .pending }  // duplicate piece, harmless
            let start = index * Int(chunk.chunkSize)
            entry.buffer.withUnsafeMutableBytes { buffer in
                chunk.bytes.withUnsafeBytes { data in
                    buffer.baseAddress!.advanced(by: start).copyMemory(from: data.baseAddress!, byteCount: data.count)
                }
            }
            entry.received[word] |= mask
            entry.receivedCount += 1
            return nil
        }
        return outcome ?? completeIfReady(slot)
    }

    /// Drops incomplete objects older than the timeout; returns how many were dropped.
    public mutating func expire(now: Double) -> Int {
        let stale = entries.filter { now - $0.value.created > settings.timeout }.map(\.key)
        for key in stale { remove(key) }
        return stale.count
    }

    /// Forgets everything from one sender (used when it restarts with a new epoch).
    public mutating func dropAll(from sender: PeerID) {
        for key in entries.keys where key.sender == sender { remove(key) }
    }

    /// The entry for `key` (created, after making room, when new) as an index into `entries`.
    private mutating func entry(for key: Key, totalLength: UInt32, chunkSize: UInt16, now: Double) -> Result<Dictionary<Key, Entry>.Index, WireRejection> {
        if let index = entries.index(forKey: key) {
            guard withEntry(at: index, { $0.totalLength == totalLength && $0.chunkSize == chunkSize }) else {
                remove(key)
                return .failure(.objectInconsistent)
            }
            return .success(index)
        }
        guard chunkSize > 0, Int(totalLength) <= settings.maxObjectBytes else { return .failure(.objectTooLarge) }
        let chunkCount = (Int(totalLength) + Int(chunkSize) - 1) / Int(chunkSize)
        let cost = Int(totalLength) + ((chunkCount + 63) / 64) * 8 + Self.entryOverhead
        guard cost <= settings.perSenderBudgetBytes, cost <= settings.budgetBytes else { return .failure(.objectOverBudget) }
        // Make room: first the sender's own oldest objects, then anyone's.
        while (perSender[key.sender] ?? 0) + cost > settings.perSenderBudgetBytes {
            guard let oldest = oldestKey(where: { $0.sender == key.sender }) else { break }
            remove(oldest)
            evictions += 1
        }
        while bytesInUse + cost > settings.budgetBytes {
            guard let oldest = oldestKey(where: { _ in true }) else { break }
            remove(oldest)
            evictions += 1
        }
        let entry = Entry(
            totalLength: totalLength, chunkSize: chunkSize,
            buffer: [UInt8](repeating: 0, count: Int(totalLength)),
            received: [UInt64](repeating: 0, count: (chunkCount + 63) / 64),
            chunkCount: chunkCount, created: now)
        bytesInUse += entry.cost
        perSender[key.sender, default: 0] += entry.cost
        entries[key] = entry
        return .success(entries.index(forKey: key)!)
    }

    private func oldestKey(where predicate: (Key) -> Bool) -> Key? {
        entries.filter { predicate($0.key) }.min { $0.value.created < $1.value.created }?.key
    }

    private mutating func remove(_ key: Key) {
        guard let index = entries.index(forKey: key) else { return }
        _ = remove(at: index)
    }

    private mutating func remove(at index: Dictionary<Key, Entry>.Index) -> Entry {
        let (key, entry) = entries.remove(at: index)
        bytesInUse -= entry.cost
        perSender[key.sender, default: 0] -= entry.cost
        if perSender[key.sender] == 0 { perSender[key.sender] = nil }
        return entry
    }

    /// Reads or changes an entry in place: `entries.values[index]` would copy it for a read
    /// (retaining its buffer and bitmap), on every chunk.
    private mutating func withEntry<R>(at index: Dictionary<Key, Entry>.Index, _ body: (inout Entry) -> R) -> R {
        body(&entries.values[index])
    }

    private mutating func completeIfReady(_ index: Dictionary<Key, Entry>.Index) -> Outcome {
        guard withEntry(at: index, { $0.manifest != nil && $0.receivedCount == $0.chunkCount }) else { return .pending }
        let sender = entries.keys[index].sender
        let entry = remove(at: index)
        return verify(bytes: entry.buffer, manifest: entry.manifest!, sender: sender)
    }

    private func verify(bytes: [UInt8], manifest: ObjectManifest, sender: PeerID) -> Outcome {
        guard constantTimeEqual(settings.mode.objectHash(bytes), manifest.hash) else {
            return .rejected(.objectHashMismatch)
        }
        return .complete(CompletedObject(sender: sender, channel: manifest.channel, bytes: bytes))
    }
}
