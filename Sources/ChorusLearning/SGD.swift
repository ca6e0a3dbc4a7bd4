/// Mini-batch stochastic gradient descent with heavy-ball momentum, in the PyTorch convention:
///
///     g ← ∇ + weightDecay·θ
///     v ← momentum·v + g
///     θ ← θ − learningRate·v
///
/// The velocity lives here rather than in the parameter vector because gossip averages only
/// parameters: after a peer's parameters are replaced by an average, its velocity still points
/// along its own recent gradients (keep it) or can be dropped with `resetMomentum()`.
public struct SGD: Sendable, Equatable {
    /// Step size.
    public var learningRate: Float
    /// Fraction of the previous update carried into the next; 0 is plain SGD, 0.9 is usual.
    public var momentum: Float
    /// Decoupled-from-the-loss decay of every parameter (biases included), for when the model's
    /// own L2 term (weights only, part of the loss) is not wanted.
    public var weightDecay: Float
    /// The momentum buffer; empty until the first step, and resized to zeros if the parameter
    /// count changes. Public so that checkpoints can save and restore it.
    public var velocity: [Float]

    public init(learningRate: Float = 0.1, momentum: Float = 0.9, weightDecay: Float = 0) {
        self.learningRate = learningRate
        self.momentum = momentum
        self.weightDecay = weightDecay
        self.velocity = []
    }

    /// Problems with the settings, each naming the field and the valid range.
    public func problems() -> [String] {
        var out: [String] = []
        if !(learningRate.isFinite && learningRate > 0) { out.append("learningRate must be positive and finite, got \(learningRate)") }
        if !(momentum >= 0 && momentum < 1) { out.append("momentum must be in [0, 1), got \(momentum)") }
        if !(weightDecay.isFinite && weightDecay >= 0) { out.append("weightDecay must be finite and non-negative, got \(weightDecay)") }
        return out
    }

    /// One update of `parameters` along `gradient` (same length).
    public mutating func step(parameters: inout [Float], gradient: [Float]) {
        precondition(gradient.count == parameters.count, "gradient has \(gradient.count) elements, parameters \(parameters.count)")
        if velocity.count != parameters.count { velocity = [Float](repeating: 0, count: parameters.count) }
        let lr = learningRate, mu = momentum, wd = weightDecay
        let n = parameters.count
        guard n > 0 else { return }
        parameters.withUnsafeMutableBufferPointer { pb in
            gradient.withUnsafeBufferPointer { gb in
                velocity.withUnsafeMutableBufferPointer { vb in
                    let p = pb.baseAddress!, g = gb.baseAddress!, v = vb.baseAddress!
                    if wd == 0 {
                        for k in 0..<n {
                            v[k] = mu * v[k] + g[k]
                            p[k] -= lr * v[k]
                        }
                    } else {
                        for k in 0..<n {
                            v[k] = mu * v[k] + g[k] + wd * p[k]
                            p[k] -= lr * v[k]
                        }
                    }
                }
            }
        }
    }

    /// Forgets the velocity (the next step is a plain gradient step).
    public mutating func resetMomentum() {
        velocity = []
    }
}
