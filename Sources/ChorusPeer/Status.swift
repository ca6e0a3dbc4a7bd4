import ChorusCrypto
import Foundation

/// What `GET /status` returns (JSON). Field names are part of the admin API; see Peers/README.md.
public struct PeerStatus: Codable, Sendable, Equatable {
    public struct Neighbour: Codable, Sendable, Equatable {
        public var id: String
        public var address: String
        /// Metropolis–Hastings weight this peer gives the neighbour now (0 while it is silent).
        public var weight: Double
        /// Seconds since parameters last arrived from it; nil if never.
        public var lastHeard: Double?
        /// The degree it advertised last.
        public var degree: Int?
    }

    public struct MemberRow: Codable, Sendable, Equatable {
        public var id: String
        public var address: String
        /// alive, suspect, failed or left.
        public var status: String
        public var incarnation: UInt64
    }

    public var peerId: String
    public var address: String
    public var bootEpoch: UInt64
    /// joining (waiting for the network's model), training, or leaving.
    public var phase: String
    /// True while it knows no other member although entry points are configured: it trains
    /// alone and keeps retrying them (with backoff up to 8 s).
    public var isolated: Bool
    public var uptime: Double
    public var model: String
    public var parameterCount: Int
    /// The step count the network sees: what this peer trained plus what it inherited.
    public var step: UInt64
    /// Steps this process trained itself on its own shard.
    public var stepsTrained: Int
    /// Steps it took over: adopted with the network's model when it joined, or restored from its checkpoint.
    public var stepsInherited: Int
    /// Training samples this process went through itself (batches × batch size).
    public var samplesTrained: Int
    public var epoch: UInt64
    /// Test-set loss and accuracy at the last evaluation.
    public var loss: Double
    public var testAccuracy: Double
    public var trainLoss: Double
    public var learningRate: Double
    public var selfWeight: Double
    /// Relative distance ‖x − ȳ‖ / ‖ȳ‖ to the neighbours' weighted average ȳ at the last mix that
    /// had a contribution (nil before): convergence as this peer sees it, no parameters collected.
    public var distanceToNeighbours: Double?
    /// Seconds since that mix.
    public var distanceAge: Double?
    public var neighbours: [Neighbour]
    /// This peer's view of the network, itself first.
    public var members: [MemberRow]
    public var incarnation: UInt64
    /// What the failure detector did since start: probes sent and failed, suspicions raised by
    /// this peer, failures it declared, accusations against it that it refuted.
    public var membershipCounts: MembershipCounts
    /// Lifeguard's local health multiplier (0 is healthy).
    public var localHealth: Int
    public var bytesSent: Int
    public var bytesReceived: Int
    public var datagramsSent: Int
    public var datagramsReceived: Int
    public var datagramsRejected: Int
    /// Peers the datagram layer keeps a session with (members, and strangers not yet forgotten).
    public var sessions: Int? = nil
    /// With per-pair session keys (`gossip.session_keys`): the sessions whose pair is keyed, and
    /// of those the ones the other side has confirmed (traffic to them goes paired). Nil without.
    public var pairedSessions: Int? = nil
    public var confirmedPairs: Int? = nil
    /// Payload bytes (messages and objects, without datagram headers, hellos and tags) by
    /// channel: parameters, membership, membership_sync, model_request, model.
    public var payloadBytesSent: [String: Int]
    public var payloadBytesReceived: [String: Int]
    /// Rejections by reason (datagram layer and averaging layer).
    public var rejections: [String: Int]
    public var mixes: Int
    public var contributionsMixed: Int
    /// Faults injected now (configuration, then `POST /faults`).
    public var faults: FaultSettings

    public struct MembershipCounts: Codable, Sendable, Equatable {
        public var probes: Int
        public var probesFailed: Int
        public var indirectProbes: Int
        public var suspicionsRaised: Int
        public var failuresDeclared: Int
        public var refutations: Int
    }

    /// Loss is NaN before the first evaluation; JSON has no NaN, so it travels as the string "nan".
    public static let floatEncoding = JSONEncoder.NonConformingFloatEncodingStrategy.convertToString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
    public static let floatDecoding = JSONDecoder.NonConformingFloatDecodingStrategy.convertFromString(
        positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
}

/// The network keys a peer holds, by their public 4-byte ids (hex): `GET /keys`.
public struct NetworkKeyIDs: Codable, Sendable, Equatable {
    /// Seals this peer's datagrams (and opens others').
    public var primary: String
    /// Only opens others' datagrams (`accepted_network_keys`).
    public var accepted: [String]

    public init(_ keyring: NetworkKeyring) {
        primary = Hex.encode(keyring.primary.keyID)
        accepted = keyring.keys.dropFirst().map { Hex.encode($0.keyID) }
    }
}
