/// Multinomial logistic (softmax) regression: `p = softmax(x·W + b)`, trained with cross-entropy.
/// Convex, so every peer converges to the same optimum: the baseline for gossip experiments.
///
/// Parameter layout (F = featureCount, C = classCount), `F·C + C` floats:
///
///     [0, F·C)        W, input-major: W[f, c] at f·C + c
///     [F·C, F·C + C)  b[c]
///
/// Input-major keeps the kernels' inner loops over the C classes contiguous (see Kernels.swift).
public struct SoftmaxRegression: Model, Hashable {
    public let featureCount: Int
    public let classCount: Int
    public let l2: Float

    public init(featureCount: Int, classCount: Int, l2: Float = 0) {
        precondition(featureCount > 0 && classCount > 0, "softmax regression needs featureCount > 0 and classCount > 0")
        precondition(l2 >= 0 && l2.isFinite, "l2 must be finite and non-negative")
        self.featureCount = featureCount
        self.classCount = classCount
        self.l2 = l2
    }

    public var parameterCount: Int { featureCount * classCount + classCount }
    public var spec: ModelSpec { .softmax }
    var biasOffset: Int { featureCount * classCount }

    /// Weights N(0, 0.01²), biases 0: the problem is convex, so a small random start only breaks
    /// ties; it is still seeded so peers can agree on it.
    public func initialParameters(seed: UInt64) -> [Float] {
        var rng = Xoshiro256(seed: seed)
        var p = [Float](repeating: 0, count: parameterCount)
        for i in 0..<biasOffset { p[i] = Float(0.01 * Sampling.standardNormal(using: &rng)) }
        return p
    }

    public func logits(parameters: UnsafeBufferPointer<Float>, features: UnsafeBufferPointer<Float>,
                       rowCount: Int, into logits: UnsafeMutableBufferPointer<Float>) {
        checkShapes(parameters: parameters.count, features: features.count, rows: rowCount)
        precondition(logits.count >= rowCount * classCount, "logits buffer too small")
        guard rowCount > 0 else { return }
        let p = parameters.baseAddress!
        denseForward(input: features.baseAddress!, rows: rowCount, inputs: featureCount,
                     weights: p, bias: p + biasOffset, outputs: classCount, output: logits.baseAddress!)
    }

    public func lossAndGradient(parameters: UnsafeBufferPointer<Float>, features: UnsafeBufferPointer<Float>,
                                labels: UnsafeBufferPointer<Int>, gradient: UnsafeMutableBufferPointer<Float>) -> Float {
        let rows = labels.count
        checkShapes(parameters: parameters.count, features: features.count, rows: rows, gradient: gradient.count)
        precondition(rows > 0, "empty batch")
        let p = parameters.baseAddress!, x = features.baseAddress!, g = gradient.baseAddress!
        g.update(repeating: 0, count: parameterCount)
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: rows * classCount) { scratch in
            let z = scratch.baseAddress!
            denseForward(input: x, rows: rows, inputs: featureCount, weights: p, bias: p + biasOffset,
                         outputs: classCount, output: z)
            // z becomes ∂(mean loss)/∂logits.
            let loss = softmaxCrossEntropy(logits: z, rows: rows, classes: classCount,
                                           labels: labels.baseAddress!, scale: 1 / Float(rows))
            denseBackward(input: x, rows: rows, inputs: featureCount, delta: z, outputs: classCount,
                          weightGradient: g, biasGradient: g + biasOffset)
            let penalty = addL2(l2, weights: p, count: biasOffset, gradient: g)
            return Float(loss / Double(rows) + penalty)
        }
    }
}
