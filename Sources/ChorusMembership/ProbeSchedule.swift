import ChorusCrypto

/// The order in which one peer probes the others: every live member once per round, in a
/// shuffled order, a newcomer inserted somewhere in the rest of the round (SWIM's round-robin
/// probe selection, as memberlist's `nextProbe`).
struct ProbeSchedule: Sendable {
    /// This round's order, as positions in `snapshot` (then in `newcomers`): 4 bytes a member,
    /// not a 32-byte id. The snapshot shares the live index's storage until the live set
    /// changes, so a round no longer copies every id: at 4096 members those copies were half a
    /// gigabyte of fresh pages in the first second of a simulation.
    private var order: [UInt32] = []
    private var snapshot: [PeerID] = []
    /// Members that became live during the round, after the snapshot was taken.
    private var newcomers: [PeerID] = []
    private var index = 0
    /// The first round starts at a random place in its order, so peers started together do not
    /// begin (and end) their rounds together. Synchronised rounds leave a member that crashes
    /// late in a round unprobed until the next round begins: everyone has probed it already.
    private var firstRound = true

    /// Probes left in this round.
    var probesLeftInRound: Int { max(0, order.count - index) }
    func isDueThisRound(_ peer: PeerID) -> Bool { (index..<order.count).contains { id(at: $0) == peer } }

    /// The next live member in the order (`member` says whether an id is still a live member,
    /// and returns its entry); a finished round reshuffles `liveIDs` into a new one.
    mutating func next(liveIDs: [PeerID], rng: inout some RandomNumberGenerator,
                       member: (PeerID) -> Member?) -> (PeerID, Member)? {
        for _ in 0..<2 {
            while index < order.count {
                let id = id(at: index)
                index += 1
                if let m = member(id), m.isLive { return (id, m) }
            }
            // One pass done: reshuffle, so every member is probed once per round in random order.
            (snapshot, newcomers) = (liveIDs, [])
            order = Array(0..<UInt32(liveIDs.count))
            order.shuffle(using: &rng)
            index = firstRound && !order.isEmpty ? Int.random(in: 0..<order.count, using: &rng) : 0
            firstRound = false
            if order.isEmpty { return nil }
        }
        return nil
    }

    /// Puts a member that became live somewhere in the rest of this round (as memberlist does),
    /// so a newcomer is probed soon. The position mixes both ids: every observer puts it
    /// somewhere else, so probes of one member stay spread out in time.
    mutating func insert(_ peer: PeerID, observer me: PeerID) {
        var mix = peer.leadingWord ^ me.leadingWord
        mix = (mix ^ (mix >> 31)) &* 0x9E37_79B9_7F4A_7C15
        let start = min(index, order.count)
        if (start..<order.count).contains(where: { id(at: $0) == peer }) { return }  // still due this round
        let remaining = order.count - index + 1
        newcomers.append(peer)
        order.insert(UInt32(snapshot.count + newcomers.count - 1), at: index + Int(mix % UInt64(max(1, remaining))))
    }

    /// Forgets the order: the next probe shuffles a new one (with the caller's randomness).
    mutating func reset() {
        (order, snapshot, newcomers) = ([], [], [])
        (index, firstRound) = (0, true)
    }

    private func id(at position: Int) -> PeerID {
        let i = Int(order[position])
        return i < snapshot.count ? snapshot[i] : newcomers[i - snapshot.count]
    }
}
