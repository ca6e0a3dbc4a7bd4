import ChorusCrypto
import Dispatch
import Testing
@testable import ChorusMembership

@Suite("Forged and stale claims")
struct ClaimValidationTests {
    /// Peer 1 knowing peers 2 and 3, alive at `Fixture.base`.
    private func observer(verifier: ClaimVerifier = ClaimVerifier(), now: Double = 0) -> MembershipInstance {
        Fixture.instance(1, knowing: [2, 3], now: now, verifier: verifier)
    }

    /// A claim whose signature is made by `signer` over the claim's own bytes (a well-formed forgery).
    private func signed(_ claim: Claim, by signer: SigningKey) -> Claim {
        var c = claim
        c.signature = signer.sign(Claim.domain + c.unsignedBytes())
        return c
    }

    @Test("an alive claim for B signed by C's key is rejected as a bad signature")
    func aliveSignedBySomeoneElse() {
        var a = observer()
        let forged = signed(Claim(status: .alive, subject: Fixture.id(2), incarnation: Fixture.base + 1, address: "203.0.113.6:1",
                                  accuser: nil, signature: []), by: Fixture.key(3))
        #expect(!forged.signatureIsValid())
        #expect(a.apply(forged, now: 1).isEmpty)
        #expect(a.rejections[.badSignature] == 1)
        #expect(a.members[Fixture.id(2)]?.incarnation == Fixture.base)
        #expect(a.members[Fixture.id(2)]?.address == Fixture.address(2))
        // Nor can C introduce a new member Z under Z's name.
        let stranger = signed(Claim(status: .alive, subject: Fixture.id(9), incarnation: Fixture.base, address: "203.0.113.9:1",
                                    accuser: nil, signature: []), by: Fixture.key(3))
        #expect(a.apply(stranger, now: 1).isEmpty)
        #expect(a.status(of: Fixture.id(9)) == nil)
        #expect(a.rejections[.badSignature] == 2)
    }

    @Test("an alive claim with a lower or equal incarnation is ignored without signature work")
    func staleAlive() {
        let verifier = ClaimVerifier()
        var a = observer(verifier: verifier)
        let before = verifier.verifications
        let older = Fixture.alive(2, incarnation: Fixture.base - 1, address: "203.0.113.2:9")
        let same = Fixture.alive(2, incarnation: Fixture.base, address: "203.0.113.2:9")
        #expect(a.apply(older, now: 1).isEmpty)
        #expect(a.apply(same, now: 1).isEmpty)
        #expect(a.members[Fixture.id(2)]?.address == Fixture.address(2))
        #expect(a.rejections.isEmpty)
        #expect(verifier.verifications == before)
        // A newer one moves the member.
        #expect(a.apply(Fixture.alive(2, incarnation: Fixture.base + 1, address: "203.0.113.2:9"), now: 1)
            == [.event(.addressChanged(Fixture.id(2), address: "203.0.113.2:9"))])
    }

    @Test("an accusation naming an incarnation the subject never announced is rejected", arguments: [MemberStatus.suspect, .failed])
    func unannouncedIncarnation(status: MemberStatus) {
        var a = observer()
        let claim = Claim.make(status, subject: Fixture.id(2), incarnation: Fixture.base + 1, key: Fixture.key(3))
        #expect(a.apply(claim, now: 1).isEmpty)
        #expect(a.rejections[.unannouncedIncarnation] == 1)
        #expect(a.status(of: Fixture.id(2)) == .alive)
        #expect(a.members[Fixture.id(2)]?.incarnation == Fixture.base)
        // An accusation about an older incarnation is simply stale.
        let old = Claim.make(status, subject: Fixture.id(2), incarnation: Fixture.base - 1, key: Fixture.key(3))
        #expect(a.apply(old, now: 1).isEmpty)
        #expect(a.status(of: Fixture.id(2)) == .alive)
        #expect(a.rejections[.unannouncedIncarnation] == 1)
    }

    @Test("incarnations above the wall-clock ceiling are rejected before any signature check")
    func absurdIncarnation() {
        let ceiling = (UInt64(Fixture.unixTimeAtZero + Fixture.hand.maxIncarnationLeadSeconds) << 16) | 0xFFFF
        let verifier = ClaimVerifier()
        var a = observer(verifier: verifier)
        let before = verifier.verifications
        #expect(a.apply(Fixture.alive(2, incarnation: ceiling + 1), now: 0).isEmpty)
        #expect(a.apply(Fixture.suspect(2, by: 3, incarnation: ceiling + 1), now: 0).isEmpty)
        #expect(a.apply(Fixture.alive(9, incarnation: .max), now: 0).isEmpty)
        #expect(a.rejections[.absurdIncarnation] == 3)
        #expect(verifier.verifications == before)
        #expect(a.members[Fixture.id(2)]?.incarnation == Fixture.base)
        #expect(a.status(of: Fixture.id(9)) == nil)

        // Exactly at the ceiling is fine.
        #expect(a.apply(Fixture.alive(2, incarnation: ceiling), now: 0) == [.event(.rebooted(Fixture.id(2), epoch: ceiling >> 16))])
        #expect(a.members[Fixture.id(2)]?.incarnation == ceiling)
        #expect(a.rejections[.absurdIncarnation] == 3)

        // The ceiling moves with the clock: ten seconds later, ceiling + 1 is acceptable.
        var later = observer(now: 10)
        #expect(later.apply(Fixture.alive(2, incarnation: ceiling + 1), now: 10) == [.event(.rebooted(Fixture.id(2), epoch: (ceiling + 1) >> 16))])
        #expect(later.members[Fixture.id(2)]?.incarnation == ceiling + 1)
        #expect(later.rejections.isEmpty)
    }

    @Test("an accusation about an unknown member is rejected", arguments: [MemberStatus.suspect, .failed])
    func unknownSubject(status: MemberStatus) {
        var a = observer()
        let claim = Claim.make(status, subject: Fixture.id(9), incarnation: Fixture.base, key: Fixture.key(3))
        #expect(a.apply(claim, now: 1).isEmpty)
        #expect(a.rejections[.unknownSubject] == 1)
        #expect(a.status(of: Fixture.id(9)) == nil)
    }

    @Test("a claim with one flipped signature bit is rejected", arguments: [0, 17, 31, 32, 63])
    func flippedSignatureByte(index: Int) {
        var a = observer()
        var claim = Fixture.alive(2, incarnation: Fixture.base + 1, address: "203.0.113.2:9")
        claim.signature[index] ^= 0x01
        #expect(!claim.signatureIsValid())
        #expect(a.apply(claim, now: 1).isEmpty)
        #expect(a.rejections[.badSignature] == 1)
        #expect(a.members[Fixture.id(2)]?.incarnation == Fixture.base)

        var accusation = Fixture.suspect(2, by: 3)
        accusation.signature[index] ^= 0x80
        #expect(a.apply(accusation, now: 1).isEmpty)
        #expect(a.rejections[.badSignature] == 2)
        #expect(a.status(of: Fixture.id(2)) == .alive)
    }

    @Test("only the subject's own alive claim raises its incarnation; an accuser cannot pump it")
    func accusationsCannotRaiseIncarnation() {
        let target = Fixture.id(2)
        // Seen by a third party.
        var observer = self.observer()
        #expect(observer.apply(Fixture.suspect(2, by: 3, incarnation: Fixture.base + 5), now: 1).isEmpty)
        #expect(observer.members[target]?.incarnation == Fixture.base)
        #expect(observer.rejections[.unannouncedIncarnation] == 1)
        // A valid accusation makes it suspect at its current incarnation, no higher.
        #expect(observer.apply(Fixture.suspect(2, by: 3), now: 1) == [.event(.suspected(target, by: Fixture.id(3)))])
        #expect(observer.members[target]?.incarnation == Fixture.base)
        // Only the subject's signature lifts the suspicion.
        #expect(observer.apply(Fixture.alive(2, incarnation: Fixture.base + 1), now: 2) == [.event(.refuted(target))])
        #expect(observer.members[target]?.incarnation == Fixture.base + 1)

        // Seen by the subject itself: it refutes only accusations at its own incarnation, by exactly one.
        var subject = Fixture.instance(2, knowing: [1, 3])
        #expect(subject.apply(Fixture.suspect(2, by: 3, incarnation: Fixture.base + 5), now: 1).isEmpty)
        #expect(subject.rejections[.unannouncedIncarnation] == 1)
        #expect(subject.incarnation == Fixture.base)
        #expect(subject.apply(Fixture.suspect(2, by: 3), now: 1) == [.event(.refutedAccusation(incarnation: Fixture.base + 1, by: Fixture.id(3)))])
        #expect(subject.incarnation == Fixture.base + 1)
        // Replaying the old accusation changes nothing.
        #expect(subject.apply(Fixture.failed(2, by: 3), now: 2).isEmpty)
        #expect(subject.incarnation == Fixture.base + 1)
        // A forged accusation (accuser field swapped) does not make it refute either.
        var forged = Fixture.suspect(2, by: 3, incarnation: Fixture.base + 1)
        forged.accuser = Fixture.id(1)
        #expect(subject.apply(forged, now: 3).isEmpty)
        #expect(subject.rejections[.badSignature] == 1)
        #expect(subject.incarnation == Fixture.base + 1)
    }

    @Test("the verifier cache is keyed on whole claims: a reused signature does not vouch for altered content")
    func verifierCacheIsKeyedOnWholeClaims() {
        let verifier = ClaimVerifier()
        let genuine = Fixture.alive(2, incarnation: Fixture.base + 1, address: "203.0.113.2:9")
        #expect(verifier.isValid(genuine))
        #expect(verifier.isValid(genuine))
        #expect(verifier.verifications == 1, "the second check is served from the cache")

        var moved = genuine
        moved.address = "198.51.100.66:1"
        var bumped = genuine
        bumped.incarnation += 1
        var other = genuine
        other.subject = Fixture.id(3)
        var retyped = genuine
        retyped.status = .left
        retyped.address = ""
        for altered in [moved, bumped, other, retyped] {
            #expect(!verifier.isValid(altered))
            #expect(!verifier.isValid(altered), "a failure is not cached as a success")
        }
        #expect(verifier.verifications == 9)

        // Through an instance sharing the warmed cache.
        var a = observer(verifier: verifier)
        #expect(a.apply(genuine, now: 1) == [.event(.addressChanged(Fixture.id(2), address: "203.0.113.2:9"))])
        bumped.address = "198.51.100.66:1"
        #expect(a.apply(bumped, now: 1).isEmpty)
        #expect(a.rejections[.badSignature] == 1)
        #expect(a.members[Fixture.id(2)]?.address == "203.0.113.2:9")
    }

    @Test("the verifier forgets everything when full, and still answers correctly")
    func verifierCapacity() {
        let verifier = ClaimVerifier(capacity: 2)
        let claims = (2...5).map { Fixture.alive(UInt8($0)) }
        for c in claims { #expect(verifier.isValid(c)) }
        #expect(verifier.verifications == 4)
        for c in claims { #expect(verifier.isValid(c)) }
        #expect(verifier.verifications > 4)
    }

    @Test("a verifier shared by copies of instances and by threads stays consistent")
    func sharedVerifierIsSafe() {
        // A MembershipInstance is a value that holds its verifier by reference: copies share it.
        let verifier = ClaimVerifier(capacity: 64)
        let claims = (2...40).map { Fixture.alive(UInt8($0)) }
        let forged: Claim = { var c = claims[0]; c.incarnation += 1; return c }()
        DispatchQueue.concurrentPerform(iterations: 4) { _ in
            for _ in 0..<50 {
                for c in claims { precondition(verifier.isValid(c), "a genuine claim was refused") }
                precondition(!verifier.isValid(forged), "a forged claim was accepted")
            }
        }
        // Misses: at least one per claim, and every forged check (failures are never cached).
        #expect(verifier.verifications >= claims.count + 200)
        #expect(verifier.verifications <= 4 * 50 * (claims.count + 1))
    }
}
