// The numerical kernels shared by the models. Matrices are row-major and weights are stored
// input-major (`W[i, o]` at `i * outputs + o`), so that every inner loop below runs over
// contiguous memory with no reduction: `y[o] += a * x[o]`. LLVM vectorises such loops without
// needing to reassociate floating-point sums, which Swift never permits; a dot-product inner loop
// would stay scalar. There are no allocations here: callers pass every buffer.

/// `y[0..<n] += a * x[0..<n]`.
@inline(__always)
func axpy(_ n: Int, _ a: Float, _ x: UnsafePointer<Float>, _ y: UnsafeMutablePointer<Float>) {
    for k in 0..<n { y[k] += a * x[k] }
}

/// Outputs handled together by the register-blocked kernels: four 8-wide accumulators, which
/// fit in the 16 SSE registers of baseline x86-64 alongside the operands.
let blockWidth = 32

@inline(__always) private func load8(_ p: UnsafePointer<Float>) -> SIMD8<Float> {
    UnsafeRawPointer(p).loadUnaligned(as: SIMD8<Float>.self)
}

@inline(__always) private func store8(_ v: SIMD8<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD8<Float>.self)
}

/// `output[r, :] = bias + Σᵢ input[r, i] · weights[i, :]` for every row r (bias zero when nil).
///
/// Wide layers (≥ 32 outputs) keep 32 outputs of a row in registers while running over the
/// inputs, so each weight is loaded once and the output is stored once, instead of the output
/// row being reloaded and stored for every input as a plain `axpy` does. That loop is branch-free:
/// skipping zero inputs there (half the ReLU activations) measured 20–30 % slower, the
/// mispredicted branches costing more than the arithmetic saved. The narrow remainder (e.g. the
/// 10 classes) uses `axpy` per input and does skip zeros, which there is a clear win.
func denseForward(input: UnsafePointer<Float>, rows: Int, inputs: Int,
                  weights: UnsafePointer<Float>, bias: UnsafePointer<Float>?, outputs: Int,
                  output: UnsafeMutablePointer<Float>) {
    for r in 0..<rows {
        let x = input + r * inputs
        let y = output + r * outputs
        var o = 0
        while o + blockWidth <= outputs {
            var a0 = SIMD8<Float>(), a1 = SIMD8<Float>(), a2 = SIMD8<Float>(), a3 = SIMD8<Float>()
            if let bias {
                a0 = load8(bias + o); a1 = load8(bias + o + 8); a2 = load8(bias + o + 16); a3 = load8(bias + o + 24)
            }
            var w = weights + o
            for i in 0..<inputs {
                let v = SIMD8<Float>(repeating: x[i])
                a0 += v * load8(w); a1 += v * load8(w + 8); a2 += v * load8(w + 16); a3 += v * load8(w + 24)
                w += outputs
            }
            store8(a0, y + o); store8(a1, y + o + 8); store8(a2, y + o + 16); store8(a3, y + o + 24)
            o += blockWidth
        }
        // The remaining (or all, for narrow layers like the 10 classes) outputs: axpy per input.
        let rest = outputs - o
        guard rest > 0 else { continue }
        if let bias { (y + o).update(from: bias + o, count: rest) } else { (y + o).update(repeating: 0, count: rest) }
        for i in 0..<inputs {
            let a = x[i]
            if a == 0 { continue }
            axpy(rest, a, weights + i * outputs + o, y + o)
        }
    }
}

/// Accumulates the gradient of a dense layer's parameters given `delta = ∂loss/∂output`:
/// `weightGradient[i, :] += Σ_r input[r, i] · delta[r, :]` and `biasGradient += Σ_r delta[r, :]`.
/// Wide layers keep 32 gradient entries in registers while running over the batch (branch-free,
/// as in `denseForward`).
func denseBackward(input: UnsafePointer<Float>, rows: Int, inputs: Int,
                   delta: UnsafePointer<Float>, outputs: Int,
                   weightGradient: UnsafeMutablePointer<Float>, biasGradient: UnsafeMutablePointer<Float>) {
    for r in 0..<rows { axpy(outputs, 1, delta + r * outputs, biasGradient) }
    let blocked = outputs - outputs % blockWidth
    if blocked > 0 {
        for i in 0..<inputs {
            let gRow = weightGradient + i * outputs
            var o = 0
            while o < blocked {
                var a0 = load8(gRow + o), a1 = load8(gRow + o + 8), a2 = load8(gRow + o + 16), a3 = load8(gRow + o + 24)
                var x = input + i
                var d = delta + o
                for _ in 0..<rows {
                    let v = SIMD8<Float>(repeating: x.pointee)
                    a0 += v * load8(d); a1 += v * load8(d + 8); a2 += v * load8(d + 16); a3 += v * load8(d + 24)
                    x += inputs
                    d += outputs
                }
                store8(a0, gRow + o); store8(a1, gRow + o + 8); store8(a2, gRow + o + 16); store8(a3, gRow + o + 24)
                o += blockWidth
            }
        }
    }
    let rest = outputs - blocked
    guard rest > 0 else { return }
    for r in 0..<rows {
        let x = input + r * inputs
        let d = delta + r * outputs + blocked
        for i in 0..<inputs {
            let a = x[i]
            if a == 0 { continue }
            axpy(rest, a, d, weightGradient + i * outputs + blocked)
        }
    }
}

/// Softmax cross-entropy over `rows` rows of logits, in place: each row becomes
/// `scale · (softmax(row) − onehot(label))`, the gradient of `scale · loss` with respect to the
/// logits. Returns the summed (unscaled) loss. Stable for any finite logits: the row maximum is
/// subtracted before exponentiating, so exp never overflows and the largest term is exactly 1.
func softmaxCrossEntropy(logits: UnsafeMutablePointer<Float>, rows: Int, classes: Int,
                         labels: UnsafePointer<Int>, scale: Float) -> Double {
    var total = 0.0
    for r in 0..<rows {
        let z = logits + r * classes
        let label = labels[r]
        precondition(label >= 0 && label < classes, "label \(label) is outside 0..<\(classes)")
        var top = z[0]
        for c in 1..<classes where z[c] > top { top = z[c] }
        let shifted = z[label] - top
        var sum: Float = 0
        for c in 0..<classes {
            let e = mathExp(z[c] - top)
            z[c] = e
            sum += e
        }
        total += Double(mathLog(sum) - shifted)
        let k = scale / sum
        for c in 0..<classes { z[c] *= k }
        z[label] -= scale
    }
    return total
}

/// `0.5 · l2 · Σ w²` over `weights`, and adds `l2 · w` to `gradient`.
func addL2(_ l2: Float, weights: UnsafePointer<Float>, count: Int, gradient: UnsafeMutablePointer<Float>) -> Double {
    guard l2 != 0 else { return 0 }
    var sum: Float = 0
    for k in 0..<count {
        sum += weights[k] * weights[k]
        gradient[k] += l2 * weights[k]
    }
    return 0.5 * Double(l2) * Double(sum)
}

/// Numerically stable softmax and cross-entropy on single rows, for callers that want
/// probabilities rather than gradients (and for tests of the stability the models rely on).
public enum Softmax {
    /// Probabilities summing to 1, finite for any finite logits (even ±1e30).
    public static func probabilities(logits: [Float]) -> [Float] {
        precondition(!logits.isEmpty, "softmax of no logits")
        let top = logits.max()!
        let e = logits.map { mathExp($0 - top) }
        let sum = e.reduce(0, +)
        return e.map { $0 / sum }
    }

    /// `−log softmax(logits)[label]`, computed as logsumexp − logit so that it stays finite when
    /// the probability itself would underflow to 0.
    public static func crossEntropy(logits: [Float], label: Int) -> Float {
        precondition(label >= 0 && label < logits.count, "label \(label) is outside 0..<\(logits.count)")
        let top = logits.max()!
        let sum = logits.reduce(Float(0)) { $0 + mathExp($1 - top) }
        return mathLog(sum) - (logits[label] - top)
    }
}
