/// One peer's local training loop: its shard, its model, its optimiser and its own seeded
/// generator for batch order. A value type so that a simulator can hold thousands of peers in an
/// array and copy or replay them.
///
/// Batches are consecutive runs of a per-epoch shuffle of the shard; the last batch of an epoch
/// may be smaller, so every row is used exactly once per epoch.
public struct Trainer: Sendable {
    public let model: any Model
    public let shard: Dataset
    public var optimizer: SGD
    public let batchSize: Int
    /// The current parameters. Replace them (e.g. with a gossip average) through
    /// `replaceParameters(_:)`, which checks the length and finiteness.
    public private(set) var parameters: [Float]
    /// Optimiser steps taken.
    public private(set) var steps = 0
    /// Rows processed, summed over all steps.
    public private(set) var samplesSeen = 0
    /// Completed passes over the shard.
    public private(set) var epoch = 0
    /// Loss of the most recent batch (nil before the first step).
    public private(set) var lastLoss: Float?

    private var rng: Xoshiro256
    private var order: [Int]
    private var cursor = 0
    private var gradient: [Float]
    private var batchFeatures: [Float]
    private var batchLabels: [Int]

    /// - Parameters:
    ///   - parameters: the starting point; `model.initialParameters(seed: seed)` when nil. Peers
    ///     of one network usually start from the same parameters and differ in `seed`.
    ///   - seed: batch order.
    public init(model: any Model, shard: Dataset, optimizer: SGD = SGD(), batchSize: Int = 32,
                seed: UInt64, parameters: [Float]? = nil) throws(TrainerError) {
        guard shard.featureCount == model.featureCount, shard.classCount == model.classCount else {
            throw .shapeMismatch(model: "\(model.spec) for \(model.featureCount) features and \(model.classCount) classes",
                                 shard: "\(shard.featureCount) features and \(shard.classCount) classes")
        }
        guard shard.count > 0 else { throw .emptyShard }
        guard batchSize > 0 else { throw .invalidBatchSize(batchSize) }
        if let problem = optimizer.problems().first { throw .invalidOptimizer(problem) }
        let start = parameters ?? model.initialParameters(seed: seed)
        try Self.check(start, count: model.parameterCount)
        self.model = model
        self.shard = shard
        self.optimizer = optimizer
        self.batchSize = batchSize
        self.parameters = start
        self.rng = Xoshiro256(seed: seed)
        self.order = Array(0..<shard.count)
        self.gradient = [Float](repeating: 0, count: model.parameterCount)
        self.batchFeatures = [Float](repeating: 0, count: min(batchSize, shard.count) * shard.featureCount)
        self.batchLabels = [Int](repeating: 0, count: min(batchSize, shard.count))
        Sampling.shuffle(&order, using: &rng)
    }

    /// Fractional passes over the shard, e.g. 2.5 halfway through the third epoch.
    public var epochProgress: Double { Double(epoch) + Double(cursor) / Double(shard.count) }

    /// One optimiser step on the next mini-batch; returns that batch's loss.
    @discardableResult
    public mutating func step() -> Float {
        let rows = min(batchSize, shard.count - cursor)
        let f = shard.featureCount
        // Gather the batch into one contiguous block so the kernels stream through it.
        shard.features.withUnsafeBufferPointer { all in
            batchFeatures.withUnsafeMutableBufferPointer { out in
                let src = all.baseAddress!, dst = out.baseAddress!
                for r in 0..<rows {
                    (dst + r * f).update(from: src + order[cursor + r] * f, count: f)
                }
            }
        }
        for r in 0..<rows { batchLabels[r] = shard.labels[order[cursor + r]] }
        cursor += rows

        let model = self.model  // a local copy: `self` is exclusively accessed below
        let loss = parameters.withUnsafeBufferPointer { p in
            batchFeatures.withUnsafeBufferPointer { x in
                batchLabels.withUnsafeBufferPointer { y in
                    gradient.withUnsafeMutableBufferPointer { g in
                        model.lossAndGradient(parameters: p,
                                              features: UnsafeBufferPointer(rebasing: x[0 ..< rows * f]),
                                              labels: UnsafeBufferPointer(rebasing: y[0 ..< rows]),
                                              gradient: g)
                    }
                }
            }
        }
        optimizer.step(parameters: &parameters, gradient: gradient)
        steps += 1
        samplesSeen += rows
        lastLoss = loss
        if cursor == shard.count {
            epoch += 1
            cursor = 0
            Sampling.shuffle(&order, using: &rng)
        }
        return loss
    }

    /// Replaces the parameters, e.g. with the result of gossip averaging. Refuses a vector of the
    /// wrong length or with a NaN/infinity (which would silently poison every later average),
    /// leaving the trainer unchanged. The momentum is kept; see `resetMomentum()`.
    public mutating func replaceParameters(_ new: [Float]) throws(TrainerError) {
        try Self.check(new, count: model.parameterCount)
        parameters = new
    }

    /// Drops the optimiser's velocity, e.g. after adopting parameters far from the local ones.
    public mutating func resetMomentum() {
        optimizer.resetMomentum()
    }

    /// Loss and accuracy of the current parameters on `dataset` (e.g. the held-out test set).
    public func evaluate(on dataset: Dataset) -> (loss: Double, accuracy: Double) {
        model.evaluate(parameters: parameters, on: dataset)
    }

    private static func check(_ p: [Float], count: Int) throws(TrainerError) {
        guard p.count == count else { throw .parameterCountMismatch(expected: count, got: p.count) }
        if let bad = p.firstIndex(where: { !$0.isFinite }) { throw .nonFiniteParameter(index: bad) }
    }
}

/// Why a trainer could not be built or refused new parameters.
public enum TrainerError: Error, Equatable, CustomStringConvertible {
    case shapeMismatch(model: String, shard: String)
    case emptyShard
    case invalidBatchSize(Int)
    case invalidOptimizer(String)
    case parameterCountMismatch(expected: Int, got: Int)
    case nonFiniteParameter(index: Int)

    public var description: String {
        switch self {
        case .shapeMismatch(let model, let shard): "the model (\(model)) does not fit the shard (\(shard))"
        case .emptyShard: "the shard has no rows"
        case .invalidBatchSize(let n): "batch size must be positive, got \(n)"
        case .invalidOptimizer(let problem): "optimizer: \(problem)"
        case .parameterCountMismatch(let expected, let got): "expected \(expected) parameters, got \(got)"
        case .nonFiniteParameter(let index): "parameter \(index) is not a finite number"
        }
    }
}
