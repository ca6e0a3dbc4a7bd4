import Foundation

/// A complex number as a (re, im) pair: an eigenvalue of a real matrix. Complex eigenvalues of
/// a real matrix come in conjugate pairs.
public struct Eigenvalue: Sendable, Hashable, CustomStringConvertible {
    public var re: Double
    public var im: Double

    public init(re: Double, im: Double = 0) {
        self.re = re
        self.im = im
    }

    /// |λ|, without overflow for large parts.
    public var modulus: Double { hypot(re, im) }

    public var description: String {
        im == 0 ? "\(re)" : "\(re) \(im < 0 ? "-" : "+") \(abs(im))i"
    }
}

public enum SpectrumError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The input is not an n × n matrix.
    case notSquare(rows: Int, columns: Int)
    /// The input holds NaN or an infinity.
    case notFinite
    /// The QR or QL iteration did not converge (not seen on mixing matrices; LAPACK gives up too).
    case noConvergence(remaining: Int)

    public var description: String {
        switch self {
        case let .notSquare(rows, columns): "the matrix is \(rows) × \(columns), not square"
        case .notFinite: "the matrix holds NaN or an infinity"
        case let .noConvergence(remaining): "the eigenvalue iteration did not converge (\(remaining) eigenvalues left)"
        }
    }
}

/// Eigenvalues and singular values in pure Swift, for analysing mixing matrices (`MixingAnalysis`,
/// `chorus topology`) without LAPACK, which is not available everywhere Swift runs.
///
/// The routines are the classic EISPACK ones as given in Numerical Recipes (3rd edition):
/// general matrices by balancing (`balanc`), reduction to upper Hessenberg form by stabilised
/// elementary similarity transforms (`elmhes`) and the Francis double-shift QR algorithm
/// (`hqr`); symmetric matrices by Householder tridiagonalisation (`tred2`) and the implicit QL
/// algorithm (`tqli`), both without eigenvectors. All are O(n³) in doubles and backward stable:
/// the eigenvalues are exact for a matrix within a few ε·‖A‖ of the input. Storage is one flat
/// row-major array and the inner loops run along rows, so n = 1024 takes seconds in a release
/// build.
///
/// `progress`, when given, hears the fraction of the O(n³) work done (roughly, in steps of about
/// a tenth) for large matrices; it is called on the caller's thread.
public enum Spectrum {
    /// All n eigenvalues of a general real n × n matrix, in no particular order (conjugate pairs
    /// adjacent, positive imaginary part first).
    public static func eigenvalues(of matrix: [[Double]], progress: ((Double) -> Void)? = nil) throws -> [Eigenvalue] {
        var a = try SquareMatrix(matrix)
        guard a.n > 0 else { return [] }
        a.balance()
        a.reduceToHessenberg(progress: progress.map { report in { report(0.25 * $0) } })
        return try a.hessenbergEigenvalues(progress: progress.map { report in { report(0.25 + 0.75 * $0) } })
    }

    /// All n eigenvalues of a real symmetric n × n matrix, ascending. Only the lower triangle is
    /// read; the caller vouches for symmetry.
    public static func symmetricEigenvalues(of matrix: [[Double]], progress: ((Double) -> Void)? = nil) throws -> [Double] {
        var a = try SquareMatrix(matrix)
        return try a.symmetricEigenvalues(progress: progress)
    }

    /// The singular values of a real n × n matrix A, descending: the square roots of the
    /// eigenvalues of the symmetric matrix AᵀA. Squaring costs accuracy in the small singular
    /// values (about ε·σ₁²/σᵢ absolute error) but not in the largest, which is what the analysis
    /// needs (‖A‖₂ = σ₁).
    public static func singularValues(of matrix: [[Double]], progress: ((Double) -> Void)? = nil) throws -> [Double] {
        let a = try SquareMatrix(matrix)
        var gram = a.gram()
        progress?(0.4)
        let values = try gram.symmetricEigenvalues(progress: progress.map { report in { report(0.4 + 0.6 * $0) } })
        return values.reversed().map { max($0, 0).squareRoot() }
    }

    /// ‖A‖₂, the largest singular value: |λ|max for a symmetric matrix (exact to ε·‖A‖, no
    /// squaring), σ₁ via AᵀA otherwise.
    public static func spectralNorm(of matrix: [[Double]], symmetric: Bool, progress: ((Double) -> Void)? = nil) throws -> Double {
        if symmetric {
            let values = try symmetricEigenvalues(of: matrix, progress: progress)
            return max(abs(values.first ?? 0), abs(values.last ?? 0))
        }
        return try singularValues(of: matrix, progress: progress).first ?? 0
    }
}

// MARK: - Dense square matrix, row-major

/// n × n doubles in one row-major array; the algorithms below index it directly (a[i, j]) and
/// work on raw buffers in their inner loops.
struct SquareMatrix {
    let n: Int
    var storage: [Double]

    init(_ rows: [[Double]]) throws {
        n = rows.count
        storage = []
        storage.reserveCapacity(n * n)
        for row in rows {
            guard row.count == n else { throw SpectrumError.notSquare(rows: n, columns: row.count) }
            for x in row {
                guard x.isFinite else { throw SpectrumError.notFinite }
                storage.append(x)
            }
        }
    }

    init(n: Int) {
        self.n = n
        storage = [Double](repeating: 0, count: n * n)
    }

    subscript(i: Int, j: Int) -> Double {
        get { storage[i * n + j] }
        set { storage[i * n + j] = newValue }
    }

    /// AᵀA (symmetric; both triangles filled), as a sum of the rank-one updates rowₖᵀ·rowₖ so
    /// every loop runs along rows.
    func gram() -> SquareMatrix {
        var c = SquareMatrix(n: n)
        let n = n
        storage.withUnsafeBufferPointer { a in
            c.storage.withUnsafeMutableBufferPointer { c in
                for k in 0..<n {
                    let row = k * n
                    for i in 0..<n {
                        let aki = a[row + i]
                        if aki == 0 { continue }
                        let out = i * n
                        for j in i..<n { c[out + j] += aki * a[row + j] }
                    }
                }
                for i in 0..<n { for j in 0..<i { c[i * n + j] = c[j * n + i] } }
            }
        }
        return c
    }

    // MARK: General matrices

    /// Balancing (balanc): diagonal similarity transforms by powers of the radix, so rows and
    /// columns have comparable norms. Exact in floating point; it shrinks ‖A‖ and with it the
    /// rounding error of the QR algorithm, which is proportional to ‖A‖.
    mutating func balance() {
        let radix = Double(Double.radix)
        let squaredRadix = radix * radix
        let n = n
        storage.withUnsafeMutableBufferPointer { a in
            var done = false
            while !done {
                done = true
                for i in 0..<n {
                    var r = 0.0, c = 0.0
                    for j in 0..<n where j != i {
                        c += abs(a[j * n + i])
                        r += abs(a[i * n + j])
                    }
                    guard c != 0, r != 0 else { continue }
                    var g = r / radix
                    var f = 1.0
                    let s = c + r
                    while c < g {
                        f *= radix
                        c *= squaredRadix
                    }
                    g = r * radix
                    while c > g {
                        f /= radix
                        c /= squaredRadix
                    }
                    if (c + r) / f < 0.95 * s {
                        done = false
                        g = 1 / f
                        for j in 0..<n { a[i * n + j] *= g }
                        for j in 0..<n { a[j * n + i] *= f }
                    }
                }
            }
        }
    }

    /// Reduction to upper Hessenberg form (elmhes): Gaussian elimination with partial pivoting,
    /// applied as a similarity transform, column by column. The entries below the subdiagonal
    /// are set to zero at the end (elmhes leaves its multipliers there).
    ///
    /// The column update of step m (column m += Σᵢ yᵢ·column i) is done after all row updates of
    /// that step and row by row: the elementary transforms of one step commute, so this is the
    /// same similarity transform, and it reads memory in order.
    mutating func reduceToHessenberg(progress: ((Double) -> Void)?) {
        let n = n
        guard n > 2 else { return }
        var multipliers = [Double](repeating: 0, count: n)
        var reported = 0
        storage.withUnsafeMutableBufferPointer { a in
            for m in 1..<(n - 1) {
                // Pivot: the largest entry of column m−1 on or below row m.
                var x = 0.0
                var pivot = m
                for j in m..<n where abs(a[j * n + m - 1]) > abs(x) {
                    x = a[j * n + m - 1]
                    pivot = j
                }
                if pivot != m {
                    for j in (m - 1)..<n { a.swapAt(pivot * n + j, m * n + j) }
                    for j in 0..<n { a.swapAt(j * n + pivot, j * n + m) }
                }
                guard x != 0 else { continue }
                var any = false
                for i in (m + 1)..<n {
                    var y = a[i * n + m - 1]
                    multipliers[i] = 0
                    guard y != 0 else { continue }
                    y /= x
                    multipliers[i] = y
                    any = true
                    a[i * n + m - 1] = 0
                    for j in m..<n { a[i * n + j] -= y * a[m * n + j] }
                }
                if any {
                    for j in 0..<n {
                        var sum = 0.0
                        let row = j * n
                        for i in (m + 1)..<n where multipliers[i] != 0 { sum += multipliers[i] * a[row + i] }
                        a[row + m] += sum
                    }
                }
                if let progress, n >= 256 {
                    // Work left after step m is about (n − m)³ of n³.
                    let done = 1 - pow(Double(n - m) / Double(n), 2)
                    if Int(done * 10) > reported {
                        reported = Int(done * 10)
                        progress(done)
                    }
                }
            }
            for i in 2..<n { for j in 0..<(i - 1) { a[i * n + j] = 0 } }
        }
    }

    /// The eigenvalues of an upper Hessenberg matrix by the Francis double-shift QR algorithm
    /// (hqr), deflating from the bottom as subdiagonal entries become negligible. Exceptional
    /// shifts after 10 and 20 iterations without deflation (and every 10 after that) break the
    /// cycles the plain double shift falls into on permutation-like matrices, which mixing
    /// matrices of directed rings resemble.
    mutating func hessenbergEigenvalues(progress: ((Double) -> Void)?) throws -> [Eigenvalue] {
        let n = n
        let eps = Double.ulpOfOne
        let maxIterations = 60
        var values = [Eigenvalue](repeating: Eigenvalue(re: 0), count: n)
        var failure: Int?
        var reported = 0
        storage.withUnsafeMutableBufferPointer { a in
            @inline(__always) func at(_ i: Int, _ j: Int) -> Double { a[i * n + j] }
            var norm = 0.0
            for i in 0..<n { for j in max(i - 1, 0)..<n { norm += abs(a[i * n + j]) } }
            var nn = n - 1
            var t = 0.0  // the shifts applied so far, added back to each eigenvalue
            var p = 0.0, q = 0.0, r = 0.0, s = 0.0, w = 0.0, x = 0.0, y = 0.0, z = 0.0
            while nn >= 0 {
                var its = 0
                var l = 0
                repeat {
                    // Look for a single small subdiagonal element to split the matrix.
                    l = nn
                    while l > 0 {
                        s = abs(at(l - 1, l - 1)) + abs(at(l, l))
                        if s == 0 { s = norm }
                        if abs(at(l, l - 1)) <= eps * s {
                            a[l * n + l - 1] = 0
                            break
                        }
                        l -= 1
                    }
                    x = at(nn, nn)
                    if l == nn {
                        // One root found.
                        values[nn] = Eigenvalue(re: x + t)
                        nn -= 1
                    } else {
                        y = at(nn - 1, nn - 1)
                        w = at(nn, nn - 1) * at(nn - 1, nn)
                        if l == nn - 1 {
                            // Two roots: the eigenvalues of the trailing 2 × 2 block.
                            p = 0.5 * (y - x)
                            q = p * p + w
                            z = abs(q).squareRoot()
                            x += t
                            if q >= 0 {
                                z = p + (p >= 0 ? abs(z) : -abs(z))
                                values[nn - 1] = Eigenvalue(re: x + z)
                                values[nn] = Eigenvalue(re: z != 0 ? x - w / z : x + z)
                            } else {
                                values[nn - 1] = Eigenvalue(re: x + p, im: z)
                                values[nn] = Eigenvalue(re: x + p, im: -z)
                            }
                            nn -= 2
                        } else {
                            if its == maxIterations {
                                failure = nn + 1
                                return
                            }
                            if its > 0 && its % 10 == 0 {
                                // Exceptional shift.
                                t += x
                                for i in 0...nn { a[i * n + i] -= x }
                                s = abs(at(nn, nn - 1)) + abs(at(nn - 1, nn - 2))
                                x = 0.75 * s
                                y = x
                                w = -0.4375 * s * s
                            }
                            its += 1
                            // Form the shift and look for two consecutive small subdiagonal elements.
                            var m = nn - 2
                            while m >= l {
                                z = at(m, m)
                                r = x - z
                                s = y - z
                                p = (r * s - w) / at(m + 1, m) + at(m, m + 1)
                                q = at(m + 1, m + 1) - z - r - s
                                r = at(m + 2, m + 1)
                                s = abs(p) + abs(q) + abs(r)
                                p /= s
                                q /= s
                                r /= s
                                if m == l { break }
                                let u = abs(at(m, m - 1)) * (abs(q) + abs(r))
                                let v = abs(p) * (abs(at(m - 1, m - 1)) + abs(z) + abs(at(m + 1, m + 1)))
                                if u <= eps * v { break }
                                m -= 1
                            }
                            for i in m..<(nn - 1) {
                                a[(i + 2) * n + i] = 0
                                if i != m { a[(i + 2) * n + i - 1] = 0 }
                            }
                            // Double QR step on rows l…nn and columns m…nn.
                            for k in m..<nn {
                                if k != m {
                                    p = at(k, k - 1)
                                    q = at(k + 1, k - 1)
                                    r = k + 1 != nn ? at(k + 2, k - 1) : 0
                                    x = abs(p) + abs(q) + abs(r)
                                    if x != 0 {
                                        p /= x
                                        q /= x
                                        r /= x
                                    }
                                }
                                let root = (p * p + q * q + r * r).squareRoot()
                                s = p >= 0 ? root : -root
                                guard s != 0 else { continue }
                                if k == m {
                                    if l != m { a[k * n + k - 1] = -at(k, k - 1) }
                                } else {
                                    a[k * n + k - 1] = -s * x
                                }
                                p += s
                                x = p / s
                                y = q / s
                                z = r / s
                                q /= p
                                r /= p
                                // Row modification.
                                let (k0, k1, k2) = (k * n, (k + 1) * n, (k + 2) * n)
                                if k + 1 != nn {
                                    for j in k...nn {
                                        let pj = a[k0 + j] + q * a[k1 + j] + r * a[k2 + j]
                                        a[k2 + j] -= pj * z
                                        a[k1 + j] -= pj * y
                                        a[k0 + j] -= pj * x
                                    }
                                } else {
                                    for j in k...nn {
                                        let pj = a[k0 + j] + q * a[k1 + j]
                                        a[k1 + j] -= pj * y
                                        a[k0 + j] -= pj * x
                                    }
                                }
                                // Column modification.
                                let last = min(nn, k + 3)
                                if k + 1 != nn {
                                    for i in l...last {
                                        let row = i * n
                                        let pi = x * a[row + k] + y * a[row + k + 1] + z * a[row + k + 2]
                                        a[row + k + 2] -= pi * r
                                        a[row + k + 1] -= pi * q
                                        a[row + k] -= pi
                                    }
                                } else {
                                    for i in l...last {
                                        let row = i * n
                                        let pi = x * a[row + k] + y * a[row + k + 1]
                                        a[row + k + 1] -= pi * q
                                        a[row + k] -= pi
                                    }
                                }
                            }
                        }
                    }
                } while l + 1 < nn
                if let progress, n >= 256 {
                    let done = 1 - pow(Double(nn + 1) / Double(n), 3)
                    if Int(done * 10) > reported {
                        reported = Int(done * 10)
                        progress(done)
                    }
                }
            }
        }
        if let failure { throw SpectrumError.noConvergence(remaining: failure) }
        return values
    }

    // MARK: Symmetric matrices

    /// Eigenvalues of a symmetric matrix (lower triangle read), ascending: tridiagonalise, then QL.
    mutating func symmetricEigenvalues(progress: ((Double) -> Void)?) throws -> [Double] {
        guard n > 0 else { return [] }
        var (d, e) = tridiagonalise(progress: progress.map { report in { report(0.95 * $0) } })
        try Self.tridiagonalEigenvalues(diagonal: &d, offDiagonal: &e)
        progress?(1)
        return d.sorted()
    }

    /// Householder reduction to tridiagonal form (tred2 without eigenvectors): returns the
    /// diagonal d and the subdiagonal e (e[0] = 0, e[i] couples i−1 and i). Only the lower
    /// triangle is read and updated.
    ///
    /// tred2 forms p = A·u with a loop that walks the lower triangle down its columns; here the
    /// same product is formed row by row (each stored a[j][k], k ≤ j, contributes to p[j] and
    /// p[k]) so memory is read in order.
    mutating func tridiagonalise(progress: ((Double) -> Void)?) -> (d: [Double], e: [Double]) {
        let n = n
        var d = [Double](repeating: 0, count: n)
        var e = [Double](repeating: 0, count: n)
        var reported = 0
        storage.withUnsafeMutableBufferPointer { z in
            e.withUnsafeMutableBufferPointer { e in
                var i = n - 1
                while i > 0 {
                    let l = i - 1
                    let rowI = i * n
                    var h = 0.0
                    if l > 0 {
                        var scale = 0.0
                        for k in 0..<i { scale += abs(z[rowI + k]) }
                        if scale == 0 {
                            e[i] = z[rowI + l]
                        } else {
                            for k in 0..<i {
                                z[rowI + k] /= scale
                                h += z[rowI + k] * z[rowI + k]
                            }
                            var f = z[rowI + l]
                            var g = f >= 0 ? -h.squareRoot() : h.squareRoot()
                            e[i] = scale * g
                            h -= f * g
                            z[rowI + l] = f - g
                            // p = A·u / h into e[0..<i], A the leading i × i block (lower triangle).
                            for j in 0..<i { e[j] = 0 }
                            for j in 0..<i {
                                let rowJ = j * n
                                let uj = z[rowI + j]
                                var sum = 0.0
                                for k in 0..<j {
                                    let ajk = z[rowJ + k]
                                    sum += ajk * z[rowI + k]
                                    e[k] += ajk * uj
                                }
                                e[j] += sum + z[rowJ + j] * uj
                            }
                            f = 0
                            for j in 0..<i {
                                e[j] /= h
                                f += e[j] * z[rowI + j]
                            }
                            let hh = f / (h + h)
                            // A ← A − (u·qᵀ + q·uᵀ), q = p − hh·u.
                            for j in 0..<i {
                                f = z[rowI + j]
                                g = e[j] - hh * f
                                e[j] = g
                            }
                            for j in 0..<i {
                                let rowJ = j * n
                                let fj = z[rowI + j], gj = e[j]
                                for k in 0...j { z[rowJ + k] -= fj * e[k] + gj * z[rowI + k] }
                            }
                        }
                    } else {
                        e[i] = z[rowI + l]
                    }
                    d[i] = h
                    i -= 1
                    if let progress, n >= 256 {
                        let done = 1 - pow(Double(i) / Double(n), 3)
                        if Int(done * 10) > reported {
                            reported = Int(done * 10)
                            progress(done)
                        }
                    }
                }
                e[0] = 0
            }
        }
        for i in 0..<n { d[i] = self[i, i] }
        return (d, e)
    }

    /// Eigenvalues of the symmetric tridiagonal matrix (d, e) by the QL algorithm with implicit
    /// Wilkinson shifts (tqli without eigenvectors); the result replaces d, unsorted.
    static func tridiagonalEigenvalues(diagonal d: inout [Double], offDiagonal e: inout [Double]) throws {
        let n = d.count
        guard n > 1 else { return }
        let eps = Double.ulpOfOne
        for i in 1..<n { e[i - 1] = e[i] }
        e[n - 1] = 0
        for l in 0..<n {
            var iterations = 0
            var m = l
            repeat {
                m = l
                while m < n - 1 {
                    let dd = abs(d[m]) + abs(d[m + 1])
                    if abs(e[m]) <= eps * dd { break }
                    m += 1
                }
                if m != l {
                    if iterations == 60 { throw SpectrumError.noConvergence(remaining: n - l) }
                    iterations += 1
                    var g = (d[l + 1] - d[l]) / (2 * e[l])
                    var r = hypot(g, 1)
                    g = d[m] - d[l] + e[l] / (g + (g >= 0 ? abs(r) : -abs(r)))
                    var s = 1.0, c = 1.0, p = 0.0
                    var i = m - 1
                    var underflow = false
                    while i >= l {
                        let f = s * e[i]
                        let b = c * e[i]
                        r = hypot(f, g)
                        e[i + 1] = r
                        if r == 0 {
                            // Recover from underflow.
                            d[i + 1] -= p
                            e[m] = 0
                            underflow = true
                            break
                        }
                        s = f / r
                        c = g / r
                        g = d[i + 1] - p
                        r = (d[i] - g) * s + 2 * c * b
                        p = s * r
                        d[i + 1] = g + p
                        g = c * r - b
                        i -= 1
                    }
                    if underflow { continue }
                    d[l] -= p
                    e[l] = g
                    e[m] = 0
                }
            } while m != l
        }
    }
}

// MARK: - Mixing analysis

/// How fast a mixing matrix W (x(k+1) = W·x(k), `MixingMatrix.build`) drives peers to
/// consensus: the spectral figures `chorus topology` prints.
///
/// The consensus error shrinks like |λ₂|ᵏ, λ₂ the eigenvalue of second-largest modulus (the
/// largest is the eigenvalue 1 of the consensus vector), so `slem` = |λ₂| decides the rounds.
/// ‖W − J‖₂ (J = 11ᵀ/n) bounds the error of every single round, not just asymptotically, but
/// only means that for doubly stochastic W; for symmetric doubly stochastic W it equals slem,
/// for directed graphs it can be larger (the bound is pessimistic, the rate is |λ₂|).
///
/// Time-varying topologies (one-peer exponential) are analysed over one period: P = W(r+p−1)···W(r)
/// is a fixed matrix again, and the per-round rate is slem(P)^(1/p). The stochastic and symmetric
/// flags describe the single round's W(r), the matrix the peers apply.
public struct MixingAnalysis: Sendable, Equatable {
    /// Tolerance for row and column sums, symmetry, and "the matrix is J".
    public static let tolerance = 1e-12
    /// An eigenvalue this close to the unit circle counts as modulus one (disconnected or periodic).
    public static let unitTolerance = 1e-9
    /// The error reduction `roundsTo1e6` aims at.
    public static let target = 1e-6

    public let peers: Int
    /// Rounds after which the graph repeats (1 for static graphs).
    public let period: Int
    /// Every row sums to one (plain mixing: each peer takes a weighted mean of what it receives).
    public let rowStochastic: Bool
    /// Every column sums to one (push-sum: each peer hands out exactly what it has, so the sum is
    /// conserved).
    public let columnStochastic: Bool
    public let symmetric: Bool
    /// Per-round second-largest eigenvalue modulus |λ₂|: the largest modulus once one eigenvalue
    /// 1 is set aside; 1 when another eigenvalue has modulus ~1 (the graph is disconnected, or
    /// periodic, and never mixes); 0 when the matrix (or period product) is J.
    public let slem: Double
    /// Per-round ‖W − J‖₂, the largest singular value (for time-varying graphs ‖P − J‖₂^(1/p)).
    public let spectralNorm: Double
    /// The matrix (time-varying: the period's product) is exactly J to `tolerance`: one round
    /// (one period) gives every peer the average.
    public let exact: Bool
    /// Whole rounds until the consensus error shrinks by 10⁶: ⌈ln 10⁻⁶ / ln slem⌉, the smallest
    /// k with slemᵏ ≤ 10⁻⁶ (an asymptotic figure). 1 when W = J, the period when the period's
    /// product is J, 0 for a single peer, nil when slem ≥ 1 (never).
    public let roundsTo1e6: Int?

    /// ln 10⁻⁶ / ln slem before rounding up (nil where `roundsTo1e6` is nil or set by rule).
    public var rateRounds: Double? {
        guard !exact, slem > 0, slem < 1, peers > 1 else { return nil }
        return log(Self.target) / log(slem)
    }

    /// Analyses W for `topology` on n peers in `round` (and, for time-varying graphs, the period
    /// from `round` on). `progress` hears a stage name and the fraction of it done (large n).
    public init(topology: Topology, count n: Int, weights: WeightRule, mixing: MixingMode, round: UInt64 = 0,
                progress: ((String, Double) -> Void)? = nil) throws {
        let w = MixingMatrix.build(topology: topology, count: n, weights: weights, mixing: mixing, round: round)
        guard topology.isTimeVarying else {
            try self.init(matrix: w, progress: progress)
            return
        }
        let period = topology.period(count: n)
        let product = MixingMatrix.product(topology: topology, count: n, weights: weights, mixing: mixing, from: round, rounds: period)
        try self.init(matrix: w, periodProduct: product, period: period, progress: progress)
    }

    /// Analyses one fixed mixing matrix (applied every round).
    public init(matrix w: [[Double]], progress: ((String, Double) -> Void)? = nil) throws {
        try self.init(matrix: w, periodProduct: w, period: 1, progress: progress)
    }

    /// Analyses a periodic sequence: `w` one round's matrix (for the flags), `product` the
    /// product over `period` rounds (for the rates).
    public init(matrix w: [[Double]], periodProduct product: [[Double]], period: Int,
                progress: ((String, Double) -> Void)? = nil) throws {
        let n = w.count
        for row in w + product where row.count != n { throw SpectrumError.notSquare(rows: n, columns: row.count) }
        let tolerance = Self.tolerance
        peers = n
        self.period = max(period, 1)
        rowStochastic = w.allSatisfy { abs($0.reduce(0, +) - 1) <= tolerance }
        columnStochastic = (0..<n).allSatisfy { j in abs(w.reduce(0) { $0 + $1[j] } - 1) <= tolerance }
        symmetric = Self.isSymmetric(w)
        let deviation = Self.minusAverage(product)
        exact = deviation.allSatisfy { $0.allSatisfy { abs($0) <= tolerance } }
        if n <= 1 {
            (slem, spectralNorm, roundsTo1e6) = (0, 0, 0)
            return
        }
        if exact {
            (slem, spectralNorm, roundsTo1e6) = (0, 0, self.period)
            return
        }
        let productSymmetric = Self.isSymmetric(product)
        let eigenvalues: [Eigenvalue]
        if productSymmetric {
            eigenvalues = try Spectrum.symmetricEigenvalues(of: product) { progress?("eigenvalues", $0) }.map { Eigenvalue(re: $0) }
        } else {
            eigenvalues = try Spectrum.eigenvalues(of: product) { progress?("eigenvalues", $0) }
        }
        let periodSLEM = Self.secondLargestModulus(eigenvalues)
        let norm = try Spectrum.spectralNorm(of: deviation, symmetric: productSymmetric) { progress?("singular values", $0) }
        let root = 1 / Double(self.period)
        slem = periodSLEM >= 1 ? 1 : pow(periodSLEM, root)
        spectralNorm = pow(norm, root)
        roundsTo1e6 = Self.rounds(slem: slem)
    }

    /// |λ₂|: the largest modulus after removing the eigenvalue nearest 1; 1 when that is within
    /// `unitTolerance` of the unit circle.
    public static func secondLargestModulus(_ eigenvalues: [Eigenvalue]) -> Double {
        guard eigenvalues.count > 1 else { return 0 }
        var rest = eigenvalues
        let one = rest.indices.min { hypot(rest[$0].re - 1, rest[$0].im) < hypot(rest[$1].re - 1, rest[$1].im) }!
        rest.remove(at: one)
        let largest = rest.map(\.modulus).max()!
        return largest >= 1 - unitTolerance ? 1 : largest
    }

    /// ⌈ln 10⁻⁶ / ln slem⌉, at least 1; nil when slem ≥ 1. (The quotient is nudged down by 10⁻⁹
    /// so that an exact power such as slem = 0.1, six rounds, is not rounded up to seven.)
    public static func rounds(slem: Double) -> Int? {
        guard slem < 1 else { return nil }
        guard slem > 0 else { return 1 }
        let quotient = log(target) / log(slem)
        return max(1, Int((quotient - 1e-9).rounded(.up)))
    }

    static func isSymmetric(_ a: [[Double]]) -> Bool {
        for i in a.indices { for j in 0..<i where abs(a[i][j] - a[j][i]) > tolerance { return false } }
        return true
    }

    /// A − J, J the matrix with every entry 1/n.
    static func minusAverage(_ a: [[Double]]) -> [[Double]] {
        let average = 1 / Double(max(a.count, 1))
        return a.map { $0.map { $0 - average } }
    }
}
