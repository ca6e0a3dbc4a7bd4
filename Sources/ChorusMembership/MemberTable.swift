import ChorusCrypto
import HashTreeCollections

/// Every member one peer knows, with the indexes that keep hot paths off whole-table scans: the
/// sorted live ids, the tombstones and two order-independent digests. Written only through
/// `store` and `forget`, which keep all of them in step.
struct MemberTable: Sendable {
    /// By id. A hash tree rather than a `Dictionary`: copies share their nodes and a change
    /// copies one path, so a simulation's peers share the view they start from
    /// (`MembershipInstance.preload(sharing:now:)`): 4096 peers 5.4 → 3.7 GB.
    private(set) var members = TreeDictionary<PeerID, Member>()
    /// Counts every change to `members`: a checker re-reads the view only when it moved.
    private(set) var changes: UInt64 = 0
    /// Live members other than this peer, sorted (deterministic random picks without re-sorting);
    /// updated only when a member's liveness changes.
    private(set) var liveIDs: [PeerID] = []
    /// Failed and left members, with when they became so: the tombstones `tick` expires.
    private(set) var tombstones: [PeerID: Double] = [:]
    /// XOR of `entryHash` over the live members: the view's digest without this peer's own entry.
    private(set) var othersDigest: UInt64 = 0
    /// XOR of `syncHash` (id and boot epoch) over the live members: the sync digest without this peer.
    private(set) var othersSyncDigest: UInt64 = 0
    /// Set while a whole view is loaded: the live index is rebuilt once at the end.
    private(set) var bulkLoading = false

    subscript(id: PeerID) -> Member? { members[id] }
    var isEmpty: Bool { members.isEmpty }

    /// Stores `member`, whose status changed (or was learnt) at `now`. Returns whether the live
    /// set or the tombstones changed: the timers computed from them must be recomputed.
    mutating func store(_ member: Member, as id: PeerID, now: Double) -> Bool {
        changes &+= 1
        let old = members[id]
        let wasLive = old?.isLive ?? false
        if let old, wasLive { othersSyncDigest ^= Self.syncHash(id, incarnation: old.incarnation) }
        if member.isLive { othersSyncDigest ^= Self.syncHash(id, incarnation: member.incarnation) }
        members[id] = member
        // A revoked member stays for good (no tombstone to expire): a late claim must not revive it.
        let tombstone = member.isLive || member.status == .revoked ? nil : now
        var timersMoved = false
        if tombstones[id] != tombstone {
            tombstones[id] = tombstone
            timersMoved = true
        }
        if wasLive != member.isLive { timersMoved = liveness(of: id, changedTo: member.isLive) || timersMoved }
        return timersMoved
    }

    /// Removes a member and its tombstone. Returns whether anything was removed (the timers
    /// computed from the live set and the tombstones must then be recomputed).
    mutating func forget(_ peer: PeerID) -> Bool {
        guard let member = members.removeValue(forKey: peer) else { return false }
        changes &+= 1
        if member.isLive { othersSyncDigest ^= Self.syncHash(peer, incarnation: member.incarnation) }
        let hadTombstone = tombstones.removeValue(forKey: peer) != nil
        let liveMoved = member.isLive && liveness(of: peer, changedTo: false)
        return hadTombstone || liveMoved
    }

    /// Starts from `other`'s steady view (no tombstones), sharing its storage; the change
    /// counter stays this table's own.
    mutating func share(_ other: MemberTable) {
        precondition(members.isEmpty && other.tombstones.isEmpty, "sharing starts an empty view from a steady one")
        let changes = changes
        self = other
        self.changes = changes
    }

    /// Loading a whole view: the live index is rebuilt once, by `endBulkLoad`.
    mutating func beginBulkLoad() { bulkLoading = true }
    mutating func endBulkLoad() {
        bulkLoading = false
        liveIDs = members.values.filter(\.isLive).map(\.id).sorted()
    }

    /// Keeps the digest and the sorted live index in step with one member's liveness. Returns
    /// whether the live index changed (not while bulk loading).
    private mutating func liveness(of peer: PeerID, changedTo live: Bool) -> Bool {
        othersDigest ^= Self.entryHash(peer)
        guard !bulkLoading else { return false }  // endBulkLoad rebuilds the index once
        let i = liveIndex(of: peer)
        if live {
            liveIDs.insert(peer, at: i)
        } else if i < liveIDs.count && liveIDs[i] == peer {
            liveIDs.remove(at: i)
        }
        return true
    }

    /// Where `peer` is or would go in the sorted `liveIDs` (binary search).
    private func liveIndex(of peer: PeerID) -> Int {
        var low = 0, high = liveIDs.count
        while low < high {
            let mid = (low + high) / 2
            if liveIDs[mid] < peer { low = mid + 1 } else { high = mid }
        }
        return low
    }

    func isLiveOther(_ peer: PeerID) -> Bool {
        let i = liveIndex(of: peer)
        return i < liveIDs.count && liveIDs[i] == peer
    }

    /// The contact of a member we hold.
    func contact(of id: PeerID) -> Contact {
        Contact(id: id, address: members[id]!.address)
    }

    /// `count` distinct live members other than those excluded (all of them when there are no more).
    func randomLiveMembers(count: Int, excluding: Set<PeerID>, rng: inout some RandomNumberGenerator) -> [Contact] {
        let available = liveIDs.count - excluding.reduce(0) { $0 + (isLiveOther($1) ? 1 : 0) }
        if available <= count {
            return liveIDs.filter { !excluding.contains($0) }.map { contact(of: $0) }
        }
        var chosen: [Int] = []
        while chosen.count < count {
            let i = Int.random(in: 0..<liveIDs.count, using: &rng)
            if !chosen.contains(i) && !excluding.contains(liveIDs[i]) { chosen.append(i) }
        }
        return chosen.map { contact(of: liveIDs[$0]) }
    }

    /// Failed members that have an address, in id order.
    var failedMembers: [Member] {
        tombstones.keys.compactMap { members[$0] }.filter { $0.status == .failed && !$0.address.isEmpty }.sorted { $0.id < $1.id }
    }

    // MARK: Digests

    /// One member's part of the sync digest: its id's hash mixed with its boot epoch.
    static func syncHash(_ id: PeerID, incarnation: UInt64) -> UInt64 { mix(entryHash(id) ^ (incarnation >> 16)) }

    static func entryHash(_ id: PeerID) -> UInt64 {
        var h: UInt64 = 0x243F_6A88_85A3_08D3
        id.withUnsafeBytes { raw in
            for word in 0..<4 { h = mix(h ^ raw.loadUnaligned(fromByteOffset: 8 * word, as: UInt64.self)) }
        }
        return h
    }

    static func mix(_ x: UInt64) -> UInt64 {  // SplitMix64's finaliser
        var z = x &+ 0x9E37_79B9_7F4A_7C15
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Where to send to a member: all that gossip, relays and syncs need of it.
struct Contact {
    var id: PeerID
    var address: String
    init(_ member: Member) { (id, address) = (member.id, member.address) }
    init(id: PeerID, address: String) { (self.id, self.address) = (id, address) }
}
