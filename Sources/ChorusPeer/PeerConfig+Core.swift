import ChorusCore
import ChorusLearning

extension PeerConfig {
    /// The protocol settings this configuration gives the peer instance.
    public var peerSettings: PeerSettings {
        var s = PeerSettings()
        s.gossipInterval = gossipInterval
        s.collectFraction = collect / gossipInterval
        s.stepsPerRound = stepsPerRound
        s.evaluationInterval = evaluationInterval
        s.checkpointInterval = checkpointInterval
        s.topology = topology
        s.averaging = averaging
        s.membership = membership
        s.wire = wire
        s.fetchModel = fetchModel && !membershipOnly
        if membershipOnly { (s.gossipRounds, s.checkpointInterval) = (false, 0) }
        s.poison = poison
        return s
    }

    public var learningSettings: LearningSettings {
        LearningSettings(model: model, learningRate: learningRate, momentum: momentum, weightDecay: weightDecay,
                         batchSize: batchSize, cosineSteps: cosineSteps, seed: seed, initialSeed: dataSeed)
    }

    /// Loads the data, takes this peer's shard and builds its learner; errors name the field.
    /// Every peer of a network splits the same data with the same seed, so their test sets agree.
    func makeLearner() throws -> Learner {
        let all: Dataset
        do { all = try dataSource.load(seed: dataSeed) } catch {
            throw StartupError("\(file): field 'data.source': \(error)")
        }
        if case .csv = dataSource {  // its shape is known only now; synthetic data and the digits were checked at load
            do {
                try PeerConfig.checkMemory(samples: all.count, features: all.featureCount, classes: all.classCount, model: model, file: file,
                                           fields: (samples: "the CSV's \(all.count) rows", features: "its \(all.featureCount) features", classes: "data.classes"))
            } catch { throw StartupError(error.description) }
        }
        let data: SharedData
        do { data = try SharedData(all, testFraction: testFraction, seed: dataSeed) } catch {
            throw StartupError("\(file): field 'data': \(error)")
        }
        let shard: Dataset
        do { shard = try data.shard(self.shard, of: shards, scheme: partition, seed: dataSeed) } catch {
            throw StartupError("\(file): field 'data': \(error)")
        }
        do {
            var learner = try Learner(shard: shard, test: data.test, settings: learningSettings)
            if randomStart { try learner.replaceParameters(Learner.randomValues(count: learner.parameterCount, seed: seed)) }
            return learner
        } catch {
            throw StartupError("\(file): field 'learning': \(error)")
        }
    }
}
