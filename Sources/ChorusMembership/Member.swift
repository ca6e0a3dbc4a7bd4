import ChorusCrypto

/// What one peer knows about another member.
///
/// Only what the claims do not say is stored (32 bytes): every peer of a simulation holds one per
/// member, n² of them, and their memory is what a large simulation's cache misses are made of. The
/// id and address are read from the claims, the time of the last change from the tombstones.
public struct Member: Sendable, Equatable {
    public var incarnation: UInt64
    /// The latest alive claim signed by the member (where its address comes from).
    public var aliveClaim: Claim?
    /// The claim that set the current status when it is not alive.
    public var statusClaim: Claim?
    public var status: MemberStatus

    /// A member is known from an alive claim, or from the claim that made it a tombstone.
    public init(incarnation: UInt64, status: MemberStatus, aliveClaim: Claim?, statusClaim: Claim?) {
        precondition(aliveClaim != nil || statusClaim != nil, "a member is known from at least one claim")
        (self.incarnation, self.status, self.aliveClaim, self.statusClaim) = (incarnation, status, aliveClaim, statusClaim)
    }

    public var id: PeerID { (aliveClaim ?? statusClaim)!.subject }
    /// The address its latest alive claim names (empty when it never announced one).
    public var address: String { aliveClaim?.address ?? "" }
    /// Alive or suspect: still probed, still a neighbour.
    public var isLive: Bool { status == .alive || status == .suspect }
}

/// Things that happened to the view, for the shell (neighbour recomputation, logs, demo).
public enum MembershipEvent: Equatable, Sendable {
    /// A member became alive: new, or back after failing or leaving.
    case joined(PeerID, address: String)
    case suspected(PeerID, by: PeerID)
    /// A suspicion was refuted by the member.
    case refuted(PeerID)
    case failed(PeerID)
    case left(PeerID)
    /// The network authority revoked the member (or this peer itself): it is out for good.
    case revoked(PeerID)
    /// A tombstone expired.
    case removed(PeerID)
    case addressChanged(PeerID, address: String)
    /// This peer was accused and refuted with a higher incarnation.
    case refutedAccusation(incarnation: UInt64, by: PeerID)
    /// A claim signed with this peer's own key at a higher incarnation than its own: a later boot
    /// of this identity runs (at `address`, empty if it left). Two processes share one identity.
    case laterSelf(address: String, incarnation: UInt64)
    /// A member runs a later boot (its signed alive claim names a higher boot epoch, the upper
    /// bits of its incarnation): datagrams to it must name the new epoch.
    case rebooted(PeerID, epoch: UInt64)
}

/// What the instance asks its shell to do.
public enum MembershipDirective: Equatable, Sendable {
    case send(MembershipMessage, to: PeerID, address: String)
    case event(MembershipEvent)
}

/// Why a claim was not applied (counted in `MembershipInstance.rejections`).
public enum ClaimRejection: String, Sendable, CaseIterable {
    /// Signature does not verify against the subject (alive, left) or the accuser.
    case badSignature
    /// Incarnation beyond the documented ceiling (wall clock + maxIncarnationLeadSeconds, × 2¹⁶).
    case absurdIncarnation
    /// An accusation naming an incarnation the subject never announced.
    case unannouncedIncarnation
    /// An accusation about a member we do not know.
    case unknownSubject
    /// An accusation by a member whose recent accusations were proved false too often
    /// (`MembershipSettings.falseAccusationLimit`).
    case distrustedAccuser
    /// A revocation not signed by the network authority this peer trusts (or it trusts none).
    case notFromAuthority
}
