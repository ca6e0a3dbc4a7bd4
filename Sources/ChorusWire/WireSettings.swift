import ChorusCrypto

/// Settings of the datagram layer; every field has a default and a reason.
public struct WireSettings: Sendable, Equatable {
    /// Largest datagram sent or accepted, header and tags included. 1200 bytes stays below the
    /// path MTU of nearly every network, so datagrams are never IP-fragmented.
    public var maxDatagramSize = 1200
    /// Largest object (e.g. a parameter vector) accepted: 64 MiB, room for 16 million float32s.
    public var maxObjectBytes = 64 << 20
    /// Memory all incomplete objects together may hold.
    public var reassemblyBudgetBytes = 256 << 20
    /// Memory one sender's incomplete objects may hold: a full-size object plus slack.
    public var perSenderBudgetBytes = 80 << 20
    /// Seconds after which an incomplete object is dropped.
    public var objectTimeout = 5.0
    /// Minimum seconds between unsolicited hellos to one peer (when it does not know our epoch).
    public var helloInterval = 1.0
    /// Bytes queued for one peer while its epoch is unknown; more is dropped and counted.
    public var pendingBytesPerPeer = 32 << 20
    /// Seconds queued datagrams wait for a peer's hello before they are dropped.
    public var pendingTimeout = 10.0
    /// Peers whose session state (epoch, replay window) is kept; the least recently heard is forgotten.
    public var maxSessions = 65_536
    /// Datagrams per second that may open a session or move a peer to a new epoch (hellos from
    /// strangers, restarts), with bursts of twice as many. Each costs a signature check and a
    /// session: a flood of fresh identities is cut here, before any of that work, so the peer
    /// keeps answering the members it has (issue 21). Sessions already open are not limited.
    public var newSessionsPerSecond = 500.0
    /// Of those, how many one source address may take a second (the transport's text for it,
    /// host and port; bursts of twice as many). A peer sends from one socket in one name, so an
    /// honest source opens one session at a time; one process making up identities takes this
    /// share of the budget, not all of it, and newcomers from elsewhere still get in. A flood
    /// from spoofed or many sources meets the total alone.
    public var newSessionsPerSourcePerSecond = 10.0
    /// Seconds after which the session of a peer that is no member and has not been heard from
    /// is forgotten (`WireEndpoint.forgetIdleSessions`): Sybil identities do not stay in memory.
    /// 30 s: a flood's sessions are gone, with their memory, well within a minute of its end
    /// (a newcomer is a member within a second or two of its hello).
    public var idleSessionTimeout = 30.0
    /// Per-pair session keys (`PairedDatagram`): hellos carry the boot's key-exchange key, and
    /// everything else goes sealed with the keys of the pair of boots, 34 bytes of header and tag,
    /// which no other member can read or forge. On by default; every peer of a network must
    /// agree (off: everything under the network key, signed, as wire protocol 3 began).
    public var sessionKeys = true

    public init() {}

    /// Problems with the settings, each naming the field and the valid range.
    public func problems() -> [String] {
        var out: [String] = []
        if maxDatagramSize < DatagramCodec.minimumDatagramSize || maxDatagramSize > DatagramCodec.maximumDatagramSize {
            out.append("maxDatagramSize must be between \(DatagramCodec.minimumDatagramSize) and \(DatagramCodec.maximumDatagramSize) bytes, got \(maxDatagramSize)")
        }
        if maxObjectBytes < 0 || maxObjectBytes > Int(UInt32.max) {
            out.append("maxObjectBytes must be between 0 and \(UInt32.max), got \(maxObjectBytes)")
        }
        if perSenderBudgetBytes < maxObjectBytes {
            out.append("perSenderBudgetBytes (\(perSenderBudgetBytes)) must be at least maxObjectBytes (\(maxObjectBytes))")
        }
        if reassemblyBudgetBytes < perSenderBudgetBytes {
            out.append("reassemblyBudgetBytes (\(reassemblyBudgetBytes)) must be at least perSenderBudgetBytes (\(perSenderBudgetBytes))")
        }
        if !(objectTimeout > 0) { out.append("objectTimeout must be positive seconds, got \(objectTimeout)") }
        if !(helloInterval > 0) { out.append("helloInterval must be positive seconds, got \(helloInterval)") }
        if !(pendingTimeout > 0) { out.append("pendingTimeout must be positive seconds, got \(pendingTimeout)") }
        if maxSessions < 1 { out.append("maxSessions must be at least 1, got \(maxSessions)") }
        if !(newSessionsPerSecond >= 1 && newSessionsPerSecond.isFinite) {
            out.append("newSessionsPerSecond must be at least 1, got \(newSessionsPerSecond)")
        }
        if !(newSessionsPerSourcePerSecond >= 1 && newSessionsPerSourcePerSecond.isFinite) {
            out.append("newSessionsPerSourcePerSecond must be at least 1, got \(newSessionsPerSourcePerSecond)")
        }
        if !(idleSessionTimeout > 0 && idleSessionTimeout.isFinite) {
            out.append("idleSessionTimeout must be positive seconds, got \(idleSessionTimeout)")
        }
        return out
    }

    /// Bytes a datagram spends around a message's payload or an object's data: with session keys
    /// the paired format's 34 (everything but hellos and notices to an earlier boot travels so),
    /// else header, signature and tag (142).
    var framingBytes: Int {
        sessionKeys ? PairedDatagram.overhead : Self.signedFramingBytes
    }

    static let signedFramingBytes = DatagramHeader.byteCount + DatagramCodec.signatureByteCount + DatagramCodec.tagByteCount

    /// Payload bytes of the largest single-datagram message.
    public var maxMessagePayload: Int {
        maxDatagramSize - framingBytes - 1
    }

    /// Data bytes per chunk of an object: what fits beside a manifest (which carries chunk 0), so
    /// every chunk has the same size and a chunk's place is its index × this.
    public var chunkDataSize: Int {
        min(Int(UInt16.max), maxDatagramSize - framingBytes - ObjectManifest.byteCount)
    }

    func reassembly(mode: CryptoMode) -> Reassembler.Settings {
        .init(maxObjectBytes: maxObjectBytes, budgetBytes: reassemblyBudgetBytes,
              perSenderBudgetBytes: perSenderBudgetBytes, timeout: objectTimeout, mode: mode)
    }
}
