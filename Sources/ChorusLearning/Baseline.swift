/// Centralised baselines for gossip training: what the same data and the same learning budget give
/// without a peer-to-peer network, so that every accuracy a decentralised run is compared with
/// comes from this code and not from another library.
///
/// The data is taken exactly as the peers take it (`SharedData` split, then `shard(_:of:)` with
/// the same scheme and seed), and the budget is theirs: `peers` learners of `stepsPerPeer` steps
/// each, `batchSize` rows a step. Two references:
///
/// - **centralised**: one learner on the union of the shards (the same rows the peers hold),
///   `peers · stepsPerPeer` steps, the cosine schedule stretched over `peers · cosineSteps`;
/// - **data-parallel**: one learner per shard, all from the same initial parameters, each taking
///   `stepsPerRound` local steps and then replaced by the exact average of all of them (what a
///   parameter server computes; every learner keeps its own momentum), under the peers' schedule.
///   This is gossip averaging with a complete graph and no delay, the best the peers can hope for.
///
/// Everything is deterministic for given settings.
public enum Baseline {
    /// Which of the two references.
    public enum Kind: String, Sendable, CaseIterable, CustomStringConvertible {
        case centralised
        case dataParallel = "data-parallel"

        public var description: String { rawValue }
    }

    /// The peers' data: one shard per peer and the shared test set.
    public struct PeerData: Sendable {
        public let shards: [Dataset]
        public let test: Dataset

        /// Loads `source` and splits and partitions it with `seed` as every peer does
        /// (`PeerConfig.makeLearner`: the data seed serves the load, the split and the partition).
        public init(source: DataSource, testFraction: Double, seed: UInt64, partition: PartitionScheme, peers: Int) throws {
            let shared = try SharedData(try source.load(seed: seed), testFraction: testFraction, seed: seed)
            let assignments = try Partition(scheme: partition, peers: peers, seed: seed)
                .assignments(labels: shared.train.labels, classCount: shared.train.classCount)
            self.init(shards: assignments.map { shared.train.subset($0) }, test: shared.test)
        }

        /// Shards and a test set from elsewhere (all of one shape; at least one shard).
        public init(shards: [Dataset], test: Dataset) {
            precondition(!shards.isEmpty, "a baseline needs at least one shard")
            self.shards = shards
            self.test = test
        }

        /// Every shard's rows, shard after shard: what the centralised learner trains on.
        public var union: Dataset { Baseline.union(shards) }
    }

    /// What a reference reached.
    public struct Result: Sendable, Equatable {
        public var kind: Kind
        /// Mean cross-entropy and accuracy on the test set, of the final (for data-parallel: the
        /// averaged) parameters.
        public var evaluation: Evaluation
        /// Training rows processed, summed over learners. At most `steps · batchSize`: a learner
        /// takes a short batch at the end of each pass over its shard (every row once per pass).
        public var samplesSeen: Int
        /// Optimiser steps, summed over learners (`peers · stepsPerPeer` for both references).
        public var steps: Int
        /// Learners that trained: 1 for centralised, `peers` for data-parallel.
        public var learners: Int
        /// Averagings (data-parallel; 0 for centralised).
        public var rounds: Int
        /// The final parameters (for data-parallel, the average every learner holds).
        public var parameters: [Float]

        public var testLoss: Double { evaluation.loss }
        public var testAccuracy: Double { evaluation.accuracy }
    }

    /// The two references for one configuration.
    public struct Report: Sendable, Equatable {
        public var centralised: Result
        public var dataParallel: Result
        /// Rows of the training set (all shards together) and of the test set.
        public var trainRows: Int
        public var testRows: Int
    }

    /// One data set with every row of `shards`, in shard order (the class count of the first).
    public static func union(_ shards: [Dataset]) -> Dataset {
        precondition(!shards.isEmpty, "a union of no shards has no shape")
        let first = shards[0]
        var features: [Float] = []
        var labels: [Int] = []
        features.reserveCapacity(shards.reduce(0) { $0 + $1.features.count })
        labels.reserveCapacity(shards.reduce(0) { $0 + $1.count })
        for shard in shards {
            precondition(shard.featureCount == first.featureCount && shard.classCount == first.classCount,
                         "shards of different shapes: \(shard.featureCount)/\(shard.classCount) and \(first.featureCount)/\(first.classCount)")
            features += shard.features
            labels += shard.labels
        }
        return Dataset(unchecked: first.featureCount, classCount: first.classCount, features: features, labels: labels)
    }

    /// The batch-order seed of data-parallel worker `index`: the simulator's rule for peer
    /// `index` (`seed + index·7919`), so worker 0 draws the batches of a lone learner of `seed`.
    public static func workerSeed(_ seed: UInt64, index: Int) -> UInt64 {
        seed &+ UInt64(index) &* 7919
    }

    /// One learner on the union of `data.shards`: `shards.count · stepsPerPeer` steps in chunks of
    /// `stepsPerRound` (the learning rate follows the cosine at the start of each chunk, as a
    /// peer's does each round), the schedule stretched over `shards.count · learning.cosineSteps`.
    /// `progress(done, total)` is called after each chunk.
    public static func centralised(_ data: PeerData, learning: LearningSettings, stepsPerPeer: Int, stepsPerRound: Int,
                                   progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws(TrainerError) -> Result {
        precondition(stepsPerPeer >= 0 && stepsPerRound > 0, "steps must be non-negative and rounds positive")
        let n = data.shards.count
        var settings = learning
        settings.cosineSteps = learning.cosineSteps * n
        var learner = try Learner(shard: data.union, test: data.test, settings: settings)
        let total = stepsPerPeer * n
        var done = 0
        while done < total {
            let chunk = min(stepsPerRound, total - done)
            _ = learner.train(steps: chunk)
            done += chunk
            progress(done, total)
        }
        return Result(kind: .centralised, evaluation: learner.evaluate(), samplesSeen: learner.samplesTrained,
                      steps: learner.ownSteps, learners: 1, rounds: 0, parameters: learner.parameters)
    }

    /// One learner per shard (batch seeds `workerSeed(learning.seed, index:)`, initial parameters
    /// from `learning.initialSeed` for all), `stepsPerPeer` steps each in rounds of `stepsPerRound`
    /// (a shorter last round when it does not divide), every round ended by replacing each
    /// learner's parameters with the average of all (summed in Double, in shard order). Momentum
    /// stays with each learner. `progress(done, total)` is called after each round with steps
    /// summed over learners.
    public static func dataParallel(_ data: PeerData, learning: LearningSettings, stepsPerPeer: Int, stepsPerRound: Int,
                                    progress: (_ done: Int, _ total: Int) -> Void = { _, _ in }) throws(TrainerError) -> Result {
        precondition(stepsPerPeer >= 0 && stepsPerRound > 0, "steps must be non-negative and rounds positive")
        let n = data.shards.count
        var learners: [Learner] = []
        learners.reserveCapacity(n)
        for (index, shard) in data.shards.enumerated() {
            var settings = learning
            settings.seed = workerSeed(learning.seed, index: index)
            learners.append(try Learner(shard: shard, test: data.test, settings: settings))
        }
        let parameterCount = learners[0].parameterCount
        var sum = [Double](repeating: 0, count: parameterCount)
        var average = [Float](repeating: 0, count: parameterCount)
        var done = 0, rounds = 0
        while done < stepsPerPeer {
            let chunk = min(stepsPerRound, stepsPerPeer - done)
            for i in learners.indices { _ = learners[i].train(steps: chunk) }
            done += chunk
            rounds += 1
            // The exact average. A learner that diverged (a non-finite parameter) makes the
            // average non-finite, which `replaceParameters` refuses: that is the error reported.
            for k in sum.indices { sum[k] = 0 }
            for learner in learners {
                let p = learner.parameters
                for k in p.indices { sum[k] += Double(p[k]) }
            }
            for k in average.indices { average[k] = Float(sum[k] / Double(n)) }
            for i in learners.indices { try learners[i].replaceParameters(average) }
            progress(done * n, stepsPerPeer * n)
        }
        return Result(kind: .dataParallel, evaluation: learners[0].evaluate(),
                      samplesSeen: learners.reduce(0) { $0 + $1.samplesTrained },
                      steps: learners.reduce(0) { $0 + $1.ownSteps }, learners: n, rounds: rounds,
                      parameters: learners[0].parameters)
    }
}

/// A whole baseline run as a command or an experiment describes it: the peers' data and their
/// learning budget. `learning.seed` is the batch-order seed (the centralised learner's and data-
/// parallel worker 0's), `learning.initialSeed` the starting parameters; `learning.cosineSteps`
/// is per peer, as in a peer's configuration.
public struct BaselineSettings: Sendable, Equatable {
    public var source: DataSource
    public var testFraction: Double
    /// Seed of the data load (synthetic data), the train/test split and the partition.
    public var dataSeed: UInt64
    public var partition: PartitionScheme
    public var peers: Int
    public var learning: LearningSettings
    public var stepsPerPeer: Int
    public var stepsPerRound: Int

    public init(source: DataSource = .digits, testFraction: Double = 0.2, dataSeed: UInt64 = 1, partition: PartitionScheme = .iid,
                peers: Int, learning: LearningSettings = LearningSettings(), stepsPerPeer: Int, stepsPerRound: Int = 5) {
        self.source = source
        self.testFraction = testFraction
        self.dataSeed = dataSeed
        self.partition = partition
        self.peers = peers
        self.learning = learning
        self.stepsPerPeer = stepsPerPeer
        self.stepsPerRound = stepsPerRound
    }

    /// Problems with the settings, each naming the field (the optimiser's and the data's own
    /// checks come when the run builds its learners).
    public func problems() -> [String] {
        var out: [String] = []
        if peers < 1 { out.append("peers must be at least 1, got \(peers)") }
        if stepsPerPeer < 1 { out.append("stepsPerPeer must be at least 1, got \(stepsPerPeer)") }
        if stepsPerRound < 1 { out.append("stepsPerRound must be at least 1, got \(stepsPerRound)") }
        if !(testFraction > 0 && testFraction < 1) { out.append("testFraction must be in (0, 1), got \(testFraction)") }
        if learning.batchSize < 1 { out.append("batchSize must be at least 1, got \(learning.batchSize)") }
        if learning.cosineSteps < 0 { out.append("cosineSteps must be 0 or more, got \(learning.cosineSteps)") }
        // peers · stepsPerPeer · batchSize and peers · cosineSteps must fit an Int.
        if peers > 0 && stepsPerPeer > 0 && learning.batchSize > 0 {
            let (steps, o1) = peers.multipliedReportingOverflow(by: stepsPerPeer)
            let (_, o2) = steps.multipliedReportingOverflow(by: learning.batchSize)
            let (_, o3) = peers.multipliedReportingOverflow(by: max(0, learning.cosineSteps))
            if o1 || o2 || o3 { out.append("peers × stepsPerPeer × batchSize is too large") }
        }
        return out
    }
}

/// Why a baseline could not run.
public struct BaselineError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

extension Baseline {
    /// Loads and partitions the data, then trains the centralised and the data-parallel
    /// reference one after the other. `progress(kind, done, total)` reports steps (summed over
    /// learners) after every chunk of `stepsPerRound`.
    public static func run(_ settings: BaselineSettings,
                           progress: (_ kind: Kind, _ done: Int, _ total: Int) -> Void = { _, _, _ in }) throws -> Report {
        if let problem = settings.problems().first { throw BaselineError(problem) }
        let data: PeerData
        do {
            data = try PeerData(source: settings.source, testFraction: settings.testFraction, seed: settings.dataSeed,
                            partition: settings.partition, peers: settings.peers)
        } catch {
            throw BaselineError("data: \(error)")
        }
        do {
            let centralised = try centralised(data, learning: settings.learning, stepsPerPeer: settings.stepsPerPeer,
                                              stepsPerRound: settings.stepsPerRound) { progress(.centralised, $0, $1) }
            let dataParallel = try dataParallel(data, learning: settings.learning, stepsPerPeer: settings.stepsPerPeer,
                                                stepsPerRound: settings.stepsPerRound) { progress(.dataParallel, $0, $1) }
            return Report(centralised: centralised, dataParallel: dataParallel,
                          trainRows: data.shards.reduce(0) { $0 + $1.count }, testRows: data.test.count)
        } catch {
            throw BaselineError("learning: \(error)")
        }
    }
}
