import ChorusCrypto
import ChorusLearning
import ChorusMembership

/// Where a peer is reached: "host:port", as membership claims carry it. The real shell resolves
/// it to a socket address; the simulator maps it to a simulated peer.
public typealias PeerAddress = String

/// What a `PeerInstance` asks its shell to do.
public enum PeerDirective: Sendable {
    /// Send these datagrams to `address` (`peer` when known, for fault injection by peer;
    /// `channel`, the application channel they carry, nil for hellos and the datagram layer's
    /// own replies: a simulator can lose one kind of traffic only).
    case send([[UInt8]], to: PeerAddress, peer: PeerID?, channel: UInt8?)
    /// Run this job off the I/O path and hand the result to `learningFinished`.
    case learn(LearningJob)
    /// Save this progress (a crash then loses at most `checkpointInterval` of training).
    case saveCheckpoint(ModelSnapshot)
    case event(PeerEvent)
}

/// Things worth a log line or a record in an experiment.
public enum PeerEvent: Sendable, Equatable {
    case membership(MembershipEvent)
    /// Joining: the network's model arrived from `from` (at the network's step count `step`).
    case adoptedModel(from: PeerID, step: UInt64)
    /// Joining: no model arrived within `modelWaitTimeout`; training from this peer's own start.
    case startedAlone(waited: Double)
    /// The leave linger is over: the shell may close the socket.
    case stopped
    /// No other member for `seconds` although entry points are configured: they are down,
    /// unreachable (firewall, NAT, wrong address) or under another network key. Repeated every
    /// `warningInterval` while it lasts; the peer keeps retrying them.
    case isolated(seconds: Double, tried: [PeerAddress])
    /// Members again after being isolated.
    case reconnected(members: Int)
    /// A later boot of this very identity runs at `address` (a claim signed with our key, from
    /// epoch `laterEpoch`, proves it): the network follows the later boot, so this process must
    /// stop (docs/membership.md, "One identity, one process"). The instance stops itself: a
    /// `stopped` event follows, which every shell obeys.
    case identityInUse(laterEpoch: UInt64, address: PeerAddress)
    /// Input this peer drops that points at a configuration mistake elsewhere (another network
    /// key, another model), at most once per `warningInterval` per reason.
    case misconfiguredTraffic(MisconfiguredTraffic)
}

/// What a warning about someone else's traffic says.
public enum MisconfiguredTraffic: Sendable, Equatable {
    /// Datagrams under a network key this peer does not hold, from this address.
    case unknownNetworkKey(from: PeerAddress, count: Int)
    /// Parameters whose length is not this model's: the sender runs another model.
    case otherModel(from: PeerID, theirParameters: Int, ours: Int)
}

/// A peer's model progress, for a checkpoint.
public struct ModelSnapshot: Sendable, Equatable {
    public var steps: UInt64
    public var epoch: UInt64
    public var parameters: [Float]

    public init(steps: UInt64, epoch: UInt64, parameters: [Float]) {
        self.steps = steps
        self.epoch = epoch
        self.parameters = parameters
    }
}

/// Local training (and, when due, an evaluation) for one round, run by the shell wherever it
/// likes: the real shell on a worker thread so a slow step never delays an ack, the simulator
/// inline at the same virtual instant.
public struct LearningJob: Sendable {
    public var learner: Learner
    public var steps: Int
    public var evaluate: Bool

    /// Evaluates the model as handed over (the last mix's, what the network agreed on), then trains.
    public func run() -> LearningResult {
        var learner = self.learner
        let evaluation = evaluate ? learner.evaluate() : nil
        let loss = learner.train(steps: steps)
        return LearningResult(learner: learner, meanLoss: loss, evaluation: evaluation)
    }
}

public struct LearningResult: Sendable {
    public var learner: Learner
    /// Mean batch loss of the job's steps (NaN for none).
    public var meanLoss: Double
    public var evaluation: Evaluation?
}
