import ChorusCrypto
import Testing
@_spi(Simulation) @testable import ChorusMembership

@Suite("Dissemination")
struct DisseminationTests {
    /// Peer `k` knowing `count` others whose addresses are all 14 bytes long (claims of 121 bytes).
    private func instance(_ k: UInt8 = 10, knowingCount count: Int, settings: MembershipSettings = Fixture.hand) -> MembershipInstance {
        var instance = MembershipInstance(key: Fixture.key(k), address: Fixture.address(k), incarnation: Fixture.base, settings: settings,
                                          now: 0, unixTimeAtZero: Fixture.unixTimeAtZero)
        instance.preload((0..<count).map { i in
            let key = try! SigningKey(seed: [UInt8(i & 0xFF), UInt8(i >> 8), 0x5A] + [UInt8](repeating: 0x33, count: 29))
            return Claim.make(.alive, subject: key.peerID, incarnation: Fixture.base, address: "10.1.\(i / 250).\(i % 250 + 1):7", key: key)
        }, now: 0)
        return instance
    }

    @Test("retransmitLimit = retransmitMultiplier · ⌈log10(n + 1)⌉ (at least one round)",
          arguments: [(1, 3), (2, 3), (9, 3), (10, 6), (99, 6), (100, 9)])
    func retransmitLimitFormula(n: Int, expected: Int) {
        let instance = instance(knowingCount: n - 1)
        #expect(instance.liveMembers.count == n)
        #expect(instance.retransmitLimit == expected)
    }

    @Test("a claim is piggybacked exactly retransmitLimit times, then dropped", arguments: [3, 9, 10, 100])
    func stopsAfterLimit(n: Int) throws {
        var a = instance(knowingCount: n - 1)
        var rng = SplitMix(seed: 1)
        let live = a.liveMembers.filter { $0 != a.me }
        // An accusation about a known member: it is queued and does not change n.
        let accuserKey = try SigningKey(seed: [UInt8(0), 0, 0x5A] + [UInt8](repeating: 0x33, count: 29))
        #expect(live.contains(accuserKey.peerID))
        let subject = try #require(live.first { $0 != accuserKey.peerID })
        let claim = Claim.make(.suspect, subject: subject, incarnation: Fixture.base, key: accuserKey)
        #expect(a.apply(claim, now: 0).count == 1)
        #expect(a.liveMembers.count == n)
        let limit = a.retransmitLimit
        var carried = 0
        for seq in 0..<UInt32(limit + 3) {
            let ack = a.receive(.ping(sequence: seq, claims: []), from: accuserKey.peerID, address: "", now: 0.01, rng: &rng).acks
            if ack.first?.claims.contains(claim) == true { carried += 1 }
        }
        #expect(carried == limit)
        #expect(a.pendingClaims == 0)
    }

    @Test("least-sent claims go first, newest first among equals, as many as fit")
    func leastSentFirst() throws {
        var settings = Fixture.hand
        settings.maxMessageBytes = 400  // an ack has room for three 121-byte claims
        var a = MembershipInstance(key: Fixture.key(10), address: Fixture.address(10), incarnation: Fixture.base, settings: settings,
                                   now: 0, unixTimeAtZero: Fixture.unixTimeAtZero)
        a.preload([Fixture.alive(11)], now: 0)
        let p = (21...24).map { Fixture.alive(UInt8($0)) }  // joined in this order: P1 oldest … P4 newest
        for claim in p { #expect(a.apply(claim, now: 0).count == 1) }
        #expect(a.retransmitLimit == 3)
        #expect(a.pendingClaims == 4)
        var rng = SplitMix(seed: 1)
        var carried: [[Claim]] = []
        for seq in 1...5 {
            let acks = a.receive(.ping(sequence: UInt32(seq), claims: []), from: Fixture.id(11), address: "", now: 1, rng: &rng).acks
            carried.append(try #require(acks.first).claims)
        }
        #expect(carried[0] == [p[3], p[2], p[1]])  // all unsent: newest first
        #expect(carried[1] == [p[0], p[3], p[2]])  // P1 still unsent; then the newest of the once-sent
        #expect(carried[2] == [p[1], p[0], p[3]])  // P2, P1 sent once; P4 twice (third and last time)
        #expect(carried[3] == [p[2], p[1], p[0]])  // all at two: their last time
        #expect(carried[4] == [])
        #expect(a.pendingClaims == 0)
    }

    @Test("a newer claim about a member replaces the queued one and starts its count afresh")
    func newerClaimReplaces() throws {
        var a = Fixture.instance(1, knowing: [2, 3])
        var rng = SplitMix(seed: 1)
        _ = a.apply(Fixture.suspect(2, by: 3), now: 0)
        _ = a.receive(.ping(sequence: 1, claims: []), from: Fixture.id(3), address: "", now: 0, rng: &rng)
        let refutation = Fixture.alive(2, incarnation: Fixture.base + 1)
        _ = a.apply(refutation, now: 0)
        #expect(a.pendingClaims == 1)
        var carried = 0
        for seq in 2...10 {
            let ack = try #require(a.receive(.ping(sequence: UInt32(seq), claims: []), from: Fixture.id(3), address: "", now: 0, rng: &rng).acks.first)
            #expect(!ack.claims.contains(Fixture.suspect(2, by: 3)))
            if ack.claims.contains(refutation) { carried += 1 }
        }
        #expect(carried == a.retransmitLimit)
    }

    @Test("gossip pushes pending claims to gossipFanout members every gossipInterval")
    func gossipPushes() {
        var d = Driver(Fixture.instance(1, knowing: [2, 3, 4, 5, 6]))
        d.responsive = Set((2...6).map { Fixture.id(UInt8($0)) })
        d.run(until: 0.9)  // before the first probe
        #expect(d.log.isEmpty, "nothing to say, nothing sent")
        d.receive(.gossip(claims: [Fixture.suspect(2, by: 3)]), from: Fixture.id(3), at: 0.9)
        func gossipSends(_ out: [MembershipDirective]) -> [(message: MembershipMessage, to: PeerID)] {
            out.sends.filter { if case .gossip = $0.message { true } else { false } }
        }
        var out = d.step()
        while gossipSends(out).isEmpty && d.now < 2 { out = d.step() }
        #expect(d.now <= 0.9 + Fixture.hand.gossipInterval + 1e-9)
        let gossip = gossipSends(out)
        #expect(gossip.count == Fixture.hand.gossipFanout)
        #expect(Set(gossip.map(\.to)).count == gossip.count)
        #expect(gossip.allSatisfy { $0.message.claims == [Fixture.suspect(2, by: 3)] })
    }
}
