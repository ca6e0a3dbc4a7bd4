import Foundation

/// Test-set loss and accuracy.
public struct Evaluation: Sendable, Equatable {
    public var loss: Double
    public var accuracy: Double

    public init(loss: Double, accuracy: Double) {
        self.loss = loss
        self.accuracy = accuracy
    }

    public static let none = Evaluation(loss: .nan, accuracy: .nan)
}

/// Where a peer's training data comes from.
public enum DataSource: Sendable, Equatable {
    case digits
    case csv(path: String, classCount: Int)
    case synthetic(count: Int, features: Int, classes: Int)

    public func load(seed: UInt64) throws -> Dataset {
        switch self {
        case .digits: return try Dataset.digits()
        case let .csv(path, classes): return try Dataset.loadCSV(path: path, classCount: classes)
        case let .synthetic(count, features, classes):
            return try Dataset.synthetic(count: count, featureCount: features, classCount: classes, seed: seed)
        }
    }
}

/// How a peer learns, free of any file format: which model, which optimiser settings, which
/// batch order. The data (a shard and the shared test set) is handed in separately, so a
/// simulator loads and splits a data set once for thousands of peers.
public struct LearningSettings: Sendable, Equatable {
    public var model: ModelSpec
    public var learningRate: Double
    public var momentum: Double
    public var weightDecay: Double
    public var batchSize: Int
    /// Steps over which the learning rate decays to zero by a cosine; 0 keeps it constant.
    public var cosineSteps: Int
    /// Batch order of this peer (peers differ here).
    public var seed: UInt64
    /// Starting parameters (the same on every peer of a network, so their first averages are sane).
    public var initialSeed: UInt64

    public init(model: ModelSpec = .softmax, learningRate: Double = 0.05, momentum: Double = 0.9, weightDecay: Double = 0,
                batchSize: Int = 32, cosineSteps: Int = 0, seed: UInt64 = 1, initialSeed: UInt64 = 1) {
        self.model = model
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.batchSize = batchSize
        self.cosineSteps = cosineSteps
        self.seed = seed
        self.initialSeed = initialSeed
    }
}

/// A data set split once into a training part and the test set every peer evaluates on.
public struct SharedData: Sendable {
    public let train: Dataset
    public let test: Dataset

    public init(_ data: Dataset, testFraction: Double, seed: UInt64) throws(DatasetError) {
        (train, test) = try data.split(testFraction: testFraction, seed: seed)
    }

    /// Shard `index` of `count` (IID or Dirichlet label skew, seeded so every peer agrees).
    public func shard(_ index: Int, of count: Int, scheme: PartitionScheme, seed: UInt64) throws(DatasetError) -> Dataset {
        try train.shard(index: index, of: Partition(scheme: scheme, peers: count, seed: seed))
    }
}

/// A peer's local learning: its shard, trainer and held-out test set. A value type: the peer
/// hands a copy to a worker to train off the I/O loop and takes the trained copy back.
public struct Learner: Sendable {
    private var trainer: Trainer
    public let test: Dataset
    public let settings: LearningSettings
    /// Progress restored from a checkpoint or adopted from the network, added to the trainer's own counters.
    private var stepOffset: UInt64 = 0
    private var epochOffset: UInt64 = 0
    /// Step and epoch counts taken from outside (another peer's model, a checkpoint) are capped
    /// here: far beyond any real run (2⁵³), far below where adding this process's own steps could
    /// overflow. A peer that announced step 2⁶⁴−1 must not crash the one that adopts its model.
    public static let maxInheritedCount: UInt64 = 1 << 53

    public var parameterCount: Int { trainer.model.parameterCount }
    /// The step count the network sees: own steps plus what was adopted or restored.
    public var steps: UInt64 { stepOffset + UInt64(trainer.steps) }
    /// Steps this process trained itself (not adopted from another peer).
    public var ownSteps: Int { trainer.steps }
    /// Training rows this process processed itself.
    public var samplesTrained: Int { trainer.samplesSeen }
    public var epoch: UInt64 { epochOffset + UInt64(trainer.epoch) }
    public var learningRate: Double { Double(trainer.optimizer.learningRate) }
    public var shardSize: Int { trainer.shard.count }

    public var parameters: [Float] { trainer.parameters }

    public init(shard: Dataset, test: Dataset, settings: LearningSettings) throws(TrainerError) {
        let model = settings.model.makeModel(featureCount: shard.featureCount, classCount: shard.classCount)
        let optimizer = SGD(learningRate: Float(settings.learningRate), momentum: Float(settings.momentum),
                            weightDecay: Float(settings.weightDecay))
        self.trainer = try Trainer(model: model, shard: shard, optimizer: optimizer, batchSize: settings.batchSize,
                                   seed: settings.seed, parameters: model.initialParameters(seed: settings.initialSeed))
        self.test = test
        self.settings = settings
    }

    /// `count` values uniform in [−1, 1] from `seed`: the starting point of an averaging
    /// experiment (`--task average`, `model.start = "random"`), the same on every platform.
    public static func randomValues(count: Int, seed: UInt64) -> [Float] {
        var rng = Xoshiro256(seed: seed ^ 0xA7E2_A6E5)
        return (0..<count).map { _ in Float.random(in: -1...1, using: &rng) }
    }

    /// Replaces the parameters (a gossip average); refuses a wrong length or a non-finite value.
    public mutating func replaceParameters(_ new: [Float]) throws(TrainerError) {
        try trainer.replaceParameters(new)
    }

    /// `count` optimiser steps under the cosine schedule; returns the mean batch loss.
    public mutating func train(steps count: Int) -> Double {
        guard count > 0 else { return .nan }
        applySchedule()
        var sum = 0.0
        for _ in 0..<count { sum += Double(trainer.step()) }
        return sum / Double(count)
    }

    public func evaluate() -> Evaluation {
        let (loss, accuracy) = trainer.evaluate(on: test)
        return Evaluation(loss: loss, accuracy: accuracy)
    }

    /// Cosine decay from the base rate to zero over `cosineSteps` (then zero); constant when 0.
    private mutating func applySchedule() {
        guard settings.cosineSteps > 0 else { return }
        let progress = min(1, Double(steps) / Double(settings.cosineSteps))
        trainer.optimizer.learningRate = Float(settings.learningRate * 0.5 * (1 + cos(Double.pi * progress)))
    }

    /// Takes the network's model when joining: its parameters, and its step count so the
    /// learning-rate schedule lines up with the other peers.
    public mutating func adopt(parameters: [Float], step: UInt64) throws(TrainerError) {
        try trainer.replaceParameters(parameters)
        trainer.resetMomentum()
        stepOffset = max(steps, min(step, Self.maxInheritedCount)) - UInt64(trainer.steps)
    }

    /// Continues from saved progress (a checkpoint of this peer).
    public mutating func resume(parameters: [Float], steps: UInt64, epoch: UInt64) throws(TrainerError) {
        try trainer.replaceParameters(parameters)
        stepOffset = min(steps, Self.maxInheritedCount)
        epochOffset = min(epoch, Self.maxInheritedCount)
    }
}
