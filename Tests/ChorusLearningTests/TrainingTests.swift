import Testing
import ChorusLearning

@Test("an SGD step with momentum matches a hand computation")
func sgdMomentumByHand() {
    var sgd = SGD(learningRate: 0.1, momentum: 0.9)
    var p: [Float] = [1, -2]
    sgd.step(parameters: &p, gradient: [0.5, 1])
    // v = [0.5, 1]; p = [1 − 0.05, −2 − 0.1]
    #expect(abs(p[0] - 0.95) < 1e-6 && abs(p[1] + 2.1) < 1e-6)
    sgd.step(parameters: &p, gradient: [0.5, -1])
    // v = [0.9·0.5 + 0.5, 0.9·1 − 1] = [0.95, −0.1]; p = [0.95 − 0.095, −2.1 + 0.01]
    #expect(abs(p[0] - 0.855) < 1e-6 && abs(p[1] + 2.09) < 1e-6)
    #expect(abs(sgd.velocity[0] - 0.95) < 1e-6 && abs(sgd.velocity[1] + 0.1) < 1e-6)
    sgd.resetMomentum()
    sgd.step(parameters: &p, gradient: [1, 1])
    // Plain step after the reset: v = g.
    #expect(abs(p[0] - 0.755) < 1e-6 && abs(p[1] + 2.19) < 1e-6)
}

@Test("SGD weight decay shrinks parameters with a zero gradient")
func sgdWeightDecay() {
    var sgd = SGD(learningRate: 0.1, momentum: 0, weightDecay: 0.1)
    var p: [Float] = [1, -3]
    sgd.step(parameters: &p, gradient: [0, 0])
    #expect(abs(p[0] - 0.99) < 1e-6 && abs(p[1] + 2.97) < 1e-6)
}

@Test("SGD settings outside their ranges are reported by name")
func sgdProblems() {
    #expect(SGD().problems().isEmpty)
    let bad = SGD(learningRate: -1, momentum: 1, weightDecay: .nan).problems()
    #expect(bad.count == 3)
    #expect(bad.contains { $0.hasPrefix("learningRate") } && bad.contains { $0.hasPrefix("momentum") })
}

@Test("a trainer refuses parameters of the wrong length or with NaN and keeps its own")
func trainerRejectsBadParameters() throws {
    let (train, _) = try digitsSplit()
    let model = ModelSpec.softmax.makeModel(featureCount: 64, classCount: 10)
    var trainer = try Trainer(model: model, shard: train, seed: 1)
    let before = trainer.parameters
    #expect(throws: TrainerError.parameterCountMismatch(expected: 650, got: 649)) {
        try trainer.replaceParameters([Float](repeating: 0, count: 649))
    }
    var poisoned = before
    poisoned[10] = .nan
    #expect(throws: TrainerError.nonFiniteParameter(index: 10)) { try trainer.replaceParameters(poisoned) }
    #expect(trainer.parameters == before)
    let zeros = [Float](repeating: 0, count: 650)
    try trainer.replaceParameters(zeros)
    #expect(trainer.parameters == zeros)
    #expect(throws: TrainerError.self) {
        try Trainer(model: model, shard: train, seed: 1, parameters: [Float](repeating: 0, count: 3))
    }
}

@Test("a trainer refuses a shard, batch size or optimiser that cannot work")
func trainerValidation() throws {
    let (train, _) = try digitsSplit()
    let wrongShape = ModelSpec.softmax.makeModel(featureCount: 63, classCount: 10)
    #expect(throws: TrainerError.self) { try Trainer(model: wrongShape, shard: train, seed: 1) }
    let model = ModelSpec.softmax.makeModel(featureCount: 64, classCount: 10)
    #expect(throws: TrainerError.invalidBatchSize(0)) { try Trainer(model: model, shard: train, batchSize: 0, seed: 1) }
    #expect(throws: TrainerError.emptyShard) { try Trainer(model: model, shard: train.subset([]), seed: 1) }
    #expect(throws: TrainerError.self) { try Trainer(model: model, shard: train, optimizer: SGD(learningRate: 0), seed: 1) }
}

@Test("epochs count full passes over the shard, with a short last batch")
func trainerEpochs() throws {
    let (train, _) = try digitsSplit()
    let shard = train.subset(0..<10)
    var trainer = try Trainer(model: SoftmaxRegression(featureCount: 64, classCount: 10), shard: shard, batchSize: 4, seed: 1)
    trainer.step(); trainer.step()
    #expect(trainer.epoch == 0 && trainer.samplesSeen == 8)
    #expect(abs(trainer.epochProgress - 0.8) < 1e-12)
    trainer.step()
    #expect(trainer.epoch == 1 && trainer.samplesSeen == 10 && trainer.steps == 3)
    for _ in 0..<3 { trainer.step() }
    #expect(trainer.epoch == 2 && trainer.samplesSeen == 20 && trainer.steps == 6)
    // A batch larger than the shard is the whole shard.
    var whole = try Trainer(model: SoftmaxRegression(featureCount: 64, classCount: 10), shard: shard, batchSize: 64, seed: 1)
    whole.step()
    #expect(whole.epoch == 1 && whole.samplesSeen == 10)
}

@Test("training is reproducible from the seed")
func trainerDeterminism() throws {
    let (train, _) = try digitsSplit()
    let model = ModelSpec.mlp(hidden: 16).makeModel(featureCount: 64, classCount: 10)
    func run(_ seed: UInt64) throws -> [Float] {
        var t = try Trainer(model: model, shard: train, optimizer: SGD(learningRate: 0.05, momentum: 0.9), seed: seed,
                            parameters: model.initialParameters(seed: 99))
        for _ in 0..<30 { t.step() }
        return t.parameters
    }
    #expect(try run(1) == run(1))
    #expect(try run(1) != run(2))
}

@Test("softmax regression on digits reaches 94 % test accuracy in 400 steps")
func softmaxLearnsDigits() throws {
    let (train, test) = try digitsSplit()
    let model = ModelSpec.softmax.makeModel(featureCount: 64, classCount: 10)
    var trainer = try Trainer(model: model, shard: train, optimizer: SGD(learningRate: 0.1, momentum: 0.9), batchSize: 32, seed: 1)
    let (initialLoss, initialAccuracy) = trainer.evaluate(on: test)
    #expect(initialAccuracy < 0.3)
    var early = 0.0, late = 0.0
    for step in 0..<400 {
        let loss = Double(trainer.step())
        if step < 20 { early += loss } else if step >= 380 { late += loss }
    }
    let (loss, accuracy) = trainer.evaluate(on: test)
    #expect(late < early / 4)
    #expect(loss < initialLoss / 4)
    #expect(accuracy >= 0.94, "test accuracy \(accuracy)")
}

@Test("an MLP on digits reaches 95 % test accuracy in 300 steps")
func mlpLearnsDigits() throws {
    let (train, test) = try digitsSplit()
    let model = ModelSpec.mlp(hidden: 32).makeModel(featureCount: 64, classCount: 10)
    var trainer = try Trainer(model: model, shard: train, optimizer: SGD(learningRate: 0.1, momentum: 0.9), batchSize: 32, seed: 1)
    for _ in 0..<300 { trainer.step() }
    let accuracy = trainer.evaluate(on: test).accuracy
    #expect(accuracy >= 0.95, "test accuracy \(accuracy)")
}

@Test("averaging parameters from outside between steps keeps training going")
func externalReplacement() throws {
    // Two peers on the halves of an IID partition, averaged every 10 steps: the pattern the
    // gossip layer uses, in miniature.
    let (train, test) = try digitsSplit()
    let shards = try train.partition(.iid(peers: 2, seed: 1))
    let model = ModelSpec.softmax.makeModel(featureCount: 64, classCount: 10)
    let start = model.initialParameters(seed: 1)
    var peers = try shards.enumerated().map { i, shard in
        try Trainer(model: model, shard: shard, optimizer: SGD(learningRate: 0.1, momentum: 0.9), seed: UInt64(i), parameters: start)
    }
    for round in 0..<30 {
        for i in peers.indices { for _ in 0..<10 { peers[i].step() } }
        let mean = zip(peers[0].parameters, peers[1].parameters).map { ($0 + $1) / 2 }
        for i in peers.indices { try peers[i].replaceParameters(mean) }
        if round == 29 { #expect(peers[0].parameters == peers[1].parameters) }
    }
    #expect(peers[0].evaluate(on: test).accuracy >= 0.94)
}

@Test("a model adopted at step 2^64 - 1 (a hostile or broken peer) is capped, and training on does not overflow")
func adoptedStepIsCapped() throws {
    let data = try digitsSplit()
    var learner = try Learner(shard: data.train, test: data.test, settings: LearningSettings(model: .softmax))
    try learner.adopt(parameters: learner.parameters, step: .max)
    #expect(learner.steps == Learner.maxInheritedCount)
    _ = learner.train(steps: 3)
    #expect(learner.steps == Learner.maxInheritedCount + 3)
    try learner.resume(parameters: learner.parameters, steps: .max, epoch: .max)
    _ = learner.train(steps: 1)
    #expect(learner.epoch >= Learner.maxInheritedCount)
}
