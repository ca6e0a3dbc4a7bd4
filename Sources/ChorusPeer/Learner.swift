import ChorusLearning
import Foundation

/// Test-set loss and accuracy.
struct Evaluation: Sendable {
    var loss: Double
    var accuracy: Double
}

/// A peer's local learning: its shard, trainer and held-out test set, built from the configuration.
/// Every peer of a network splits the same data with the same seed, so their test sets agree.
struct Learner: Sendable {
    private var trainer: Trainer
    let test: Dataset
    /// Progress restored from a checkpoint, added to the trainer's own counters.
    private var stepOffset: UInt64 = 0
    private var epochOffset: UInt64 = 0

    var parameterCount: Int { trainer.model.parameterCount }
    var steps: UInt64 { stepOffset + UInt64(trainer.steps) }
    var epoch: UInt64 { epochOffset + UInt64(trainer.epoch) }
    var learningRate: Double { Double(trainer.optimizer.learningRate) }

    var parameters: [Float] {
        get { trainer.parameters }
        set { try? trainer.replaceParameters(newValue) }  // the averager only produces finite vectors of the right length
    }

    static func make(config: PeerConfig) throws -> Learner {
        let data: Dataset
        do {
            switch config.dataSource {
            case .digits:
                data = try Dataset.digits()
            case let .csv(path, classes):
                data = try Dataset.loadCSV(path: path, classCount: classes)
            case let .synthetic(count, features, classes):
                data = try Dataset.synthetic(count: count, featureCount: features, classCount: classes, seed: config.dataSeed)
            }
        } catch {
            throw StartupError("\(config.file): field 'data.source': \(error)")
        }
        let (train, test): (Dataset, Dataset)
        let shard: Dataset
        do {
            (train, test) = try data.split(testFraction: config.testFraction, seed: config.dataSeed)
            shard = try train.shard(index: config.shard, of: Partition(scheme: config.partition, peers: config.shards, seed: config.dataSeed))
        } catch {
            throw StartupError("\(config.file): field 'data': \(error)")
        }
        let model = config.model.makeModel(featureCount: data.featureCount, classCount: data.classCount)
        let optimizer = SGD(learningRate: Float(config.learningRate), momentum: Float(config.momentum), weightDecay: Float(config.weightDecay))
        do {
            // Every peer starts from the same parameters (seeded by the data seed) and differs in batch order.
            let trainer = try Trainer(
                model: model, shard: shard, optimizer: optimizer, batchSize: config.batchSize, seed: config.seed,
                parameters: model.initialParameters(seed: config.dataSeed))
            return Learner(trainer: trainer, test: test)
        } catch {
            throw StartupError("\(config.file): field 'learning': \(error)")
        }
    }

    mutating func step() -> Float { trainer.step() }

    func evaluate() -> Evaluation {
        let (loss, accuracy) = trainer.evaluate(on: test)
        return Evaluation(loss: loss, accuracy: accuracy)
    }

    /// Cosine decay from `base` to zero over `cosineSteps` (then zero); constant when 0.
    mutating func applySchedule(base: Double, cosineSteps: Int) {
        guard cosineSteps > 0 else { return }
        let progress = min(1, Double(steps) / Double(cosineSteps))
        trainer.optimizer.learningRate = Float(base * 0.5 * (1 + cos(Double.pi * progress)))
    }

    func checkpoint(model: String) -> Checkpoint {
        Checkpoint(model: model, steps: steps, epoch: epoch, parameters: trainer.parameters)
    }

    /// Takes the network's model when joining: its parameters, and its step count so the
    /// learning-rate schedule lines up with the other peers.
    mutating func adopt(parameters: [Float], step: UInt64) {
        try? trainer.replaceParameters(parameters)
        trainer.resetMomentum()
        stepOffset = max(steps, step) - UInt64(trainer.steps)
    }

    mutating func resume(from checkpoint: Checkpoint, model: String) throws {
        guard checkpoint.model == model else {
            throw StartupError("checkpoint is for model \(checkpoint.model), the configuration says \(model)")
        }
        do { try trainer.replaceParameters(checkpoint.parameters) } catch {
            throw StartupError("checkpoint does not fit the model: \(error)")
        }
        stepOffset = checkpoint.steps
        epochOffset = checkpoint.epoch
    }
}
