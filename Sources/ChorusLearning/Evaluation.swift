/// Rows scored per forward pass when evaluating: large enough to amortise call overhead, small
/// enough that the logits and hidden activations stay in cache and on the stack.
let evaluationChunk = 256

extension Model {
    /// Mean cross-entropy (without the L2 term, so that models with different λ compare) and
    /// the fraction of rows whose highest-scoring class is the label. An empty dataset gives
    /// (0, 0).
    public func evaluate(parameters: [Float], on dataset: Dataset) -> (loss: Double, accuracy: Double) {
        precondition(dataset.featureCount == featureCount && dataset.classCount == classCount,
                     "\(spec) for \(featureCount) features/\(classCount) classes cannot evaluate a dataset of \(dataset.featureCount)/\(dataset.classCount)")
        precondition(parameters.count == parameterCount, "\(spec): expected \(parameterCount) parameters, got \(parameters.count)")
        guard dataset.count > 0 else { return (0, 0) }
        var loss = 0.0
        var correct = 0
        forEachLogitsChunk(parameters: parameters, dataset: dataset) { start, rows, z in
            for r in 0..<rows {
                let row = z + r * classCount
                let label = dataset.labels[start + r]
                var best = 0
                for c in 1..<classCount where row[c] > row[best] { best = c }
                if best == label { correct += 1 }
                var sum: Float = 0
                for c in 0..<classCount { sum += mathExp(row[c] - row[best]) }
                loss += Double(mathLog(sum) - (row[label] - row[best]))
            }
        }
        return (loss / Double(dataset.count), Double(correct) / Double(dataset.count))
    }

    /// The predicted class (highest score, lowest index on ties) of every row.
    public func predict(parameters: [Float], on dataset: Dataset) -> [Int] {
        precondition(dataset.featureCount == featureCount, "\(spec) expects \(featureCount) features, dataset has \(dataset.featureCount)")
        var out: [Int] = []
        out.reserveCapacity(dataset.count)
        forEachLogitsChunk(parameters: parameters, dataset: dataset) { _, rows, z in
            for r in 0..<rows { out.append(argmax(z + r * classCount)) }
        }
        return out
    }

    /// The predicted class of one row of features.
    public func predict(parameters: [Float], features: [Float]) -> Int {
        precondition(features.count == featureCount, "\(spec) expects \(featureCount) features, got \(features.count)")
        return probabilitiesOrLogits(parameters: parameters, features: features, argmaxOnly: true).best
    }

    /// Class probabilities of one row of features.
    public func probabilities(parameters: [Float], features: [Float]) -> [Float] {
        precondition(features.count == featureCount, "\(spec) expects \(featureCount) features, got \(features.count)")
        return Softmax.probabilities(logits: probabilitiesOrLogits(parameters: parameters, features: features, argmaxOnly: false).logits)
    }

    private func probabilitiesOrLogits(parameters: [Float], features: [Float], argmaxOnly: Bool) -> (best: Int, logits: [Float]) {
        var z = [Float](repeating: 0, count: classCount)
        parameters.withUnsafeBufferPointer { p in
            features.withUnsafeBufferPointer { x in
                z.withUnsafeMutableBufferPointer { logits(parameters: p, features: x, rowCount: 1, into: $0) }
            }
        }
        return (z.withUnsafeBufferPointer { argmax($0.baseAddress!) }, z)
    }

    private func argmax(_ row: UnsafePointer<Float>) -> Int {
        var best = 0
        for c in 1..<classCount where row[c] > row[best] { best = c }
        return best
    }

    private func forEachLogitsChunk(parameters: [Float], dataset: Dataset,
                                    _ body: (_ start: Int, _ rows: Int, _ logits: UnsafePointer<Float>) -> Void) {
        let chunk = Swift.min(evaluationChunk, Swift.max(dataset.count, 1))
        withUnsafeTemporaryAllocation(of: Float.self, capacity: chunk * classCount) { z in
            parameters.withUnsafeBufferPointer { p in
                dataset.features.withUnsafeBufferPointer { all in
                    var start = 0
                    while start < dataset.count {
                        let rows = Swift.min(chunk, dataset.count - start)
                        let x = UnsafeBufferPointer(rebasing: all[start * featureCount ..< (start + rows) * featureCount])
                        logits(parameters: p, features: x, rowCount: rows, into: z)
                        body(start, rows, UnsafePointer(z.baseAddress!))
                        start += rows
                    }
                }
            }
        }
    }
}
