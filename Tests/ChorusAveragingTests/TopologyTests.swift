import Testing
@testable import ChorusAveraging

/// One topology with one weight rule and one mixing mode: a row of the tables below.
struct MixingCase: Sendable, CustomTestStringConvertible {
    let topology: Topology
    let weights: WeightRule
    let mixing: MixingMode
    var testDescription: String { "\(topology) \(weights) \(mixing)" }

    /// Every valid combination (Metropolis–Hastings only on undirected graphs); random graphs
    /// with k = 4 and, for odd n·k, k = 3 (one peer of degree k + 1: uniform weights are then
    /// not symmetric).
    static let all: [MixingCase] = (Topology.examples + [.randomRegular(k: 3, seed: 5)]).flatMap { topology in
        WeightRule.allCases.filter { $0.problem(with: topology) == nil }.flatMap { weights in
            MixingMode.allCases.map { MixingCase(topology: topology, weights: weights, mixing: $0) }
        }
    }
}

private let sizes = [2, 3, 5, 8, 13, 16, 32, 64]
private let tolerance = 1e-12

private func isPowerOfTwo(_ n: Int) -> Bool { n > 0 && n & (n - 1) == 0 }
private func log2Ceiling(_ n: Int) -> Int { max(1, Int.bitWidth - (n - 1).leadingZeroBitCount) }

// MARK: Names

@Test("every topology's name parses back to it", arguments: Topology.examples + [.randomRegular(k: 3, seed: 7), .randomRegular(k: 1, seed: 0)])
func namesRoundTrip(topology: Topology) {
    #expect(Topology(parsing: topology.description) == topology)
    #expect(Topology(parsing: topology.description.uppercased()) == topology)
}

@Test("random:K and random:K:SEED parse to k and seed, seed 0 by default")
func randomNames() {
    #expect(Topology(parsing: "random:4") == .randomRegular(k: 4, seed: 0))
    #expect(Topology(parsing: "random:4:0") == .randomRegular(k: 4, seed: 0))
    #expect(Topology(parsing: "random:3:18446744073709551615") == .randomRegular(k: 3, seed: .max))
}

@Test("malformed topology names are rejected",
      arguments: ["", "star", "random", "random:0", "random:x", "ring:2", "random:2:-1", "random:2:", "random::1", "random:1025",
                  "exponential:", "torus ", "complete:3", "random:2:1:1"])
func malformedNames(text: String) {
    #expect(Topology(parsing: text) == nil)
}

@Test("weight rule and mixing names parse, with mh as a short form")
func ruleNames() {
    for rule in WeightRule.allCases { #expect(WeightRule(parsing: rule.rawValue) == rule) }
    #expect(WeightRule(parsing: "mh") == .metropolisHastings)
    #expect(WeightRule(parsing: "equal") == nil)
    for mode in MixingMode.allCases { #expect(MixingMode(rawValue: mode.rawValue) == mode) }
}

@Test("Metropolis–Hastings weights are refused on directed topologies and only there", arguments: Topology.examples)
func metropolisNeedsUndirected(topology: Topology) {
    let problem = WeightRule.metropolisHastings.problem(with: topology)
    #expect((problem != nil) == topology.isDirected)
    if let problem { #expect(problem.contains("\(topology)") && problem.contains("directed")) }
    #expect(WeightRule.uniform.problem(with: topology) == nil && WeightRule.maxDegree.problem(with: topology) == nil)
}

// MARK: Graphs

@Test("undirected graphs are symmetric: j hears i exactly when i hears j", arguments: Topology.examples.filter { !$0.isDirected }, sizes)
func undirectedSymmetric(topology: Topology, n: Int) {
    let adjacency = topology.adjacency(count: n)
    for i in 0..<n {
        #expect(!adjacency[i].contains(i))
        for j in adjacency[i] { #expect(adjacency[j].contains(i), "\(topology) n=\(n): \(i)→\(j) without \(j)→\(i)") }
        #expect(topology.inNeighbours(of: i, count: n) == topology.outNeighbours(of: i, count: n))
    }
}

@Test("degrees are as documented for each topology", arguments: Topology.examples + [.randomRegular(k: 3, seed: 5), .randomRegular(k: 6, seed: 2)], sizes)
func degrees(topology: Topology, n: Int) {
    let adjacency = topology.adjacency(count: n)
    let out = adjacency.map(\.count)
    var into = [Int](repeating: 0, count: n)
    for list in adjacency { for j in list { into[j] += 1 } }
    switch topology {
    case .ring:
        #expect(out.allSatisfy { $0 == min(2, n - 1) })
    case .torus:
        let (rows, columns) = Topology.torusShape(n)
        // Each dimension of length ≥ 3 gives two neighbours, of length 2 one, of length 1 none.
        let expected = [rows, columns].map { $0 >= 3 ? 2 : $0 - 1 }.reduce(0, +)
        #expect(out.allSatisfy { $0 == expected })
        if n == 16 || n == 64 { #expect(expected == 4) }
        if n == 8 { #expect(expected == 3) }  // 2 × 4
    case .exponential:
        if isPowerOfTwo(n) { #expect(out.allSatisfy { $0 == max(1, 2 * log2Ceiling(n) - 1) }) }
        #expect(Set(out).count == 1)  // a circulant graph: every peer alike
    case .directedExponential:
        #expect(out.allSatisfy { $0 == log2Ceiling(n) } && into.allSatisfy { $0 == log2Ceiling(n) })
    case .onePeerExponential:
        for round in 0..<UInt64(log2Ceiling(n)) {
            let perRound = topology.adjacency(count: n, round: round)
            #expect(perRound.allSatisfy { $0.count == 1 })
            var heard = [Int](repeating: 0, count: n)
            for list in perRound { for j in list { heard[j] += 1 } }
            #expect(heard.allSatisfy { $0 == 1 })
        }
    case let .randomRegular(k, _):
        if k >= n - 1 {
            #expect(out.allSatisfy { $0 == n - 1 })
        } else if n * k % 2 == 1 {
            #expect(out.filter { $0 == k + 1 }.count == 1 && out.filter { $0 == k }.count == n - 1)
        } else {
            #expect(out.allSatisfy { $0 == k })
        }
    case .complete:
        #expect(out.allSatisfy { $0 == n - 1 })
    }
    // maxDegree(count:), which max-degree weights use, is the largest degree actually there.
    #expect(topology.maxDegree(count: n) == max(out.max() ?? 0, into.max() ?? 0))
}

@Test("the torus is as square as n allows", arguments: [(16, 4, 4), (32, 4, 8), (64, 8, 8), (12, 3, 4), (8, 2, 4), (13, 1, 13), (1, 1, 1)])
func torusShapes(n: Int, rows: Int, columns: Int) {
    #expect(Topology.torusShape(n) == (rows, columns))
}

@Test("a random graph is the same for the same seed and differs for another", arguments: [16, 32, 64, 101])
func randomReproducible(n: Int) {
    let a = Topology.randomRegular(k: 4, seed: 11).adjacency(count: n)
    #expect(Topology.randomRegular(k: 4, seed: 11).adjacency(count: n) == a)
    #expect(Topology.randomRegular(k: 4, seed: 12).adjacency(count: n) != a)
    // Peers that look up only their own neighbours see the same graph.
    #expect((0..<n).map { Topology.randomRegular(k: 4, seed: 11).outNeighbours(of: $0, count: n) } == a)
}

@Test("neighbours among members follow the members' sorted order", arguments: Topology.examples)
func neighboursAmongMembers(topology: Topology) {
    let members = ["e", "a", "d", "b", "c", "a"]  // duplicates and order do not matter
    let sorted = ["a", "b", "c", "d", "e"]
    for (i, member) in sorted.enumerated() {
        let (out, into) = topology.neighbours(of: member, in: members, round: 1)
        #expect(out == topology.outNeighbours(of: i, count: 5, round: 1).map { sorted[$0] })
        #expect(into == topology.inNeighbours(of: i, count: 5, round: 1).map { sorted[$0] })
    }
    #expect(topology.neighbours(of: "z", in: members) == ([], []))
}

// MARK: Matrices

@Test("mixing matrices are non-negative, stochastic the way their mode requires, and symmetric where they must be",
      arguments: MixingCase.all, sizes)
func matrixProperties(c: MixingCase, n: Int) {
    for round in 0..<UInt64(c.topology.period(count: n)) {
        let w = MixingMatrix.build(topology: c.topology, count: n, weights: c.weights, mixing: c.mixing, round: round)
        let adjacency = c.topology.adjacency(count: n, round: round)
        #expect(w.count == n && w.allSatisfy { $0.count == n })
        for i in 0..<n {
            #expect(w[i][i] > 0, "a peer keeps a positive share of its own value")
            for j in 0..<n where j != i {
                #expect(w[i][j] >= 0)
                // Only an edge j → i carries a share of j's value to i.
                #expect((w[i][j] > 0) == adjacency[j].contains(i), "W[\(i)][\(j)] without an edge")
            }
        }
        let rows = w.map { $0.reduce(0, +) }
        let columns = (0..<n).map { j in w.reduce(0) { $0 + $1[j] } }
        switch c.mixing {
        case .plain: #expect(rows.allSatisfy { abs($0 - 1) <= tolerance })
        case .pushSum: #expect(columns.allSatisfy { abs($0 - 1) <= tolerance })
        }
        if !c.topology.isDirected && c.weights != .uniform {
            #expect(MixingAnalysis.isSymmetric(w), "MH and max-degree weights on an undirected graph are symmetric")
            #expect(rows.allSatisfy { abs($0 - 1) <= tolerance } && columns.allSatisfy { abs($0 - 1) <= tolerance })
        }
    }
}

@Test("plain and push-sum build the same matrix on regular graphs and wherever the weights are symmetric",
      arguments: MixingCase.all.filter { $0.mixing == .plain }, sizes)
func modesAgree(c: MixingCase, n: Int) {
    let plain = MixingMatrix.build(topology: c.topology, count: n, weights: c.weights, mixing: .plain)
    let push = MixingMatrix.build(topology: c.topology, count: n, weights: c.weights, mixing: .pushSum)
    let degrees = Set(c.topology.adjacency(count: n).map(\.count))
    if MixingAnalysis.isSymmetric(plain) || degrees.count == 1 { #expect(plain == push) }
}

@Test("uniform push-sum shares are the transpose of uniform plain weights on undirected graphs", arguments: sizes)
func uniformTranspose(n: Int) {
    // random:3 with odd n has one peer of degree 4: the only undirected example that is not regular.
    for topology in Topology.examples.filter({ !$0.isDirected }) + [.randomRegular(k: 3, seed: 5)] {
        let plain = MixingMatrix.build(topology: topology, count: n, weights: .uniform, mixing: .plain)
        let push = MixingMatrix.build(topology: topology, count: n, weights: .uniform, mixing: .pushSum)
        let transposed = (0..<n).map { i in (0..<n).map { j in plain[j][i] } }
        #expect(zip(push, transposed).allSatisfy { zip($0, $1).allSatisfy { abs($0 - $1) <= tolerance } })
    }
}

@Test("the one-peer exponential graph averages exactly in ⌈log₂ n⌉ rounds for n a power of two", arguments: [2, 4, 8, 16, 32, 64])
func onePeerExact(n: Int) {
    for weights in [WeightRule.uniform, .maxDegree] {
        for mixing in MixingMode.allCases {
            let p = MixingMatrix.product(topology: .onePeerExponential, count: n, weights: weights, mixing: mixing, rounds: log2Ceiling(n))
            #expect(p.allSatisfy { $0.allSatisfy { abs($0 - 1 / Double(n)) <= 1e-15 } })
        }
    }
}
