/// Consensus measurements over the parameter vectors of several peers.
public enum Consensus {
    /// The element-wise mean of equally long vectors.
    public static func mean(_ vectors: [[Float]]) -> [Double] {
        mean(vectors.map { $0.map(Double.init) })
    }

    public static func mean(_ vectors: [[Double]]) -> [Double] {
        guard let first = vectors.first else { return [] }
        var sum = [Double](repeating: 0, count: first.count)
        for v in vectors where v.count == first.count {
            for i in v.indices { sum[i] += v[i] }
        }
        return sum.map { $0 / Double(vectors.count) }
    }

    /// ‖x_i − x̄‖ / ‖x̄‖ for every vector: how far each peer is from the network average,
    /// relative to the average's size. Vectors of another length get +∞.
    public static func relativeDistances(_ vectors: [[Float]]) -> [Double] {
        relativeDistances(vectors.map { $0.map(Double.init) })
    }

    public static func relativeDistances(_ vectors: [[Double]]) -> [Double] {
        relativeDistances(vectors, to: mean(vectors))
    }

    /// ‖x_i − c‖ / ‖c‖ for every vector (‖x_i − c‖ when c is 0): e.g. how far each peer's
    /// estimate is from the true average of the starting values.
    public static func relativeDistances(_ vectors: [[Double]], to center: [Double]) -> [Double] {
        let norm = center.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return vectors.map { v in
            guard v.count == center.count else { return .infinity }
            var d = 0.0
            for i in v.indices { let e = v[i] - center[i]; d += e * e }
            return norm > 0 ? d.squareRoot() / norm : d.squareRoot()
        }
    }
}
