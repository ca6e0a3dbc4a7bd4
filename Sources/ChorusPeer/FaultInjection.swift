import ChorusCrypto

/// Faults injected in the transport, for tests and experiments (the kernel's netem is not
/// available everywhere): drop, delay, duplicate, and a list of peers to cut off (partitions).
public struct FaultSettings: Sendable, Equatable {
    /// Probability that an outgoing datagram is dropped.
    public var drop = 0.0
    /// Probability that an outgoing datagram is sent twice.
    public var duplicate = 0.0
    /// Extra delay of each outgoing datagram, uniform in this range (seconds).
    public var delay: ClosedRange<Double> = 0...0
    /// Peers whose datagrams are dropped in both directions.
    public var blocked: Set<PeerID> = []

    public init() {}

    public var isActive: Bool { drop > 0 || duplicate > 0 || delay.upperBound > 0 || !blocked.isEmpty }

    /// What to do with one outgoing datagram: the delays at which to send copies (empty: drop).
    public func plan(to peer: PeerID?, using rng: inout some RandomNumberGenerator) -> [Double] {
        if let peer, blocked.contains(peer) { return [] }
        if drop > 0 && Double.random(in: 0..<1, using: &rng) < drop { return [] }
        let copies = duplicate > 0 && Double.random(in: 0..<1, using: &rng) < duplicate ? 2 : 1
        return (0..<copies).map { _ in delay.upperBound > 0 ? Double.random(in: delay, using: &rng) : 0 }
    }

    /// Whether an incoming datagram from this sender (read from its header) is cut off.
    public func blocks(incoming bytes: [UInt8]) -> Bool {
        guard !blocked.isEmpty, bytes.count >= 38, let sender = try? PeerID(bytes: Array(bytes[6..<38])) else { return false }
        return blocked.contains(sender)
    }
}
