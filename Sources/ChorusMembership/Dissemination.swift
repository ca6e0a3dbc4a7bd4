import ChorusCrypto
import HeapModule

/// Claims waiting to be piggybacked or gossiped, one per subject (a newer claim replaces the
/// older), taken least-sent first and newest first among equals, each until it has been sent
/// the retransmit limit's number of times (memberlist's `queue.go`).
struct DisseminationQueue: Sendable {
    private struct Queued {
        var claim: Claim
        var transmits: Int
        var order: Int
    }

    private var queue: [PeerID: Queued] = [:]
    private var queueOrder = 0
    /// The queue in dissemination order, so taking claims never sorts the whole queue.
    private var ranking = ClaimRanking()

    var isEmpty: Bool { queue.isEmpty }
    var count: Int { queue.count }
    func contains(_ subject: PeerID) -> Bool { queue[subject] != nil }

    mutating func enqueue(_ claim: Claim) {
        queueOrder += 1
        queue[claim.subject] = Queued(claim: claim, transmits: 0, order: queueOrder)
        ranking.push(.init(transmits: 0, order: queueOrder, subject: claim.subject))
        if ranking.count > 2 * queue.count + 64 {
            // Mostly replaced or finished entries: rebuild from the queue.
            ranking.removeAll()
            for q in queue.values { ranking.push(.init(transmits: q.transmits, order: q.order, subject: q.claim.subject)) }
        }
    }

    mutating func remove(_ subject: PeerID) { queue[subject] = nil }

    mutating func removeAll() {
        queue.removeAll()
        ranking.removeAll()
    }

    /// Least-sent claims first (newest first among equals) that fit in `budget` bytes; a claim
    /// sent `limit` times leaves the queue.
    mutating func take(budget: Int, limit: Int) -> [Claim] {
        guard !queue.isEmpty, budget > 0 else { return [] }
        var remaining = budget
        var taken: [Claim] = []
        var putBack: [ClaimRanking.Entry] = []  // not taken again in this message
        while let entry = ranking.pop() {
            // Skip entries whose claim was replaced, finished or dropped since they were ranked.
            guard let queued = queue[entry.subject], queued.order == entry.order, queued.transmits == entry.transmits else { continue }
            let size = queued.claim.encodedSize
            guard size <= remaining else {
                putBack.append(entry)
                continue
            }
            remaining -= size
            taken.append(queued.claim)
            let transmits = queued.transmits + 1
            if transmits >= limit {
                queue[entry.subject] = nil
            } else {
                queue[entry.subject]!.transmits = transmits
                putBack.append(.init(transmits: transmits, order: entry.order, subject: entry.subject))
            }
            if remaining < 120 { break }
        }
        for entry in putBack { ranking.push(entry) }
        return taken
    }
}

/// Claims waiting to be disseminated, least-sent first and newest first among equals. Entries
/// are never updated in place; stale ones (the claim was replaced or has been sent often enough)
/// are skipped when popped.
struct ClaimRanking {
    struct Entry: Comparable {
        var transmits: Int
        var order: Int
        var subject: PeerID

        /// "Comes first": fewer transmissions, then newer (higher order).
        static func < (a: Entry, b: Entry) -> Bool { (a.transmits, -a.order) < (b.transmits, -b.order) }
        static func == (a: Entry, b: Entry) -> Bool { a.order == b.order && a.transmits == b.transmits }
    }

    private var heap = Heap<Entry>()
    var count: Int { heap.count }

    mutating func removeAll() { heap = Heap() }
    mutating func push(_ entry: Entry) { heap.insert(entry) }
    mutating func pop() -> Entry? { heap.popMin() }
}

extension MembershipInstance {
    /// How many times each claim is sent: λ · ⌈log10(n + 1)⌉.
    var retransmitLimit: Int { settings.retransmitMultiplier * max(1, Int(log10(Double(clusterSize + 1)).rounded(.up))) }

    mutating func takeClaims(budget: Int) -> [Claim] { queue.take(budget: budget, limit: retransmitLimit) }

    /// What is left of the message size limit after `message`'s own header and claims.
    func budget(for message: MembershipMessage) -> Int {
        settings.maxMessageBytes - message.headerSize - message.claims.reduce(0) { $0 + $1.encodedSize }
    }

    /// `message` with as many queued claims piggybacked as fit.
    mutating func withClaims(_ message: MembershipMessage) -> MembershipMessage {
        let extra = takeClaims(budget: budget(for: message))
        switch message {
        case let .ping(seq, c): return .ping(sequence: seq, claims: c + extra)
        case let .ack(seq, c): return .ack(sequence: seq, claims: c + extra)
        case let .pingRequest(seq, t, a, c): return .pingRequest(sequence: seq, target: t, address: a, claims: c + extra)
        case let .nack(seq, c): return .nack(sequence: seq, claims: c + extra)
        case let .gossip(c): return .gossip(claims: c + extra)
        case .sync: return message
        case let .digest(d, c): return .digest(d, claims: c + extra)
        }
    }

    /// Our whole view for anti-entropy: alive claims first (so accusations that follow name a
    /// known incarnation), then suspicions, failures and departures.
    public func fullState() -> [Claim] {
        var alive: [Claim] = [isLeaving ? Claim.make(.left, subject: me, incarnation: incarnation, key: key) : myAliveClaim]
        var others: [Claim] = []
        for m in members.values.sorted(by: { $0.id < $1.id }) {
            if let a = m.aliveClaim { alive.append(a) }
            if m.status != .alive, let s = m.statusClaim { others.append(s) }
        }
        return alive + others
    }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
