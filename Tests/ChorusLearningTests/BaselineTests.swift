import Testing
import ChorusLearning

/// The digits as 4 peers hold them with seed 1.
private func digitsData(peers: Int = 4, partition: PartitionScheme = .iid, seed: UInt64 = 1) throws -> Baseline.PeerData {
    try Baseline.PeerData(source: .digits, testFraction: 0.2, seed: seed, partition: partition, peers: peers)
}

@Test("the baseline's shards are the peers' shards and its test set theirs")
func baselineShardsAreThePeers() throws {
    let data = try digitsData(peers: 5, partition: .dirichlet(alpha: 0.5), seed: 3)
    let shared = try SharedData(try Dataset.digits(), testFraction: 0.2, seed: 3)
    #expect(data.test == shared.test)
    for i in 0..<5 {
        #expect(data.shards[i] == (try shared.shard(i, of: 5, scheme: .dirichlet(alpha: 0.5), seed: 3)))
    }
}

@Test("the centralised union holds exactly the rows of the shards")
func baselineUnionHasTheShardsRows() throws {
    for partition in [PartitionScheme.iid, .dirichlet(alpha: 0.1)] {
        let data = try digitsData(peers: 16, partition: partition)
        let union = data.union
        #expect(union.count == data.shards.reduce(0) { $0 + $1.count })
        var histogram = [Int](repeating: 0, count: 10)
        for shard in data.shards { for (c, n) in shard.classCounts.enumerated() { histogram[c] += n } }
        #expect(union.classCounts == histogram)
        // Row for row: the shards one after the other.
        var offset = 0
        for shard in data.shards {
            #expect(Array(union.labels[offset ..< offset + shard.count]) == shard.labels)
            #expect(Array(union.features[offset * 64 ..< (offset + shard.count) * 64]) == shard.features)
            offset += shard.count
        }
        // And, as every row goes to one peer, the whole training set.
        let shared = try SharedData(try Dataset.digits(), testFraction: 0.2, seed: 1)
        #expect(union.count == shared.train.count && union.classCounts == shared.train.classCounts)
        #expect(union.classCount == 10 && union.featureCount == 64)
    }
}

@Test("a baseline run is reproducible from its seed")
func baselineDeterminism() throws {
    func run(_ seed: UInt64) throws -> Baseline.Report {
        var learning = LearningSettings(model: .mlp(hidden: 8), cosineSteps: 40, seed: seed, initialSeed: seed)
        learning.learningRate = 0.05
        return try Baseline.run(BaselineSettings(dataSeed: seed, partition: .dirichlet(alpha: 0.5), peers: 3,
                                                 learning: learning, stepsPerPeer: 50, stepsPerRound: 5))
    }
    let a = try run(1), b = try run(1), c = try run(2)
    #expect(a == b)
    #expect(a.centralised.parameters != c.centralised.parameters)
    #expect(a.dataParallel.parameters != c.dataParallel.parameters)
}

@Test("data-parallel with one worker is plain training of one learner, and so is centralised")
func baselineOneWorkerIsPlainTraining() throws {
    let data = try digitsData(peers: 1)
    let learning = LearningSettings(model: .softmax, learningRate: 0.05, momentum: 0.9, batchSize: 32,
                                    cosineSteps: 90, seed: 7, initialSeed: 3)
    // 103 steps in rounds of 5: 20 full rounds and a last one of 3.
    var plain = try Learner(shard: data.shards[0], test: data.test, settings: learning)
    var done = 0
    while done < 103 {
        _ = plain.train(steps: min(5, 103 - done))
        done += 5
    }
    let parallel = try Baseline.dataParallel(data, learning: learning, stepsPerPeer: 103, stepsPerRound: 5)
    #expect(parallel.parameters == plain.parameters)
    #expect(parallel.evaluation == plain.evaluate())
    #expect(parallel.rounds == 21 && parallel.steps == 103 && parallel.learners == 1)
    #expect(parallel.samplesSeen == plain.samplesTrained)
    let central = try Baseline.centralised(data, learning: learning, stepsPerPeer: 103, stepsPerRound: 5)
    #expect(central.parameters == plain.parameters)
    #expect(central.evaluation == plain.evaluate())
}

@Test("data-parallel workers start from the same parameters and end each round on their exact average")
func baselineAveragesEveryRound() throws {
    let data = try digitsData(peers: 3)
    let learning = LearningSettings(model: .softmax, seed: 5, initialSeed: 2)
    // One round by hand: three learners, five steps each, then the mean.
    var learners = try data.shards.enumerated().map { i, shard in
        var s = learning
        s.seed = Baseline.workerSeed(learning.seed, index: i)
        return try Learner(shard: shard, test: data.test, settings: s)
    }
    #expect(Set(learners.map(\.parameters)).count == 1)
    for i in learners.indices { _ = learners[i].train(steps: 5) }
    let mean = (0..<learners[0].parameterCount).map { k in
        Float(learners.reduce(0.0) { $0 + Double($1.parameters[k]) } / 3)
    }
    let result = try Baseline.dataParallel(data, learning: learning, stepsPerPeer: 5, stepsPerRound: 5)
    #expect(result.parameters == mean)
    #expect(result.rounds == 1 && result.steps == 15 && result.learners == 3)
}

@Test("both references see peers × steps × batch samples when no batch is short")
func baselineSamplesSeen() throws {
    // 4 shards of 64 rows (IID cuts 256 rows evenly): batches of 32 never run short.
    let all = try Dataset.synthetic(count: 320, featureCount: 5, classCount: 3, seed: 1)
    let shared = try SharedData(all, testFraction: 0.2, seed: 1)
    let shards = try shared.train.partition(.iid(peers: 4, seed: 1))
    #expect(shards.allSatisfy { $0.count == 64 })
    let data = Baseline.PeerData(shards: shards, test: shared.test)
    let learning = LearningSettings(model: .softmax, batchSize: 32, cosineSteps: 100)
    let central = try Baseline.centralised(data, learning: learning, stepsPerPeer: 37, stepsPerRound: 5)
    let parallel = try Baseline.dataParallel(data, learning: learning, stepsPerPeer: 37, stepsPerRound: 5)
    #expect(central.samplesSeen == 4 * 37 * 32 && central.steps == 4 * 37 && central.learners == 1)
    #expect(parallel.samplesSeen == 4 * 37 * 32 && parallel.steps == 4 * 37 && parallel.learners == 4)
    // On the digits a 16-peer IID shard has 89 or 90 rows: every third batch is short, and the
    // count says so rather than claiming the nominal budget.
    let digits = try digitsData(peers: 16)
    let short = try Baseline.dataParallel(digits, learning: learning, stepsPerPeer: 30, stepsPerRound: 5)
    let expected = digits.shards.reduce(0) { $0 + 10 * $1.count }  // 30 steps = 10 passes of 3 batches
    #expect(short.samplesSeen == expected && short.samplesSeen < 16 * 30 * 32)
}

@Test("both references learn the digits well above chance in a few hundred steps")
func baselineLearnsDigits() throws {
    for partition in [PartitionScheme.iid, .dirichlet(alpha: 0.1)] {
        let settings = BaselineSettings(partition: partition, peers: 4,
                                        learning: LearningSettings(model: .softmax, cosineSteps: 85),
                                        stepsPerPeer: 100, stepsPerRound: 5)
        var calls: [Baseline.Kind: Int] = [:]
        let report = try Baseline.run(settings) { kind, done, total in
            calls[kind, default: 0] += 1
            #expect(done <= total && total == 400)
        }
        // Centralised reports each chunk of 5 of its 400 steps, data-parallel each of its 20 rounds.
        #expect(calls == [.centralised: 80, .dataParallel: 20])
        #expect(report.centralised.testAccuracy > 0.9, "centralised \(partition): \(report.centralised.testAccuracy)")
        #expect(report.dataParallel.testAccuracy > 0.8, "data-parallel \(partition): \(report.dataParallel.testAccuracy)")
        #expect(report.centralised.testLoss.isFinite && report.dataParallel.testLoss.isFinite)
    }
}

@Test("baseline settings outside their ranges are refused by name")
func baselineSettingsProblems() throws {
    #expect(BaselineSettings(peers: 4, stepsPerPeer: 10).problems().isEmpty)
    let bad = BaselineSettings(testFraction: 1, peers: 0, stepsPerPeer: 0, stepsPerRound: 0).problems()
    #expect(bad.count == 4)
    #expect(bad.contains { $0.hasPrefix("peers") } && bad.contains { $0.hasPrefix("stepsPerRound") })
    #expect(throws: BaselineError.self) { try Baseline.run(BaselineSettings(peers: 2000, stepsPerPeer: 1)) }
    var invalid = LearningSettings()
    invalid.learningRate = 0
    #expect(throws: BaselineError.self) { try Baseline.run(BaselineSettings(peers: 2, learning: invalid, stepsPerPeer: 1)) }
}
