/// Metropolis–Hastings mixing weights, computed by each peer from its own degree and the degrees
/// its neighbours advertise: W_ij = 1 / (1 + max(d_i, d_j)), W_ii = 1 − Σ_j W_ij.
///
/// On any undirected graph the resulting matrix is symmetric and doubly stochastic, so gossip
/// converges to the exact average; and every row is non-negative and sums to one even when peers
/// momentarily disagree about degrees, because each W_ij ≤ 1 / (1 + d_i) for the d_i neighbours.
public enum MetropolisHastings {
    public static func weight(ownDegree: Int, neighbourDegree: Int) -> Double {
        1.0 / Double(1 + max(ownDegree, neighbourDegree, 0))
    }

    /// The whole matrix for a graph given as adjacency sets (analysis and tests).
    public static func matrix(adjacency: [Set<Int>]) -> [[Double]] {
        let n = adjacency.count
        var w = [[Double]](repeating: [Double](repeating: 0, count: n), count: n)
        for i in 0..<n {
            var offDiagonal = 0.0
            for j in adjacency[i] {
                w[i][j] = weight(ownDegree: adjacency[i].count, neighbourDegree: adjacency[j].count)
                offDiagonal += w[i][j]
            }
            w[i][i] = 1 - offDiagonal
        }
        return w
    }
}
