import Testing
import ChorusLearning

@Test("the bundled digits load as 1797 rows of 64 pixels in [0, 1] with 10 classes")
func digitsLoad() throws {
    let d = try Dataset.digits()
    #expect(d.count == 1797)
    #expect(d.featureCount == 64)
    #expect(d.classCount == 10)
    #expect(d.features.count == 1797 * 64)
    #expect(d.features.allSatisfy { $0 >= 0 && $0 <= 1 })
    #expect(d.features.max() == 1)  // 16/16: the scaling is by 16, not by the observed maximum
    #expect(d.features.contains(0.0625))  // 1/16
    #expect(d.classCounts == [178, 182, 177, 183, 181, 182, 181, 179, 174, 180])
    // The first row of the file is a 0 whose third pixel is 5.
    #expect(d.labels[0] == 0)
    #expect(d.features(ofRow: 0)[2] == 5.0 / 16)
}

@Test("the split is 80/20, disjoint, complete and stratified")
func splitShape() throws {
    let d = try Dataset.digits()
    let (train, test) = try d.splitIndices(testFraction: 0.2, seed: 1)
    #expect(test.count == 359)  // round(0.2 · 1797)
    #expect(train.count == 1797 - 359)
    #expect(Set(train).isDisjoint(with: test))
    #expect((train + test).sorted() == Array(0..<1797))
    let counts = d.classCounts
    var testCounts = [Int](repeating: 0, count: 10)
    for row in test { testCounts[d.labels[row]] += 1 }
    for c in 0..<10 { #expect(abs(Double(testCounts[c]) - 0.2 * Double(counts[c])) <= 1) }
}

@Test("the split is deterministic for a seed and changes with the seed")
func splitDeterminism() throws {
    let d = try Dataset.digits()
    let a = try d.splitIndices(testFraction: 0.2, seed: 1)
    let b = try d.splitIndices(testFraction: 0.2, seed: 1)
    let c = try d.splitIndices(testFraction: 0.2, seed: 2)
    #expect(a.test == b.test && a.train == b.train)
    #expect(a.test != c.test)
    let (train, test) = try d.split(testFraction: 0.2, seed: 1)
    #expect(test == d.subset(a.test))
    #expect(train == d.subset(a.train))
}

@Test("a test fraction outside [0, 1] is refused", arguments: [-0.1, 1.5, Double.nan])
func splitRejectsBadFraction(fraction: Double) throws {
    let d = try Dataset.digits()
    #expect(throws: DatasetError.self) { try d.split(testFraction: fraction, seed: 1) }
}

@Test("a dataset built from inconsistent arrays is refused")
func datasetValidation() {
    #expect(throws: DatasetError.labelOutOfRange(row: 1, label: 3, classCount: 3)) {
        try Dataset(featureCount: 1, classCount: 3, features: [0, 1], labels: [0, 3])
    }
    #expect(throws: DatasetError.self) { try Dataset(featureCount: 2, classCount: 3, features: [0, 1, 2], labels: [0, 1]) }
    #expect(throws: DatasetError.nonFiniteFeature(row: 1, column: 0)) {
        try Dataset(featureCount: 2, classCount: 2, features: [0, 1, .nan, 2], labels: [0, 1])
    }
    #expect(throws: DatasetError.self) { try Dataset(featureCount: 1, classCount: 2, features: [0], labels: [-1]) }
}

@Test("synthetic data has the requested shape, balanced labels and a fixed seed")
func syntheticShape() throws {
    let a = try Dataset.synthetic(count: 1000, featureCount: 300, classCount: 7, seed: 4)
    #expect(a.count == 1000 && a.featureCount == 300 && a.classCount == 7)
    #expect(a.features.count == 1000 * 300)
    #expect(a.classCounts.allSatisfy { $0 == 142 || $0 == 143 })
    #expect(a == (try Dataset.synthetic(count: 1000, featureCount: 300, classCount: 7, seed: 4)))
    #expect(a != (try Dataset.synthetic(count: 1000, featureCount: 300, classCount: 7, seed: 5)))
    #expect(throws: DatasetError.self) { try Dataset.synthetic(count: 0, featureCount: 3, classCount: 2, seed: 1) }
}

@Test("synthetic clusters are learnable but not trivially so")
func syntheticLearnable() throws {
    let d = try Dataset.synthetic(count: 2000, featureCount: 50, classCount: 5, seed: 8)
    let (train, test) = try d.split(testFraction: 0.25, seed: 1)
    let model = ModelSpec.softmax.makeModel(featureCount: 50, classCount: 5)
    var trainer = try Trainer(model: model, shard: train, optimizer: SGD(learningRate: 0.05, momentum: 0.9), batchSize: 32, seed: 1)
    let before = trainer.evaluate(on: test).accuracy
    for _ in 0..<300 { trainer.step() }
    let after = trainer.evaluate(on: test).accuracy
    #expect(before < 0.5)
    #expect(after > 0.8)
}
