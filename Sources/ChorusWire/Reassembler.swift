import ChorusCrypto

/// An object whose manifest (with chunk 0) and every further chunk arrived and whose BLAKE2b-256 matched the signed manifest.
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

    /// What an incomplete object is charged: its length, its chunk bitmap and the fixed overhead.
    static func cost(totalLength: UInt32, chunkCount: Int) -> Int {
        Int(totalLength) + ((chunkCount + 63) / 64) * 8 + entryOverhead
    }

    /// Which chunks of an object arrived: one inline word for up to 64 chunks (every parameter
    /// vector: no second allocation per object), words in an array beyond.
    struct ChunkSet {
        private var first: UInt64 = 0
        private var rest: [UInt64]

        init(count: Int) { rest = count > 64 ? [UInt64](repeating: 0, count: (count - 1) / 64) : [] }

        func contains(_ index: Int) -> Bool {
            let bit = UInt64(1) << (index % 64)
            return (index < 64 ? first : rest[index / 64 - 1]) & bit != 0
        }

        mutating func insert(_ index: Int) {
            let bit = UInt64(1) << (index % 64)
            if index < 64 { first |= bit } else { rest[index / 64 - 1] |= bit }
        }
    }

    struct Entry {
        var totalLength: UInt32
        var chunkSize: UInt16
        var buffer: [UInt8]
        var received: ChunkSet
        var receivedCount = 0
        var chunkCount: Int
        var manifest: ObjectManifest?
        var created: Double
        var cost: Int { Reassembler.cost(totalLength: totalLength, chunkCount: chunkCount) }

        /// Copies a piece (of the length its index requires, checked when decoded) into place.
        mutating func place(_ data: ArraySlice<UInt8>, index: Int) {
            let start = index * Int(chunkSize)
            buffer.withUnsafeMutableBytes { buffer in
                data.withUnsafeBytes { data in
                    buffer.baseAddress!.advanced(by: start).copyMemory(from: data.baseAddress!, byteCount: data.count)
                }
            }
            received.insert(index)
            receivedCount += 1
        }
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
        if manifest.chunkCount <= 1 {
            // The whole object is in the manifest: no entry, no buffer to fill.
            if entries[key] != nil { remove(key) }
            return verify(bytes: Array(manifest.firstChunk), manifest: manifest, sender: sender)
        }
        let slot: Dictionary<Key, Entry>.Index
        switch entry(for: key, totalLength: manifest.totalLength, chunkSize: manifest.chunkSize, now: now) {
        case let .failure(reason): return .rejected(reason)
        case let .success(index): slot = index
        }
        // Kept without its chunk, which is a slice of the whole datagram.
        var fields = manifest
        fields.firstChunk = []
        let consistent = withEntry(at: slot) { entry in
            if let existing = entry.manifest { return existing == fields }  // a duplicate: chunk 0 is in already
            entry.manifest = fields
            if !entry.received.contains(0) { entry.place(manifest.firstChunk, index: 0) }
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
        let outcome: Outcome? = withEntry(at: slot) { entry in
            guard index > 0, index < entry.chunkCount else { return .rejected(.objectInconsistent) }  // 0: in the manifest
            if entry.received.contains(index) { return .pending }  // duplicate piece, harmless
            entry.place(chunk.bytes, index: index)
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
        let cost = Self.cost(totalLength: totalLength, chunkCount: chunkCount)
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
            // Not zeroed: the object is delivered only once every byte was written.
            buffer: [UInt8](unsafeUninitializedCapacity: Int(totalLength)) { $1 = $0.count },
            received: ChunkSet(count: chunkCount),
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
