import ChorusCrypto
import ChorusWire
import Synchronization

/// A member's state as the protocol orders it: at equal incarnations a later state wins.
public enum MemberStatus: UInt8, Sendable, Comparable, CustomStringConvertible, Codable {
    case alive = 1, suspect = 2, failed = 3, left = 4
    /// Removed by the network authority (`Certificate`): final, whatever the incarnation.
    case revoked = 5

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    /// Claims of this status name their signer (an accuser, or the authority), not the subject.
    var isSignedByOther: Bool { self == .suspect || self == .failed || self == .revoked }
    public var description: String {
        switch self {
        case .alive: "alive"
        case .suspect: "suspect"
        case .failed: "failed"
        case .left: "left"
        case .revoked: "revoked"
        }
    }
}

/// A signed statement about a member, the unit of membership gossip.
///
/// `alive` and `left` are signed by their subject: nobody else can announce, refute for, move or
/// retire a peer. `suspect` and `failed` are signed by the accuser: attributable, and they can only
/// name an incarnation the subject itself announced, so they cannot raise it. `revoked` is signed
/// by the network authority, named in the accuser's place, with incarnation 0: it is final.
///
/// Layout: kind u8 ‖ subject (32) ‖ incarnation u64 ‖ [alive: address (u16 length + UTF-8)]
/// ‖ [suspect, failed, revoked: accuser (32)] ‖ Ed25519 signature (64) over "chorus/v1/claim" ‖ the preceding bytes.
///
/// The fields live in one shared, immutable object (a setter makes a new one): every member of
/// a view holds one or two claims, and a simulated network holds n² views' worth, so a claim is
/// a single reference (8 bytes, one retain per copy) instead of 112 bytes with three.
public struct Claim: Hashable, Sendable, CustomStringConvertible {
    private final class Fields: Sendable {
        let status: MemberStatus
        let subject: PeerID
        let incarnation: UInt64
        let address: String
        let accuser: PeerID?
        let signature: [UInt8]

        init(status: MemberStatus, subject: PeerID, incarnation: UInt64, address: String, accuser: PeerID?, signature: [UInt8]) {
            self.status = status
            self.subject = subject
            self.incarnation = incarnation
            self.address = address
            self.accuser = accuser
            self.signature = signature
        }
    }

    private var fields: Fields

    public init(status: MemberStatus, subject: PeerID, incarnation: UInt64, address: String, accuser: PeerID?, signature: [UInt8]) {
        fields = Fields(status: status, subject: subject, incarnation: incarnation, address: address, accuser: accuser, signature: signature)
    }

    public var status: MemberStatus {
        get { fields.status }
        set { change { $0.status = newValue } }
    }
    public var subject: PeerID {
        get { fields.subject }
        set { change { $0.subject = newValue } }
    }
    public var incarnation: UInt64 {
        get { fields.incarnation }
        set { change { $0.incarnation = newValue } }
    }
    /// The subject's address ("HOST:PORT"); alive claims only.
    public var address: String {
        get { fields.address }
        set { change { $0.address = newValue } }
    }
    /// Who makes the accusation; suspect and failed claims only (for revoked: the authority).
    public var accuser: PeerID? {
        get { fields.accuser }
        set { change { $0.accuser = newValue } }
    }
    public var signature: [UInt8] {
        get { fields.signature }
        set { change { $0.signature = newValue } }
    }

    /// The setters' one way in: the shared fields are immutable, so a change makes a new object.
    private mutating func change(_ body: (inout (status: MemberStatus, subject: PeerID, incarnation: UInt64, address: String,
                                                 accuser: PeerID?, signature: [UInt8])) -> Void) {
        var f = (status: status, subject: subject, incarnation: incarnation, address: address, accuser: accuser, signature: signature)
        body(&f)
        self = Claim(status: f.status, subject: f.subject, incarnation: f.incarnation, address: f.address, accuser: f.accuser, signature: f.signature)
    }

    public static func == (a: Claim, b: Claim) -> Bool {
        a.fields === b.fields
            || (a.status == b.status && a.subject == b.subject && a.incarnation == b.incarnation && a.address == b.address
                && a.accuser == b.accuser && a.signature == b.signature)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(status)
        hasher.combine(subject)
        hasher.combine(incarnation)
        hasher.combine(address)
        hasher.combine(accuser)
        hasher.combine(signature)
    }

    static let domain = Array("chorus/v1/claim".utf8)
    public static let maxAddressBytes = 255

    /// The peer whose key must have signed this claim.
    public var signer: PeerID { accuser ?? subject }

    public var description: String {
        let who = accuser.map { " by \($0.short)" } ?? ""
        return "\(status)(\(subject.short) #\(incarnation)\(who))"
    }

    /// Makes and signs a claim. `key` must belong to the subject (alive, left) or the accuser.
    public static func make(_ status: MemberStatus, subject: PeerID, incarnation: UInt64, address: String = "", key: SigningKey) -> Claim {
        let accuser: PeerID? = status.isSignedByOther ? key.peerID : nil
        precondition(accuser != nil || key.peerID == subject, "alive and left claims are signed by their subject")
        let unsigned = Claim(status: status, subject: subject, incarnation: incarnation,
                             address: status == .alive ? address : "", accuser: accuser, signature: [])
        return Claim(status: unsigned.status, subject: subject, incarnation: incarnation, address: unsigned.address,
                     accuser: accuser, signature: key.sign(Self.domain + unsigned.unsignedBytes()))
    }

    func unsignedBytes() -> [UInt8] {
        var w = ByteWriter(capacity: 160)
        writeUnsigned(&w)
        return w.bytes
    }

    private func writeUnsigned(_ w: inout ByteWriter) {
        w.u8(status.rawValue)
        w.peerID(subject)
        w.u64(incarnation)
        if status == .alive { w.string16(Array(address.utf8)) }
        if let accuser { w.peerID(accuser) }
    }

    public func write(to w: inout ByteWriter) {
        writeUnsigned(&w)
        w.raw(signature)
    }

    public var encodedSize: Int {
        1 + 32 + 8 + (status == .alive ? 2 + address.utf8.count : 0) + (accuser == nil ? 0 : 32) + 64
    }

    /// Strict decoding of one claim; nil for anything malformed.
    public static func read(from r: inout ByteReader) -> Claim? {
        guard let raw = try? r.u8(), let status = MemberStatus(rawValue: raw),
              let subject = try? r.peerID(),
              let incarnation = try? r.u64()
        else { return nil }
        var address = ""
        if status == .alive {
            guard let bytes = try? r.string16(), bytes.count <= maxAddressBytes,
                  let text = String(validating: bytes, as: UTF8.self) else { return nil }
            address = text
        }
        var accuser: PeerID?
        if status.isSignedByOther {
            guard let id = try? r.peerID() else { return nil }
            accuser = id
        }
        guard let signature = try? r.raw(64) else { return nil }
        return Claim(status: status, subject: subject, incarnation: incarnation, address: address, accuser: accuser, signature: signature)
    }

    /// Checks the signature against the signer's key (see `ClaimVerifier` for the cached form).
    public func signatureIsValid(mode: CryptoMode = .real) -> Bool {
        signer.verify(signature: signature, of: Self.domain + unsignedBytes(), mode: mode)
    }
}

/// Verifies claim signatures, remembering the ones already checked: the same claim reaches a
/// peer many times through gossip and is verified only once.
///
/// A deliberately shared cache. It is a reference: every copy of a `MembershipInstance` (a
/// value) that holds it shares it, and a simulator may hand one to many peers. That is sound
/// because an answer depends on the claim alone (the whole claim, never a signature by itself)
/// and a lock guards the cache: sharing saves work and never changes a decision. What sharing does
/// change is `verifications` and the cache's memory, which are then the sharers' together; a
/// simulation that must count or bound them per peer gives each peer its own verifier.
public final class ClaimVerifier: Sendable {
    private struct State {
        var good = Set<Claim>()  // whole claims: a signature alone must not vouch for other content
        var verifications = 0
    }

    private let state = Mutex(State())
    public let capacity: Int
    /// How signatures are checked (`.simulated` only in simulations; see `CryptoMode`).
    public let mode: CryptoMode

    public init(capacity: Int = 200_000, mode: CryptoMode = .real) {
        self.capacity = capacity
        self.mode = mode
    }

    /// Signatures checked so far (cache misses), by every holder of this verifier.
    public var verifications: Int { state.withLock { $0.verifications } }

    public func isValid(_ claim: Claim) -> Bool {
        if state.withLock({ $0.good.contains(claim) }) { return true }
        // Verified outside the lock (the slow part); two holders may verify one claim at once.
        let valid = claim.signatureIsValid(mode: mode)
        state.withLock { state in
            state.verifications += 1
            guard valid else { return }
            if state.good.count >= capacity { state.good.removeAll(keepingCapacity: true) }
            state.good.insert(claim)
        }
        return valid
    }
}
