/// A multilayer perceptron with one hidden layer: `p = softmax(act(x·W1 + b1)·W2 + b2)`, trained
/// with cross-entropy. Non-convex, so it is where averaging independently trained peers can fail
/// and gossip has to keep them close.
///
/// Parameter layout (F = featureCount, H = hidden, C = classCount), `F·H + H + H·C + C` floats:
///
///     [0, F·H)                  W1, input-major: W1[f, h] at f·H + h
///     [F·H, F·H + H)            b1[h]
///     [F·H + H, F·H + H + H·C)  W2, input-major: W2[h, c] at F·H + H + h·C + c
///     [F·H + H + H·C, end)      b2[c]
public struct MLP: Model, Hashable {
    public let featureCount: Int
    public let hidden: Int
    public let classCount: Int
    public let activation: Activation
    public let l2: Float

    public init(featureCount: Int, hidden: Int, classCount: Int, activation: Activation = .relu, l2: Float = 0) {
        precondition(featureCount > 0 && hidden > 0 && classCount > 0, "an MLP needs featureCount > 0, hidden > 0 and classCount > 0")
        precondition(l2 >= 0 && l2.isFinite, "l2 must be finite and non-negative")
        self.featureCount = featureCount
        self.hidden = hidden
        self.classCount = classCount
        self.activation = activation
        self.l2 = l2
    }

    public var spec: ModelSpec { .mlp(hidden: hidden, activation: activation) }
    public var parameterCount: Int { w2Offset + hidden * classCount + classCount }
    var b1Offset: Int { featureCount * hidden }
    var w2Offset: Int { b1Offset + hidden }
    var b2Offset: Int { w2Offset + hidden * classCount }

    /// Weights Gaussian, biases 0. W1 uses He (σ² = 2/F) for ReLU, which keeps the activations'
    /// variance steady through a rectifier, and Xavier (σ² = 2/(F+H)) for tanh, which keeps tanh
    /// out of saturation; W2 feeds a softmax and uses Xavier (σ² = 2/(H+C)).
    public func initialParameters(seed: UInt64) -> [Float] {
        var rng = Xoshiro256(seed: seed)
        var p = [Float](repeating: 0, count: parameterCount)
        let sigma1 = activation == .relu
            ? (2.0 / Double(featureCount)).squareRoot()
            : (2.0 / Double(featureCount + hidden)).squareRoot()
        let sigma2 = (2.0 / Double(hidden + classCount)).squareRoot()
        for i in 0..<b1Offset { p[i] = Float(sigma1 * Sampling.standardNormal(using: &rng)) }
        for i in w2Offset..<b2Offset { p[i] = Float(sigma2 * Sampling.standardNormal(using: &rng)) }
        return p
    }

    /// Hidden activations for `rows` rows into `h` (rows × hidden).
    private func hiddenLayer(_ p: UnsafePointer<Float>, _ x: UnsafePointer<Float>, rows: Int, into h: UnsafeMutablePointer<Float>) {
        denseForward(input: x, rows: rows, inputs: featureCount, weights: p, bias: p + b1Offset,
                     outputs: hidden, output: h)
        let n = rows * hidden
        switch activation {
        case .relu: for k in 0..<n { h[k] = max(h[k], 0) }
        case .tanh: for k in 0..<n { h[k] = mathTanh(h[k]) }
        }
    }

    public func logits(parameters: UnsafeBufferPointer<Float>, features: UnsafeBufferPointer<Float>,
                       rowCount: Int, into logits: UnsafeMutableBufferPointer<Float>) {
        checkShapes(parameters: parameters.count, features: features.count, rows: rowCount)
        precondition(logits.count >= rowCount * classCount, "logits buffer too small")
        guard rowCount > 0 else { return }
        let p = parameters.baseAddress!
        withUnsafeTemporaryAllocation(of: Float.self, capacity: rowCount * hidden) { scratch in
            let h = scratch.baseAddress!
            hiddenLayer(p, features.baseAddress!, rows: rowCount, into: h)
            denseForward(input: h, rows: rowCount, inputs: hidden, weights: p + w2Offset, bias: p + b2Offset,
                         outputs: classCount, output: logits.baseAddress!)
        }
    }

    public func lossAndGradient(parameters: UnsafeBufferPointer<Float>, features: UnsafeBufferPointer<Float>,
                                labels: UnsafeBufferPointer<Int>, gradient: UnsafeMutableBufferPointer<Float>) -> Float {
        let rows = labels.count
        checkShapes(parameters: parameters.count, features: features.count, rows: rows, gradient: gradient.count)
        precondition(rows > 0, "empty batch")
        let p = parameters.baseAddress!, x = features.baseAddress!, g = gradient.baseAddress!
        let H = hidden, C = classCount
        g.update(repeating: 0, count: parameterCount)
        // Scratch: activations (rows×H), their gradient (rows×H), logits (rows×C), W2ᵀ (C×H).
        return withUnsafeTemporaryAllocation(of: Float.self, capacity: 2 * rows * H + rows * C + C * H) { scratch in
            let h = scratch.baseAddress!
            let dh = h + rows * H
            let z = dh + rows * H
            let w2t = z + rows * C
            let w2 = p + w2Offset

            hiddenLayer(p, x, rows: rows, into: h)
            denseForward(input: h, rows: rows, inputs: H, weights: w2, bias: p + b2Offset, outputs: C, output: z)
            let loss = softmaxCrossEntropy(logits: z, rows: rows, classes: C, labels: labels.baseAddress!,
                                           scale: 1 / Float(rows))
            // Output layer: ∂W2 = hᵀ·dz, ∂b2 = Σ dz.
            denseBackward(input: h, rows: rows, inputs: H, delta: z, outputs: C,
                          weightGradient: g + w2Offset, biasGradient: g + b2Offset)
            // Back through W2: dh[r, :] = Σ_c dz[r, c]·W2[:, c]. With W2 transposed once per batch
            // this is a dense layer without bias (dz·W2ᵀ) rather than a strided dot product per unit.
            for hIndex in 0..<H {
                for c in 0..<C { w2t[c * H + hIndex] = w2[hIndex * C + c] }
            }
            denseForward(input: z, rows: rows, inputs: C, weights: w2t, bias: nil, outputs: H, output: dh)
            // Through the non-linearity, using the stored activations: relu' = [h > 0], tanh' = 1 − h².
            let n = rows * H
            switch activation {
            case .relu: for k in 0..<n { dh[k] = h[k] > 0 ? dh[k] : 0 }
            case .tanh: for k in 0..<n { dh[k] *= 1 - h[k] * h[k] }
            }
            // Hidden layer: ∂W1 = xᵀ·dh, ∂b1 = Σ dh.
            denseBackward(input: x, rows: rows, inputs: featureCount, delta: dh, outputs: H,
                          weightGradient: g, biasGradient: g + b1Offset)
            let penalty = addL2(l2, weights: p, count: b1Offset, gradient: g)
                + addL2(l2, weights: w2, count: H * C, gradient: g + w2Offset)
            return Float(loss / Double(rows) + penalty)
        }
    }
}
