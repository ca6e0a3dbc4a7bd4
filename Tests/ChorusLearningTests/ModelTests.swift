import Foundation
import Testing
import ChorusLearning

/// A random batch and random parameters (biases included) for gradient checks.
func randomProblem(_ model: any Model, rows: Int, seed: UInt64) -> (parameters: [Float], features: [Float], labels: [Int]) {
    var g = Xoshiro256(seed: seed)
    var parameters = model.initialParameters(seed: seed)
    for i in parameters.indices { parameters[i] += Float(0.1 * Sampling.standardNormal(using: &g)) }
    let features = (0..<rows * model.featureCount).map { _ in Float(Sampling.standardNormal(using: &g)) }
    let labels = (0..<rows).map { _ in Sampling.index(below: model.classCount, using: &g) }
    return (parameters, features, labels)
}

func loss(_ model: any Model, _ p: [Float], _ x: [Float], _ y: [Int]) -> Double {
    var scratch = [Float](repeating: 0, count: model.parameterCount)
    return Double(model.lossAndGradient(parameters: p, features: x, labels: y, gradient: &scratch))
}

let gradientCases: [ModelSpec] = [.softmax, .mlp(hidden: 40), .mlp(hidden: 7, activation: .tanh), .mlp(hidden: 33, activation: .relu)]

@Test("analytic gradients match central finite differences", arguments: gradientCases, [0, 0.05] as [Float])
func gradientCheck(spec: ModelSpec, l2: Float) {
    // 9 features and 5 classes: odd sizes exercise the vector kernels' remainders; hidden 40 and 33
    // exercise the 32-wide blocks plus a remainder.
    let model = spec.makeModel(featureCount: 9, classCount: 5, l2: l2)
    let (p, x, y) = randomProblem(model, rows: 6, seed: 17)
    var gradient = [Float](repeating: .nan, count: model.parameterCount)  // must be overwritten
    _ = model.lossAndGradient(parameters: p, features: x, labels: y, gradient: &gradient)
    #expect(gradient.allSatisfy { $0.isFinite })

    // Every coordinate: central difference with a step large enough that Float rounding of the
    // loss (≈1e-7) contributes ≈1e-4, small enough that curvature contributes less.
    let eps: Float = 1e-3
    var worst = 0.0
    for i in p.indices {
        var plus = p, minus = p
        plus[i] += eps
        minus[i] -= eps
        let numeric = (loss(model, plus, x, y) - loss(model, minus, x, y)) / Double(plus[i] - minus[i])
        let analytic = Double(gradient[i])
        let error = abs(numeric - analytic) / (2e-3 + 2e-2 * abs(analytic))
        worst = max(worst, error)
    }
    #expect(worst < 1, "worst gradient error is \(worst) of the tolerance")

    // Along the gradient itself, where the signal is largest: the directional derivative is ‖g‖².
    let norm = gradient.reduce(0.0) { $0 + Double($1) * Double($1) }.squareRoot()
    let step = 1e-3 / norm
    let plus = zip(p, gradient).map { $0 + Float(step) * $1 }
    let minus = zip(p, gradient).map { $0 - Float(step) * $1 }
    let directional = (loss(model, plus, x, y) - loss(model, minus, x, y)) / (2 * step)
    #expect(abs(directional - norm * norm) < 1e-2 * norm * norm)
}

@Test("the gradient is the mean over the batch, not the sum")
func gradientIsMean() {
    let model = ModelSpec.mlp(hidden: 8).makeModel(featureCount: 4, classCount: 3)
    let (p, x, y) = randomProblem(model, rows: 1, seed: 3)
    var once = [Float](repeating: 0, count: model.parameterCount)
    var twice = once
    let l1 = model.lossAndGradient(parameters: p, features: x, labels: y, gradient: &once)
    let l2 = model.lossAndGradient(parameters: p, features: x + x, labels: y + y, gradient: &twice)
    #expect(abs(l1 - l2) < 1e-6)
    #expect(zip(once, twice).allSatisfy { abs($0 - $1) < 1e-6 })
}

@Test("softmax stays finite and exact for huge logits")
func softmaxStability() {
    let p = Softmax.probabilities(logits: [1000, 999, -1000])
    #expect(p.allSatisfy { $0.isFinite })
    #expect(abs(p.reduce(0, +) - 1) < 1e-6)
    #expect(abs(p[0] - 0.7310586) < 1e-6 && abs(p[1] - 0.2689414) < 1e-6 && p[2] == 0)
    #expect(Softmax.probabilities(logits: [-3e38, 3e38]) == [0, 1])
    // The probability of class 0 underflows to 0, the loss does not become infinite.
    #expect(abs(Softmax.crossEntropy(logits: [0, 200], label: 0) - 200) < 1e-3)
    #expect(Softmax.crossEntropy(logits: [5000, 0], label: 0) == 0)
}

@Test("a model with huge weights still gives a finite loss and gradient")
func modelStability() {
    let model = SoftmaxRegression(featureCount: 64, classCount: 10)
    // W[f, c] = 50·c, so with 64 unit features the logits are 0, 3200, …, 28800.
    var p = [Float](repeating: 0, count: model.parameterCount)
    for f in 0..<64 { for c in 0..<10 { p[f * 10 + c] = 50 * Float(c) } }
    let x = [Float](repeating: 1, count: 64)
    var g = [Float](repeating: 0, count: model.parameterCount)
    let l = model.lossAndGradient(parameters: p, features: x, labels: [0], gradient: &g)
    #expect(abs(l - 28800) < 1)
    #expect(g.allSatisfy { $0.isFinite })
    // ∂loss/∂b = softmax − onehot = onehot(9) − onehot(0).
    #expect(Array(g[640...]) == [-1, 0, 0, 0, 0, 0, 0, 0, 0, 1])
}

@Test("evaluation computes mean cross-entropy and accuracy")
func evaluationByHand() throws {
    // Identity weights: the logits are the features.
    let model = SoftmaxRegression(featureCount: 2, classCount: 2)
    let p: [Float] = [1, 0, 0, 1, 0, 0]
    let d = try Dataset(featureCount: 2, classCount: 2, features: [1, 0, 0, 1, 1, 0], labels: [0, 1, 1])
    let (loss, accuracy) = model.evaluate(parameters: p, on: d)
    #expect(abs(accuracy - 2.0 / 3) < 1e-12)
    let expected = (2 * log(1 + exp(-1.0)) + log(1 + exp(1.0))) / 3
    #expect(abs(loss - expected) < 1e-6)
    #expect(model.predict(parameters: p, on: d) == [0, 1, 0])
    #expect(model.predict(parameters: p, features: [0.2, 0.7]) == 1)
    let probabilities = model.probabilities(parameters: p, features: [1, 0])
    #expect(abs(probabilities[0] - 0.7310586) < 1e-6)
}

@Test("evaluation agrees with the training loss and handles more rows than one chunk")
func evaluationMatchesTrainingLoss() throws {
    let d = try Dataset.synthetic(count: 700, featureCount: 12, classCount: 4, seed: 1)
    let model = ModelSpec.mlp(hidden: 16).makeModel(featureCount: 12, classCount: 4)
    let p = model.initialParameters(seed: 2)
    var g = [Float](repeating: 0, count: model.parameterCount)
    let training = model.lossAndGradient(parameters: p, features: d.features, labels: d.labels, gradient: &g)
    let (loss, accuracy) = model.evaluate(parameters: p, on: d)
    #expect(abs(loss - Double(training)) < 1e-4)
    let predictions = model.predict(parameters: p, on: d)
    #expect(predictions.count == 700)
    let correct = zip(predictions, d.labels).filter { $0 == $1 }.count
    #expect(abs(accuracy - Double(correct) / 700) < 1e-12)
}

@Test("initial parameters depend on the seed only and follow the initialisation scale")
func initialisation() {
    let mlp = MLP(featureCount: 64, hidden: 256, classCount: 10)
    let a = mlp.initialParameters(seed: 1)
    #expect(a == mlp.initialParameters(seed: 1))
    #expect(a != mlp.initialParameters(seed: 2))
    #expect(a.count == 64 * 256 + 256 + 256 * 10 + 10)
    // He: W1 variance 2/64; biases zero.
    let w1 = a[0..<(64 * 256)]
    let variance = w1.reduce(0.0) { $0 + Double($1 * $1) } / Double(w1.count)
    #expect(abs(variance - 2.0 / 64) < 0.1 * 2.0 / 64)
    #expect(a[(64 * 256)..<(64 * 256 + 256)].allSatisfy { $0 == 0 })
}

@Test("the L2 term adds λ/2·‖W‖² to the loss and leaves biases alone")
func l2Term() {
    let plain = SoftmaxRegression(featureCount: 3, classCount: 2)
    let decayed = SoftmaxRegression(featureCount: 3, classCount: 2, l2: 0.5)
    let p: [Float] = [1, 2, 0, 0, 0, 0, 7, 7]  // weights 1, 2, 0…; biases 7, 7
    let x: [Float] = [0, 0, 0]
    var g0 = [Float](repeating: 0, count: 8), g1 = g0
    let l0 = plain.lossAndGradient(parameters: p, features: x, labels: [0], gradient: &g0)
    let l1 = decayed.lossAndGradient(parameters: p, features: x, labels: [0], gradient: &g1)
    #expect(abs((l1 - l0) - 0.25 * 5) < 1e-6)
    #expect(abs(g1[0] - g0[0] - 0.5) < 1e-6 && abs(g1[1] - g0[1] - 1) < 1e-6)
    #expect(g1[6] == g0[6] && g1[7] == g0[7])
}

@Test("model strings parse", arguments: [
    ("softmax", ModelSpec.softmax), (" Softmax ", .softmax), ("mlp", .mlp(hidden: 64)), ("mlp:128", .mlp(hidden: 128)),
    ("MLP:1", .mlp(hidden: 1)), ("mlp:32:tanh", .mlp(hidden: 32, activation: .tanh)), ("mlp:32:relu", .mlp(hidden: 32)),
])
func modelParsing(text: String, expected: ModelSpec) throws {
    let spec = try ModelSpec(parsing: text)
    #expect(spec == expected)
    #expect(try ModelSpec(parsing: spec.description) == spec)
}

@Test("bad model strings give a message that quotes the input and says what is accepted", arguments: [
    ("", "empty"), ("cnn", "unknown model"), ("softmax:3", "takes no parameter"), ("mlp:", "missing"),
    ("mlp:abc", "not a positive integer"), ("mlp:0", "not a positive integer"), ("mlp:-5", "not a positive integer"),
    ("mlp:1.5", "not a positive integer"), ("mlp:99999999", "larger than"), ("mlp:64:sigmoid", "unknown activation"),
    ("mlp:64:relu:x", "too many"),
])
func modelParsingErrors(text: String, problem: String) {
    do throws(SpecParseError) {
        _ = try ModelSpec(parsing: text)
        Issue.record("parsed \"\(text)\"")
    } catch {
        #expect(error.description.contains("\"\(text)\""))
        #expect(error.description.contains(problem))
        #expect(error.description.contains("mlp:128"))
    }
}

@Test("a model spec builds the model it names, with the parameter count it predicts")
func specBuildsModel() throws {
    for spec in [ModelSpec.softmax, .mlp(hidden: 64), .mlp(hidden: 5, activation: .tanh)] {
        let model = spec.makeModel(featureCount: 64, classCount: 10, l2: 0.01)
        #expect(model.spec == spec)
        #expect(model.l2 == 0.01)
        #expect(model.parameterCount == spec.parameterCount(featureCount: 64, classCount: 10))
        #expect(model.initialParameters(seed: 1).count == model.parameterCount)
    }
    #expect(ModelSpec.softmax.parameterCount(featureCount: 64, classCount: 10) == 650)
    #expect(ModelSpec.mlp(hidden: 64).parameterCount(featureCount: 64, classCount: 10) == 64 * 64 + 64 + 64 * 10 + 10)
}

@Test("a model spec is Codable as its string")
func specCodable() throws {
    let json = try JSONEncoder().encode(["model": ModelSpec.mlp(hidden: 128)])
    #expect(String(decoding: json, as: UTF8.self) == #"{"model":"mlp:128"}"#)
    #expect(try JSONDecoder().decode([String: ModelSpec].self, from: json)["model"] == .mlp(hidden: 128))
    #expect(throws: DecodingError.self) {
        try JSONDecoder().decode([String: ModelSpec].self, from: Data(#"{"model":"mlp:0"}"#.utf8))
    }
}
