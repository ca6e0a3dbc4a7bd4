import ChorusCrypto
import Testing
@_spi(Simulation) @testable import ChorusMembership

/// The indexes that keep hot paths from scanning every member, and the view digest behind cheap
/// anti-entropy: both must always agree with a brute-force recomputation from `members`.
@Suite("member indexes and view digests")
struct IndexAndDigestTests {
    static func bruteLive(_ m: MembershipInstance) -> [PeerID] {
        [m.me] + m.members.values.filter(\.isLive).map(\.id).sorted()
    }

    static func bruteDigest(_ m: MembershipInstance) -> UInt64 {
        m.members.values.filter(\.isLive).reduce(m.isLeaving ? 0 : MembershipInstance.syncHash(m.me, incarnation: m.incarnation)) {
            $0 ^ MembershipInstance.syncHash($1.id, incarnation: $1.incarnation)
        }
    }

    @Test("after a random history of claims and expiries, the live index and the digest match a recount", arguments: [1, 2, 3] as [UInt64])
    func randomHistory(seed: UInt64) {
        var rng = SplitMix(seed: seed)
        var m = Fixture.instance(1, knowing: Array(2...12))
        var incarnations = [UInt8: UInt64]()
        for k in UInt8(2)...20 { incarnations[k] = Fixture.base }
        var now = 0.0
        for _ in 0..<400 {
            now += Double.random(in: 0...2, using: &rng)
            let k = UInt8.random(in: 2...20, using: &rng)
            let accuser = UInt8.random(in: 2...20, using: &rng)
            let claim: Claim
            switch Int.random(in: 0..<5, using: &rng) {
            case 0:
                incarnations[k]! += 1
                claim = Fixture.alive(k, incarnation: incarnations[k]!)
            case 1: claim = Fixture.suspect(k, by: accuser == k ? 1 : accuser, incarnation: incarnations[k]!)
            case 2: claim = Fixture.failed(k, by: accuser == k ? 1 : accuser, incarnation: incarnations[k]!)
            case 3: claim = Fixture.left(k, incarnation: incarnations[k]!)
            default:
                _ = m.tick(now: now, rng: &rng)  // expires tombstones older than 30 s
                #expect(!m.tombstones.values.contains { now - $0 > Fixture.hand.tombstoneTimeout })
                #expect(Set(m.tombstones.keys) == Set(m.members.values.filter { !$0.isLive }.map(\.id)))
                continue
            }
            _ = m.receive(.gossip(claims: [claim]), from: Fixture.id(k), address: "", now: now, rng: &rng)
            #expect(m.liveMembers == Self.bruteLive(m))
            #expect(m.liveMemberCount == m.liveMembers.count)
            #expect(m.digest == Self.bruteDigest(m))
            #expect(m.liveMembersDigest == MembershipInstance.setDigest(Self.bruteLive(m)))
        }
    }

    @Test("the same live set learned in another order has the same digest; only a change of who is live changes it")
    func digestIsOrderFree() {
        // Accusations need the member first; otherwise any order.
        let alive = (UInt8(2)...9).map { Fixture.alive($0) }
        let news = [Fixture.suspect(4, by: 2), Fixture.left(7)]
        var a = Fixture.instance(1)
        var b = Fixture.instance(1)
        var rng = SplitMix(seed: 1)
        for c in alive + news { _ = a.receive(.gossip(claims: [c]), from: Fixture.id(2), address: "", now: 1, rng: &rng) }
        for c in alive.reversed() + news.reversed() { _ = b.receive(.gossip(claims: [c]), from: Fixture.id(2), address: "", now: 3, rng: &rng) }
        #expect(a.members.count == 8 && b.members.count == 8)
        #expect(a.digest == b.digest)
        // A refutation (new incarnation) or a suspicion does not change who is live: same digest.
        _ = b.receive(.gossip(claims: [Fixture.alive(3, incarnation: Fixture.base + 1)]), from: Fixture.id(3), address: "", now: 4, rng: &rng)
        _ = b.receive(.gossip(claims: [Fixture.suspect(5, by: 2)]), from: Fixture.id(2), address: "", now: 4, rng: &rng)
        #expect(a.digest == b.digest)
        // A member failing, joining or leaving does.
        _ = b.receive(.gossip(claims: [Fixture.failed(6, by: 2)]), from: Fixture.id(2), address: "", now: 5, rng: &rng)
        #expect(a.digest != b.digest)
        _ = a.receive(.gossip(claims: [Fixture.failed(6, by: 3)]), from: Fixture.id(3), address: "", now: 5, rng: &rng)
        #expect(a.digest == b.digest)
        _ = a.receive(.gossip(claims: [Fixture.alive(11)]), from: Fixture.id(11), address: "", now: 6, rng: &rng)
        #expect(a.digest != b.digest)
    }

    /// Found by `chorus simulate fuzz --seeds 73` (generator version 1): a peer that missed a
    /// restarted member's new alive claim (gossip ran out during a one-way partition) had the
    /// same id-only digest as everyone, so no sync ever repaired it.
    @Test("a member restarted with a new boot epoch changes the digest, and a digest exchange then repairs the stale view (fuzz seed 73)")
    func restartChangesDigest() {
        var rng = SplitMix(seed: 1)
        var stale = Fixture.instance(1, knowing: [2, 3])
        var fresh = Fixture.instance(4, knowing: [1, 2, 3])
        _ = stale.receive(.gossip(claims: [Fixture.alive(4)]), from: Fixture.id(4), address: "", now: 1, rng: &rng)
        #expect(stale.digest == fresh.digest, "the same members at the same boots")
        let reboot = Fixture.base + (7 << 16)  // peer 3 restarted 7 s later
        _ = fresh.receive(.gossip(claims: [Fixture.alive(3, incarnation: reboot)]), from: Fixture.id(3), address: "", now: 2, rng: &rng)
        #expect(stale.digest != fresh.digest)
        // The digest exchange: the stale peer's digest differs, so it is sent a full sync.
        let answer = stale.receive(.digest(fresh.digest, claims: []), from: Fixture.id(4), address: Fixture.address(4), now: 3, rng: &rng)
        let request = try! #require(answer.sends.first { if case .sync = $0.message { true } else { false } })
        let reply = fresh.receive(request.message, from: Fixture.id(1), address: Fixture.address(1), now: 3, rng: &rng)
        let response = try! #require(reply.sends.first { if case .sync(true, _) = $0.message { true } else { false } })
        _ = stale.receive(response.message, from: Fixture.id(4), address: Fixture.address(4), now: 3, rng: &rng)
        #expect(stale.members[Fixture.id(3)]?.incarnation == reboot)
        #expect(stale.digest == fresh.digest)
    }

    @Test("a periodic sync sends a digest; equal views answer nothing, different views answer with a full sync request")
    func digestSync() {
        var settings = Fixture.hand
        settings.syncInterval = 5
        var a = Driver(Fixture.instance(1, knowing: [2, 3], settings: settings), seed: 1)
        a.responsive = [Fixture.id(2), Fixture.id(3)]
        a.run(until: 8)
        let digests = a.log.compactMap { entry -> (UInt64, PeerID)? in
            if case let .send(.digest(d, _), to, _) = entry.directive { return (d, to) }
            return nil
        }
        let first = try! #require(digests.first)
        #expect(first.0 == a.instance.digest)
        #expect(!a.log.contains { if case .send(.sync, _, _) = $0.directive { true } else { false } }, "no full view sent for a periodic sync")

        var same = Driver(Fixture.instance(2, knowing: [1, 3]), seed: 2)
        #expect(same.receive(.digest(a.instance.digest, claims: []), from: Fixture.id(1), at: 1).sends.isEmpty)
        var other = Driver(Fixture.instance(3, knowing: [1]), seed: 3)  // does not know 2
        let reply = other.receive(.digest(a.instance.digest, claims: []), from: Fixture.id(1), at: 1)
        #expect(reply.sends.count == 1)
        if case let .sync(isResponse, claims)? = reply.sends.first?.message {
            #expect(!isResponse && claims == other.instance.fullState())
        } else {
            Issue.record("expected a full sync request, got \(reply)")
        }
    }

    @Test("new membership settings are validated by name",
          arguments: ["joinRetryInterval", "strangerSyncInterval", "strangersRemembered", "failedSyncFraction", "relayNackFraction"])
    func settingsValidated(field: String) {
        var s = MembershipSettings.lan
        #expect(s.problems().isEmpty)
        switch field {
        case "joinRetryInterval": s.joinRetryInterval = 0
        case "strangerSyncInterval": s.strangerSyncInterval = -1
        case "strangersRemembered": s.strangersRemembered = 0
        case "failedSyncFraction": s.failedSyncFraction = 1.5
        default: s.relayNackFraction = 0
        }
        #expect(s.problems().count == 1 && s.problems()[0].hasPrefix(field), "\(s.problems())")
    }
}

/// Every peer holds an entry for every member (n² in a simulation): id, address and the time of
/// the last change are read from the claims and the tombstones instead of being stored again.
@Test("a member entry stays 32 bytes, and its id and address come from its claims")
func memberEntrySize() {
    #expect(MemoryLayout<Member>.stride == 32)
    let alive = Member(incarnation: Fixture.base, status: .alive, aliveClaim: Fixture.alive(3), statusClaim: nil)
    #expect(alive.id == Fixture.id(3) && alive.address == Fixture.address(3))
    let left = Member(incarnation: Fixture.base, status: .left, aliveClaim: nil, statusClaim: Fixture.left(4))
    #expect(left.id == Fixture.id(4) && left.address == "")
}

/// A simulation starts every peer from one shared view: the result must be exactly the view the
/// peer would have built from the claims, and stay its own when either side changes later.
@Test("a view preloaded by sharing another equals one built from the claims, and changes apart from it")
func preloadSharing() {
    let everyone = Array(UInt8(1)...9)
    let first = Fixture.instance(1, knowing: everyone)
    var shared = MembershipInstance(key: Fixture.key(5), address: Fixture.address(5), incarnation: Fixture.base, settings: Fixture.hand,
                                    now: 0, unixTimeAtZero: Fixture.unixTimeAtZero)
    shared.preload(sharing: first, now: 0)
    let built = Fixture.instance(5, knowing: everyone)
    #expect(shared.liveMembers == built.liveMembers)
    #expect(shared.digest == built.digest && shared.liveMembersDigest == built.liveMembersDigest)
    #expect(shared.members[Fixture.id(5)] == nil && shared.members[Fixture.id(1)] != nil)
    #expect(Set(shared.members.keys) == Set(built.members.keys))
    #expect(shared.members.allSatisfy { built.members[$0.key] == $0.value })
    #expect(IndexAndDigestTests.bruteLive(shared) == shared.liveMembers)

    var rng = SplitMix(seed: 1)
    _ = shared.receive(.gossip(claims: [Fixture.left(3)]), from: Fixture.id(2), address: "", now: 1, rng: &rng)
    #expect(shared.status(of: Fixture.id(3)) == .left)
    #expect(first.status(of: Fixture.id(3)) == .alive)
    #expect(!shared.liveMembers.contains(Fixture.id(3)) && first.liveMembers.contains(Fixture.id(3)))
}
