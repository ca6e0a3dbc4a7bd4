/// A network authority's statement that an identity may join: admission beyond the network key.
///
/// The authority is an Ed25519 key pair of its own (`chorus keygen --authority`), kept off the
/// peers; each peer is configured with its public half and holds a certificate for its own
/// identity (`chorus certify`), which it shows in every hello. A peer configured with an
/// authority opens a session only for an identity whose hello carries a certificate that
/// authority signed, so a network key alone no longer lets anyone in under any number of names.
///
/// Layout (96 bytes): subject (32) ‖ Ed25519 signature (64) by the authority over
/// "chorus/v1/certificate" ‖ subject. Certificates do not expire: an identity is removed by a
/// revocation, which the authority signs too and the members spread (docs/security.md).
public struct Certificate: Equatable, Sendable {
    public static let byteCount = PeerID.byteCount + Ed25519.signatureByteCount
    static let domain = Array("chorus/v1/certificate".utf8)

    public let subject: PeerID
    public let signature: [UInt8]

    /// Signs a certificate for `subject` with the authority's key.
    public init(subject: PeerID, authority: SigningKey) {
        self.subject = subject
        self.signature = authority.sign(Self.domain + subject.bytes)
    }

    /// Reads the 96 bytes of a certificate (nil for any other length). Says nothing of validity:
    /// see `isValid(authority:mode:)`.
    public init?(bytes: some Collection<UInt8>) {
        guard bytes.count == Self.byteCount else { return nil }
        let all = Array(bytes)
        subject = all.withUnsafeBytes { PeerID(exactly: UnsafeRawBufferPointer(rebasing: $0[..<PeerID.byteCount])) }
        signature = Array(all[PeerID.byteCount...])
    }

    public var bytes: [UInt8] { subject.bytes + signature }

    /// Whether `authority` signed this certificate (checked the way `mode` says).
    public func isValid(authority: PeerID, mode: CryptoMode = .real) -> Bool {
        authority.verify(signature: signature, of: Self.domain + subject.bytes, mode: mode)
    }
}

/// What a peer needs for admission: the authority it trusts and its own certificate.
public struct Admission: Sendable {
    /// The network authority's public key: only identities it certified are admitted.
    public let authority: PeerID
    /// This peer's certificate, shown in every hello.
    public let certificate: Certificate

    public init(authority: PeerID, certificate: Certificate) {
        self.authority = authority
        self.certificate = certificate
    }
}
