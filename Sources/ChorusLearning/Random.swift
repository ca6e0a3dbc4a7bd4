// Seeded randomness. Nothing in this module touches a global generator: every random choice takes
// a generator or a seed, so a simulator replaying a seed replays the whole training run.

/// SplitMix64 (Steele, Lea & Flood 2014): tiny, fast, and good enough on its own; also the
/// recommended way to expand one 64-bit seed into the state of a larger generator.
public struct SplitMix64: RandomNumberGenerator, Sendable, Hashable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// xoshiro256** (Blackman & Vigna 2018): the generator trainers and partitioners use. Its 256-bit
/// state passes BigCrush and it is as fast as SplitMix64; seeding goes through SplitMix64 so that
/// nearby seeds (1, 2, 3…) give unrelated streams and the state is never all zero.
public struct Xoshiro256: RandomNumberGenerator, Sendable, Hashable {
    public var state: (UInt64, UInt64, UInt64, UInt64)

    public init(seed: UInt64) {
        var seeder = SplitMix64(seed: seed)
        state = (seeder.next(), seeder.next(), seeder.next(), seeder.next())
    }

    public mutating func next() -> UInt64 {
        let result = rotl(state.1 &* 5, 7) &* 9
        let t = state.1 << 17
        state.2 ^= state.0
        state.3 ^= state.1
        state.1 ^= state.2
        state.0 ^= state.3
        state.2 ^= t
        state.3 = rotl(state.3, 45)
        return result
    }

    @inline(__always) private func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 { (x << k) | (x >> (64 - k)) }

    public static func == (a: Self, b: Self) -> Bool { a.state == b.state }
    public func hash(into h: inout Hasher) {
        h.combine(state.0); h.combine(state.1); h.combine(state.2); h.combine(state.3)
    }

    /// A generator for a derived purpose (e.g. "peer 3's shuffles"), independent of the parent stream.
    public static func derived(seed: UInt64, stream: UInt64) -> Xoshiro256 {
        var mix = SplitMix64(seed: seed ^ (stream &* 0xD1B5_4A32_D192_ED03))
        return Xoshiro256(seed: mix.next())
    }
}

/// Random draws with algorithms fixed here rather than in the standard library, whose
/// `shuffle`/`random(in:)` algorithms may change between Swift releases and would silently change
/// which rows a seed selects.
public enum Sampling {
    /// Uniform in [0, 1) with 53 random bits.
    @inlinable
    public static func uniform(using rng: inout some RandomNumberGenerator) -> Double {
        Double(rng.next() >> 11) * 0x1p-53
    }

    /// Uniform integer in 0..<bound (Lemire's nearly-divisionless method, unbiased).
    public static func index(below bound: Int, using rng: inout some RandomNumberGenerator) -> Int {
        precondition(bound > 0, "Sampling.index(below:) needs a positive bound")
        let n = UInt64(bound)
        var m = rng.next().multipliedFullWidth(by: n)
        if m.low < n {
            let threshold = (0 &- n) % n
            while m.low < threshold { m = rng.next().multipliedFullWidth(by: n) }
        }
        return Int(m.high)
    }

    /// Fisher–Yates shuffle in place.
    public static func shuffle<T>(_ items: inout [T], using rng: inout some RandomNumberGenerator) {
        var i = items.count - 1
        while i > 0 {
            let j = index(below: i + 1, using: &rng)
            if i != j { items.swapAt(i, j) }
            i -= 1
        }
    }

    /// A random permutation of 0..<count.
    public static func permutation(count: Int, using rng: inout some RandomNumberGenerator) -> [Int] {
        var p = Array(0..<count)
        shuffle(&p, using: &rng)
        return p
    }

    /// Standard normal (Box–Muller; one of the pair is discarded to keep the generator stateless).
    public static func standardNormal(using rng: inout some RandomNumberGenerator) -> Double {
        let u1 = 1 - uniform(using: &rng)  // (0, 1]: log stays finite
        let u2 = uniform(using: &rng)
        return (-2 * mathLog(u1)).squareRoot() * mathCos(2 * Double.pi * u2)
    }

    /// Gamma(shape, 1) by Marsaglia & Tsang (2000).
    public static func gamma(shape: Double, using rng: inout some RandomNumberGenerator) -> Double {
        mathExp(logGamma(shape: shape, using: &rng))
    }

    /// The logarithm of a Gamma(shape, 1) draw. For shape < 1 the draw is
    /// Gamma(shape + 1) · U^(1/shape), which underflows to 0 for tiny shapes (α = 0.01 gives
    /// values like 1e-300); kept in log space it stays usable for normalising Dirichlet draws.
    public static func logGamma(shape: Double, using rng: inout some RandomNumberGenerator) -> Double {
        precondition(shape > 0 && shape.isFinite, "Gamma shape must be positive and finite")
        if shape < 1 {
            let u = 1 - uniform(using: &rng)  // (0, 1]
            return logGamma(shape: shape + 1, using: &rng) + mathLog(u) / shape
        }
        let d = shape - 1.0 / 3.0
        let c = 1 / (9 * d).squareRoot()
        while true {
            let x = standardNormal(using: &rng)
            let base = 1 + c * x
            guard base > 0 else { continue }
            let v = base * base * base
            let u = 1 - uniform(using: &rng)
            let x2 = x * x
            if u < 1 - 0.0331 * x2 * x2 || mathLog(u) < 0.5 * x2 + d * (1 - v + mathLog(v)) {
                return mathLog(d * v)
            }
        }
    }

    /// A draw from the symmetric Dirichlet(α, …, α) over `count` categories: normalised Gamma
    /// draws, normalised in log space so that small α cannot produce 0/0.
    public static func dirichlet(alpha: Double, count: Int, using rng: inout some RandomNumberGenerator) -> [Double] {
        precondition(count > 0, "Dirichlet needs at least one category")
        let logs = (0..<count).map { _ in logGamma(shape: alpha, using: &rng) }
        let top = logs.max()!
        let weights = logs.map { mathExp($0 - top) }
        let total = weights.reduce(0, +)
        return weights.map { $0 / total }
    }
}
