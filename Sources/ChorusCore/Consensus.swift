/// Consensus measurements over the parameter vectors of several peers.
public enum Consensus {
    /// The element-wise mean of equally long vectors.
    public static func mean(_ vectors: [[Float]]) -> [Double] {
        guard let first = vectors.first else { return [] }
        var sum = [Double](repeating: 0, count: first.count)
        for v in vectors where v.count == first.count {
            for i in v.indices { sum[i] += Double(v[i]) }
        }
        return sum.map { $0 / Double(vectors.count) }
    }

    /// ‖x_i − x̄‖ / ‖x̄‖ for every vector: how far each peer is from the network average,
    /// relative to the average's size. Vectors of another length get +∞.
    public static func relativeDistances(_ vectors: [[Float]]) -> [Double] {
        let m = mean(vectors)
        let norm = m.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return vectors.map { v in
            guard v.count == m.count else { return .infinity }
            var d = 0.0
            for i in v.indices { let e = Double(v[i]) - m[i]; d += e * e }
            return norm > 0 ? d.squareRoot() / norm : d.squareRoot()
        }
    }
}
