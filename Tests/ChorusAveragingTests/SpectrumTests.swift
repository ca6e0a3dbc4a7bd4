import Foundation
import Testing
@testable import ChorusAveraging

// Reference values marked "numpy" were computed with numpy 2.4 (LAPACK): np.linalg.eigvals for
// general matrices, np.linalg.eigvalsh for symmetric ones, np.linalg.svd for singular values.

/// Whether two lists hold the same eigenvalues to `tolerance`, in any order: each expected value
/// takes the nearest computed one not yet taken (sorting by real part is fragile when real parts
/// tie, as ±i do).
private func close(_ computed: [Eigenvalue], _ expected: [Eigenvalue], within tolerance: Double = 1e-10) -> Bool {
    guard computed.count == expected.count else { return false }
    var left = computed
    for e in expected {
        let distances = left.map { hypot($0.re - e.re, $0.im - e.im) }
        guard let nearest = distances.indices.min(by: { distances[$0] < distances[$1] }), distances[nearest] <= tolerance else { return false }
        left.remove(at: nearest)
    }
    return true
}

/// A 40 × 40 nonsymmetric matrix with integer-derived entries that numpy can rebuild exactly:
/// ((37i + 91j + 13ij) mod 101) / 101 − 0.5.
private let scrambled: [[Double]] = (0..<40).map { (i: Int) -> [Double] in
    (0..<40).map { (j: Int) -> Double in
        let code = (i * 37 + j * 91 + i * j * 13) % 101
        return Double(code) / 101 - 0.5
    }
}

// MARK: General matrices

@Test("a diagonal matrix's eigenvalues are its diagonal")
func diagonalEigenvalues() throws {
    let d = [3.0, -1, 0.5, 2, 0]
    let a = d.indices.map { i in d.indices.map { $0 == i ? d[i] : 0 } }
    #expect(close(try Spectrum.eigenvalues(of: a), d.map { Eigenvalue(re: $0) }, within: 1e-15))
    #expect(try Spectrum.symmetricEigenvalues(of: a) == d.sorted())
}

@Test("a 2 × 2 rotation by θ has the complex pair cos θ ± i sin θ", arguments: [Double.pi / 3, 0.1, 2.5])
func rotationEigenvalues(theta: Double) throws {
    let a = [[cos(theta), -sin(theta)], [sin(theta), cos(theta)]]
    let values = try Spectrum.eigenvalues(of: a)
    #expect(close(values, [Eigenvalue(re: cos(theta), im: sin(theta)), Eigenvalue(re: cos(theta), im: -sin(theta))], within: 1e-15))
    #expect(values.allSatisfy { abs($0.modulus - 1) < 1e-15 })
}

@Test("a nonsymmetric 3 × 3 matrix matches numpy")
func nonsymmetric3x3() throws {
    // numpy: np.linalg.eigvals([[1, 2, 3], [4, 5, 6], [7, 8, 10]])
    let values = try Spectrum.eigenvalues(of: [[1, 2, 3], [4, 5, 6], [7, 8, 10]])
    #expect(close(values, [-0.9057401795217589, 0.1982468633970087, 16.707493316124744].map { Eigenvalue(re: $0) }, within: 1e-12))
}

@Test("a companion matrix's eigenvalues are its polynomial's roots")
func companionMatrix() throws {
    // x³ − 6x² + 11x − 6 = (x − 1)(x − 2)(x − 3)
    let values = try Spectrum.eigenvalues(of: [[6, -11, 6], [1, 0, 0], [0, 1, 0]])
    #expect(close(values, [1, 2, 3].map { Eigenvalue(re: $0) }, within: 1e-12))
}

@Test("a cyclic permutation, the classic trap for the unshifted QR step, gives the n-th roots of unity", arguments: [3, 4, 7, 16])
func cyclicPermutation(n: Int) throws {
    let a = (0..<n).map { i in (0..<n).map { j in j == (i + 1) % n ? 1.0 : 0 } }
    let roots = (0..<n).map { k in Eigenvalue(re: cos(2 * Double.pi * Double(k) / Double(n)), im: sin(2 * Double.pi * Double(k) / Double(n))) }
    #expect(close(try Spectrum.eigenvalues(of: a), roots, within: 1e-12))
}

@Test("a scrambled 40 × 40 matrix matches numpy's largest eigenvalues, trace and trace of the square")
func scrambledMatrix() throws {
    let values = try Spectrum.eigenvalues(of: scrambled)
    #expect(values.count == 40)
    // numpy: ev = np.linalg.eigvals(M), sorted by modulus, descending.
    let top = values.sorted { $0.modulus > $1.modulus }.prefix(4)
    #expect(close(Array(top), [Eigenvalue(re: 1.3018980586637627, im: 1.249338738014619), Eigenvalue(re: 1.3018980586637627, im: -1.249338738014619),
                               Eigenvalue(re: -1.3640255741045029, im: 1.0279624643659344), Eigenvalue(re: -1.3640255741045029, im: -1.0279624643659344)]))
    #expect(abs(values.map(\.modulus).min()! - 0.03368518079290038) < 1e-10)
    #expect(values.filter { $0.im == 0 }.count == 6)
    // Σλ = trace = −1.722772277227723; Σλ² = trace(M²) = −2.0657778649152054 (numpy).
    #expect(abs(values.reduce(0) { $0 + $1.re } - -1.722772277227723) < 1e-12)
    #expect(abs(values.reduce(0) { $0 + $1.im }) < 1e-12)
    #expect(abs(values.reduce(0) { $0 + $1.re * $1.re - $1.im * $1.im } - -2.0657778649152054) < 1e-10)
}

@Test("non-square and non-finite input is refused")
func badInput() throws {
    #expect(throws: SpectrumError.notSquare(rows: 2, columns: 1)) { try Spectrum.eigenvalues(of: [[1, 2], [3]]) }
    #expect(throws: SpectrumError.notFinite) { try Spectrum.symmetricEigenvalues(of: [[.nan]]) }
    #expect(try Spectrum.eigenvalues(of: []).isEmpty)
    let one = try? Spectrum.eigenvalues(of: [[4]])
    #expect(one == [Eigenvalue(re: 4)])
}

// MARK: Symmetric matrices and singular values

@Test("the path graph's Laplacian has eigenvalues 2 − 2 cos(kπ/(n+1))", arguments: [1, 2, 10, 100])
func pathLaplacian(n: Int) throws {
    let a = (0..<n).map { i in (0..<n).map { j in i == j ? 2.0 : abs(i - j) == 1 ? -1 : 0 } }
    let expected = (1...n).map { 2 - 2 * cos(Double($0) * .pi / Double(n + 1)) }.sorted()
    let values = try Spectrum.symmetricEigenvalues(of: a)
    #expect(zip(values, expected).allSatisfy { abs($0 - $1) < 1e-13 })
}

@Test("the 5 × 5 Hilbert matrix, badly conditioned, matches numpy")
func hilbert() throws {
    let a = (0..<5).map { i in (0..<5).map { j in 1 / Double(i + j + 1) } }
    // numpy: np.linalg.eigvalsh(H)
    let expected = [3.2879287721754168e-06, 3.0589804015117647e-04, 1.1407491623419842e-02, 2.0853421861101346e-01, 1.5670506910982307e+00]
    let values = try Spectrum.symmetricEigenvalues(of: a)
    #expect(zip(values, expected).allSatisfy { abs($0 - $1) < 1e-14 })
    // The general routine agrees on a symmetric matrix.
    let general = try Spectrum.eigenvalues(of: a).map(\.re).sorted()
    #expect(zip(general, expected).allSatisfy { abs($0 - $1) < 1e-14 })
}

@Test("the symmetric part of the scrambled matrix matches numpy")
func scrambledSymmetric() throws {
    let s = (0..<40).map { i in (0..<40).map { j in scrambled[i][j] + scrambled[j][i] } }
    let values = try Spectrum.symmetricEigenvalues(of: s)
    // numpy: np.linalg.eigvalsh(M + M.T)[[0, 1, -2, -1]]
    let expected = [-4.505856688340888, -4.200666919104389, 3.9321683250964425, 4.213198685467913]
    #expect(zip([values[0], values[1], values[38], values[39]], expected).allSatisfy { abs($0 - $1) < 1e-12 })
}

@Test("singular values via AᵀA match the closed form and numpy")
func singularValues() throws {
    // AᵀA = [[25, 20], [20, 25]]: eigenvalues 45 and 5.
    let small = try Spectrum.singularValues(of: [[3, 0], [4, 5]])
    #expect(abs(small[0] - 45.0.squareRoot()) < 1e-14 && abs(small[1] - 5.0.squareRoot()) < 1e-14)
    // numpy: np.linalg.svd(M, compute_uv=False)[[0, 1, -1]]; the smallest loses digits to squaring.
    let values = try Spectrum.singularValues(of: scrambled)
    #expect(abs(values[0] - 3.284327551990395) < 1e-12)
    #expect(abs(values[1] - 3.11986855225742) < 1e-12)
    #expect(abs(values[39] - 0.00734888685481033) < 1e-6)
    #expect(try Spectrum.spectralNorm(of: scrambled, symmetric: false) == values[0])
}

// MARK: Mixing matrices

/// A known figure: slem, ‖W − J‖₂ and whole rounds to 1e-6 of one topology with one rule.
struct KnownSpectrum: Sendable, CustomTestStringConvertible {
    let topology: Topology
    let weights: WeightRule
    let mixing: MixingMode
    let n: Int
    let slem: Double
    let norm: Double
    let rounds: Int?
    var testDescription: String { "\(topology) \(weights) \(mixing) n=\(n)" }

    init(_ topology: Topology, _ weights: WeightRule, _ mixing: MixingMode = .plain, n: Int, slem: Double, norm: Double? = nil, rounds: Int?) {
        (self.topology, self.weights, self.mixing, self.n, self.slem, self.norm, self.rounds) = (topology, weights, mixing, n, slem, norm ?? slem, rounds)
    }
}

/// The design notes' table, checked with numpy on the matrices MixingMatrix.build gives (dumped
/// with `chorus topology --format json`; slem = largest |λ| of np.linalg.eigvals(W) after removing
/// the one nearest 1, norm = np.linalg.norm(W − 1/n, 2)); most also have a closed form, because
/// these graphs are circulant or products of circulants (eigenvalues Σ w_s·e^(2πiks/n)).
///
/// Every matrix here is normal, so |λ₂| = ‖W − J‖₂ and the notes' σ₂ is either. The rounds are
/// ⌈ln 1e-6 / ln slem⌉, the smallest k with slemᵏ ≤ 1e-6. The notes round that quotient to the
/// nearest integer instead, so where it lies just above an integer they say one round less:
/// 27 for slem 0.6 (27.05), 34 for 2/3 (34.07), 41 for 5/7 (41.06), 265 for the ring (265.28).
let knownSpectra: [KnownSpectrum] = [
    // Directed exponential, uniform weights 1/(1 + log₂ n): notes 0.600/27, 0.667/34, 0.714/41.
    KnownSpectrum(.directedExponential, .uniform, n: 16, slem: 3.0 / 5, rounds: 28),
    KnownSpectrum(.directedExponential, .uniform, .pushSum, n: 16, slem: 3.0 / 5, rounds: 28),
    KnownSpectrum(.directedExponential, .uniform, n: 32, slem: 2.0 / 3, rounds: 35),
    KnownSpectrum(.directedExponential, .uniform, n: 64, slem: 5.0 / 7, rounds: 42),
    // Symmetric exponential, Metropolis–Hastings: notes 0.500/20, 0.600/27, 0.667/34.
    KnownSpectrum(.exponential, .metropolisHastings, n: 16, slem: 1.0 / 2, rounds: 20),
    KnownSpectrum(.exponential, .metropolisHastings, n: 32, slem: 3.0 / 5, rounds: 28),
    KnownSpectrum(.exponential, .metropolisHastings, n: 64, slem: 2.0 / 3, rounds: 35),
    // 2-D torus, Metropolis–Hastings (1/5 each): notes 0.600/27, 0.883/111, 0.883/111.
    KnownSpectrum(.torus, .metropolisHastings, n: 16, slem: 3.0 / 5, rounds: 28),
    KnownSpectrum(.torus, .metropolisHastings, n: 32, slem: (3 + 2.0.squareRoot()) / 5, rounds: 111),
    KnownSpectrum(.torus, .metropolisHastings, n: 64, slem: (3 + 2.0.squareRoot()) / 5, rounds: 111),
    // Ring, weights 1/3: notes 0.949/265. numpy 0.949253021674191.
    KnownSpectrum(.ring, .metropolisHastings, n: 16, slem: 1.0 / 3 + 2.0 / 3 * cos(2 * Double.pi / 16), rounds: 266),
    // random:4 (this repository's generator), Metropolis–Hastings; numpy on the built matrices.
    KnownSpectrum(.randomRegular(k: 4, seed: 0), .metropolisHastings, n: 16, slem: 0.7201785557811203, rounds: 43),
    KnownSpectrum(.randomRegular(k: 4, seed: 0), .metropolisHastings, n: 32, slem: 0.8062670766511906, rounds: 65),
    KnownSpectrum(.randomRegular(k: 4, seed: 0), .metropolisHastings, n: 64, slem: 0.844935848850846, rounds: 82),
    // random:3 on 13 peers: one peer has degree 4, so uniform weights are not symmetric and W is
    // not normal: ‖W − J‖₂ > |λ₂| (numpy 0.8905911771963719 against 0.889426090443862).
    KnownSpectrum(.randomRegular(k: 3, seed: 0), .uniform, n: 13, slem: 0.889426090443862, norm: 0.8905911771963719, rounds: 118),
    KnownSpectrum(.randomRegular(k: 3, seed: 0), .uniform, .pushSum, n: 13, slem: 0.889426090443862, norm: 0.8905911771963719, rounds: 118),
    KnownSpectrum(.randomRegular(k: 3, seed: 0), .uniform, n: 33, slem: 0.8990109768743096, norm: 0.9015498453084644, rounds: 130),
    // One-peer exponential when n is not a power of two: per round, slem(P)^(1/period) with P
    // the product of one period (numpy: the same product of the per-round matrices).
    KnownSpectrum(.onePeerExponential, .uniform, n: 5, slem: 0.5869924983526643, rounds: 26),
    KnownSpectrum(.onePeerExponential, .uniform, n: 13, slem: 0.6450979914746566, rounds: 32),
]

@Test("slem, ‖W − J‖₂ and rounds match numpy and the design notes", arguments: knownSpectra)
func knownSpectrum(known: KnownSpectrum) throws {
    let a = try MixingAnalysis(topology: known.topology, count: known.n, weights: known.weights, mixing: known.mixing)
    #expect(abs(a.slem - known.slem) < 1e-12)
    #expect(abs(a.spectralNorm - known.norm) < 1e-12)
    #expect(a.roundsTo1e6 == known.rounds)
    #expect(!a.exact)
}

@Test("the complete graph averages exactly in one round: slem 0", arguments: [2, 3, 5, 16, 64])
func completeGraph(n: Int) throws {
    for weights in WeightRule.allCases {
        let a = try MixingAnalysis(topology: .complete, count: n, weights: weights, mixing: .plain)
        #expect(a.exact && a.slem == 0 && a.spectralNorm == 0 && a.roundsTo1e6 == 1)
        #expect(a.rowStochastic && a.columnStochastic && a.symmetric)
    }
}

@Test("a ring with weights 1/3 has slem 1/3 + 2/3·cos(2π/n)", arguments: [4, 5, 8, 13, 16, 32, 64, 100])
func ringSpectrum(n: Int) throws {
    let a = try MixingAnalysis(topology: .ring, count: n, weights: .metropolisHastings, mixing: .plain)
    let expected = 1.0 / 3 + 2.0 / 3 * cos(2 * Double.pi / Double(n))
    #expect(abs(a.slem - expected) < 1e-12)
    #expect(abs(a.spectralNorm - expected) < 1e-12)
    #expect(a.roundsTo1e6 == Int((log(1e-6) / log(expected)).rounded(.up)))
}

@Test("the one-peer exponential graph gives the exact average after log₂ n rounds", arguments: [(2, 1), (8, 3), (16, 4), (32, 5)])
func onePeerPeriod(n: Int, rounds: Int) throws {
    for start in [UInt64(0), 1] {
        let a = try MixingAnalysis(topology: .onePeerExponential, count: n, weights: .uniform, mixing: .pushSum, round: start)
        #expect(a.period == rounds && a.exact && a.roundsTo1e6 == rounds && a.slem == 0)
        #expect(a.rowStochastic && a.columnStochastic)
        #expect(a.symmetric == (n == 2))
    }
}

@Test("the period's starting round does not change the per-round rate", arguments: [5, 13])
func onePeerPhase(n: Int) throws {
    let rates = try (0..<4).map { try MixingAnalysis(topology: .onePeerExponential, count: n, weights: .uniform, mixing: .plain, round: UInt64($0)).slem }
    // The products over shifted periods are cyclic rotations of one another: same eigenvalues.
    #expect(rates.allSatisfy { abs($0 - rates[0]) < 1e-12 })
}

@Test("a directed exponential graph of 100 peers matches its circulant closed form")
func directedCirculant() throws {
    // W = (I + Σ_s P^(2^s)) / 8 for steps 1, 2, …, 64: eigenvalues (1 + Σ_s e^(2πik·2^s/n)) / 8.
    let n = 100
    let steps = [1, 2, 4, 8, 16, 32, 64]
    let moduli = (1..<n).map { k -> Double in
        var (re, im) = (1.0, 0.0)
        for s in steps {
            re += cos(2 * Double.pi * Double(k * s) / Double(n))
            im += sin(2 * Double.pi * Double(k * s) / Double(n))
        }
        return hypot(re, im) / Double(steps.count + 1)
    }
    let a = try MixingAnalysis(topology: .directedExponential, count: n, weights: .uniform, mixing: .plain)
    #expect(abs(a.slem - moduli.max()!) < 1e-12)
    #expect(abs(a.spectralNorm - moduli.max()!) < 1e-12)  // circulant, so normal
    #expect(!a.symmetric && a.rowStochastic && a.columnStochastic)
}

@Test("a disconnected or periodic matrix never mixes: slem 1, no rounds")
func neverMixes() throws {
    // random:1 is a perfect matching: n/2 components.
    let matching = try MixingAnalysis(topology: .randomRegular(k: 1, seed: 0), count: 8, weights: .metropolisHastings, mixing: .plain)
    #expect(matching.slem == 1 && matching.roundsTo1e6 == nil && abs(matching.spectralNorm - 1) < 1e-12)
    // A swap: eigenvalues 1 and −1, the values oscillate forever.
    let swap = try MixingAnalysis(matrix: [[0, 1], [1, 0]])
    #expect(swap.slem == 1 && swap.roundsTo1e6 == nil && swap.rowStochastic && swap.columnStochastic && swap.symmetric)
}

@Test("uniform weights on an irregular graph are row stochastic for plain mixing and column stochastic for push-sum")
func stochasticFlags() throws {
    let plain = try MixingAnalysis(topology: .randomRegular(k: 3, seed: 0), count: 13, weights: .uniform, mixing: .plain)
    let push = try MixingAnalysis(topology: .randomRegular(k: 3, seed: 0), count: 13, weights: .uniform, mixing: .pushSum)
    #expect(plain.rowStochastic && !plain.columnStochastic && !plain.symmetric)
    #expect(!push.rowStochastic && push.columnStochastic && !push.symmetric)
}

@Test("a single peer needs no rounds")
func singlePeer() throws {
    let a = try MixingAnalysis(topology: .exponential, count: 1, weights: .metropolisHastings, mixing: .plain)
    #expect(a.slem == 0 && a.roundsTo1e6 == 0 && a.exact)
}

@Test("rounds to 1e-6 are the smallest k with slemᵏ ≤ 1e-6",
      arguments: [(0.1, 6 as Int?), (0.5, 20), (0.6, 28), (0.9, 132), (1e-7, 1), (0, 1), (1, nil), (0.999999, 13815504)])
func roundsRule(slem: Double, rounds: Int?) {
    #expect(MixingAnalysis.rounds(slem: slem) == rounds)
    if let rounds, slem > 0 {
        #expect(pow(slem, Double(rounds)) <= 1e-6 * (1 + 1e-9))
        #expect(rounds == 1 || pow(slem, Double(rounds - 1)) > 1e-6)
    }
}
