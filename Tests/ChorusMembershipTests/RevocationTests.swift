import ChorusCrypto
import Testing
@_spi(Simulation) @testable import ChorusMembership

/// Revocations: `revoked` claims signed by the network authority (docs/security.md, "Admission
/// and revocation").
@Suite("Revocation")
struct RevocationTests {
    static let authority = Fixture.key(200)

    static func revocation(_ k: UInt8, by signer: SigningKey = authority) -> Claim {
        Claim.make(.revoked, subject: Fixture.id(k), incarnation: 0, key: signer)
    }

    /// Peer `k` trusting `authority`, knowing `peers`.
    static func instance(_ k: UInt8, knowing peers: [UInt8], authority: PeerID? = RevocationTests.authority.peerID) -> MembershipInstance {
        var instance = MembershipInstance(key: Fixture.key(k), address: Fixture.address(k), incarnation: Fixture.base, settings: Fixture.hand,
                                          now: 0, unixTimeAtZero: Fixture.unixTimeAtZero, authority: authority)
        instance.preload(peers.filter { $0 != k }.map { Fixture.alive($0) }, now: 0)
        return instance
    }

    @Test("a revocation by the authority takes the member out for good: gossiped on, kept in syncs, never revived, never expired")
    func revocationIsFinal() throws {
        let b = Fixture.id(2)
        var d = Driver(Self.instance(1, knowing: [2, 3, 4]))
        d.responsive = [Fixture.id(3), Fixture.id(4)]
        #expect(d.receive(.gossip(claims: [Self.revocation(2)]), from: Fixture.id(3), at: 0.1).events == [.revoked(b)])
        #expect(d.instance.status(of: b) == .revoked)
        #expect(!d.instance.liveMembers.contains(b))
        #expect(d.instance.fullState().contains(Self.revocation(2)), "a sync carries it to peers that missed the gossip")
        #expect(d.instance.revocations == [Self.revocation(2)])

        // Gossiped on: the next rounds carry it to other members.
        d.run(until: 2)
        let carried = d.log.contains { entry in
            guard case let .send(message, _, _) = entry.directive else { return false }
            return message.claims.contains(Self.revocation(2))
        }
        #expect(carried)

        // Nothing the member (or anyone) says brings it back, whatever the incarnation.
        let comeback = Fixture.alive(2, incarnation: Fixture.base + (1 << 16))
        #expect(d.receive(.gossip(claims: [comeback, Fixture.left(2, incarnation: Fixture.base + (2 << 16))]), from: Fixture.id(3), at: 2.1).events.isEmpty)
        #expect(d.instance.status(of: b) == .revoked)
        #expect(d.receive(.gossip(claims: [Self.revocation(2)]), from: Fixture.id(4), at: 2.2).events.isEmpty, "a second copy changes nothing")

        // Long after any tombstone would have expired, it is still held.
        d.run(until: 3 * Fixture.hand.tombstoneTimeout)
        #expect(d.instance.status(of: b) == .revoked)
        #expect(!d.events.contains { $0.event == .removed(b) })
        #expect(!d.pings.contains { $0.time > 0.1 && $0.to == b }, "nobody probes a revoked member")
    }

    @Test("revocations signed by anyone but the trusted authority are refused and counted")
    func onlyTheAuthorityRevokes() {
        var d = Driver(Self.instance(1, knowing: [2, 3]))
        let byMember = Self.revocation(2, by: Fixture.key(3))
        let byOtherAuthority = Self.revocation(2, by: Fixture.key(201))
        #expect(d.receive(.gossip(claims: [byMember, byOtherAuthority]), from: Fixture.id(3), at: 0.1).events.isEmpty)
        #expect(d.instance.rejections[.notFromAuthority] == 2)
        #expect(d.instance.status(of: Fixture.id(2)) == .alive)

        // The authority's id with a signature by someone else: a bad signature.
        var forged = Self.revocation(2, by: Fixture.key(3))
        forged.accuser = Self.authority.peerID
        #expect(d.receive(.gossip(claims: [forged]), from: Fixture.id(3), at: 0.2).events.isEmpty)
        #expect(d.instance.rejections[.badSignature] == 1)

        // A peer that trusts no authority accepts no revocation at all.
        var open = Driver(Self.instance(1, knowing: [2, 3], authority: nil))
        #expect(open.receive(.gossip(claims: [Self.revocation(2)]), from: Fixture.id(3), at: 0.1).events.isEmpty)
        #expect(open.instance.rejections[.notFromAuthority] == 1)
        #expect(open.instance.status(of: Fixture.id(2)) == .alive)
    }

    @Test("a revocation of an identity never seen keeps it out when it turns up; one about this peer is reported")
    func unknownSubjectAndSelf() {
        var d = Driver(Self.instance(1, knowing: [2]))
        #expect(d.receive(.gossip(claims: [Self.revocation(9)]), from: Fixture.id(2), at: 0.1).events == [.revoked(Fixture.id(9))])
        #expect(d.receive(.gossip(claims: [Fixture.alive(9)]), from: Fixture.id(2), at: 0.2).events.isEmpty)
        #expect(!d.instance.liveMembers.contains(Fixture.id(9)))

        #expect(d.receive(.gossip(claims: [Self.revocation(1)]), from: Fixture.id(2), at: 0.3).events == [.revoked(Fixture.id(1))])
    }

    @Test("a revocation survives the round trip through the wire format")
    func encoding() throws {
        let claim = Self.revocation(2)
        #expect(claim.encodedSize == 1 + 32 + 8 + 32 + 64)
        let message = MembershipMessage.gossip(claims: [claim])
        let decoded = try #require(MembershipMessage.decode(message.encoded()))
        #expect(decoded == message)
        #expect(decoded.claims[0].signer == Self.authority.peerID && decoded.claims[0].signatureIsValid())
    }
}
