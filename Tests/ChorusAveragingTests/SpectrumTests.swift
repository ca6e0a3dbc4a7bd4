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
