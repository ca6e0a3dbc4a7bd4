import ChorusCrypto
import ChorusWire

/// The SWIM messages one member sends another. Every message carries piggybacked claims.
/// The sender is not in the message: the datagram layer authenticates it.
public enum MembershipMessage: Equatable, Sendable {
    /// "Are you alive?" The claims start with any suspicion about the target (Lifeguard's buddy system).
    case ping(sequence: UInt32, claims: [Claim])
    case ack(sequence: UInt32, claims: [Claim])
    /// "Please ping `target` for me" (indirect probe).
    case pingRequest(sequence: UInt32, target: PeerID, address: String, claims: [Claim])
    /// From a relay: the target did not answer me either (so the asker's own link is fine).
    case nack(sequence: UInt32, claims: [Claim])
    /// Dissemination only.
    case gossip(claims: [Claim])
    /// Anti-entropy: the sender's whole view; a request is answered with the receiver's view.
    /// Joining is a sync request to a seed.
    case sync(isResponse: Bool, claims: [Claim])
    /// Cheap anti-entropy: a digest of the sender's whole view (`MembershipInstance.digest`). A
    /// receiver whose view differs answers with a full sync request; equal views cost one datagram.
    case digest(UInt64, claims: [Claim])

    public var claims: [Claim] {
        switch self {
        case let .ping(_, c), let .ack(_, c), let .pingRequest(_, _, _, c), let .nack(_, c), let .gossip(c), let .sync(_, c),
             let .digest(_, c): c
        }
    }

    /// Syncs may be large: they travel as objects (chunked); everything else fits one datagram.
    public var isBulk: Bool {
        if case .sync = self { return true }
        return false
    }

    enum Tag: UInt8 { case ping = 1, ack, pingRequest, nack, gossip, syncRequest, syncResponse, digest }

    /// Layout: tag u8 ‖ [sequence u32] ‖ [ping request: target (32) ‖ address (u16 + UTF-8)] ‖
    /// [digest: digest u64] ‖ claim count u16 ‖ claims.
    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 64 + claims.reduce(0) { $0 + $1.encodedSize })
        switch self {
        case let .ping(seq, _): w.u8(Tag.ping.rawValue); w.u32(seq)
        case let .ack(seq, _): w.u8(Tag.ack.rawValue); w.u32(seq)
        case let .pingRequest(seq, target, address, _):
            w.u8(Tag.pingRequest.rawValue); w.u32(seq); w.raw(target.bytes); w.string16(Array(address.utf8))
        case let .nack(seq, _): w.u8(Tag.nack.rawValue); w.u32(seq)
        case .gossip: w.u8(Tag.gossip.rawValue)
        case let .sync(isResponse, _): w.u8(isResponse ? Tag.syncResponse.rawValue : Tag.syncRequest.rawValue)
        case let .digest(digest, _): w.u8(Tag.digest.rawValue); w.u64(digest)
        }
        w.u16(UInt16(claims.count))
        for claim in claims { claim.write(to: &w) }
        return w.bytes
    }

    /// Strict decoding; nil for unknown tags, bad claims or trailing bytes.
    public static func decode(_ bytes: [UInt8]) -> MembershipMessage? {
        var r = ByteReader(bytes)
        guard let raw = try? r.u8(), let tag = Tag(rawValue: raw) else { return nil }
        var sequence: UInt32 = 0
        var target: PeerID?
        var address = ""
        var digest: UInt64 = 0
        if tag == .digest {
            guard let d = try? r.u64() else { return nil }
            digest = d
        } else if tag != .gossip && tag != .syncRequest && tag != .syncResponse {
            guard let s = try? r.u32() else { return nil }
            sequence = s
        }
        if tag == .pingRequest {
            guard let id = try? r.peerID(), let a = try? r.string16(),
                  a.count <= Claim.maxAddressBytes, let text = String(validating: a, as: UTF8.self) else { return nil }
            target = id
            address = text
        }
        guard let count = try? r.u16() else { return nil }
        var claims: [Claim] = []
        claims.reserveCapacity(Int(count))
        for _ in 0..<count {
            guard let claim = Claim.read(from: &r) else { return nil }
            claims.append(claim)
        }
        guard (try? r.finish()) != nil else { return nil }
        switch tag {
        case .ping: return .ping(sequence: sequence, claims: claims)
        case .ack: return .ack(sequence: sequence, claims: claims)
        case .pingRequest: return .pingRequest(sequence: sequence, target: target!, address: address, claims: claims)
        case .nack: return .nack(sequence: sequence, claims: claims)
        case .gossip: return .gossip(claims: claims)
        case .syncRequest: return .sync(isResponse: false, claims: claims)
        case .syncResponse: return .sync(isResponse: true, claims: claims)
        case .digest: return .digest(digest, claims: claims)
        }
    }

    /// Bytes of the message without claims (for fitting claims into a datagram).
    var headerSize: Int {
        switch self {
        case let .pingRequest(_, _, address, _): return 1 + 4 + 32 + 2 + address.utf8.count + 2
        case .gossip, .sync: return 1 + 2
        case .digest: return 1 + 8 + 2
        default: return 1 + 4 + 2
        }
    }
}
