import Testing
import ChorusLearning

@Test("SplitMix64 matches the reference outputs for seed 0")
func splitMixKnownAnswer() {
    var g = SplitMix64(seed: 0)
    #expect(g.next() == 0xE220_A839_7B1D_CDAF)
    #expect(g.next() == 0x6E78_9E6A_A1B9_65F4)
    #expect(g.next() == 0x06C4_5D18_8009_454F)
}

@Test("xoshiro256** matches the reference outputs for state 1, 2, 3, 4")
func xoshiroKnownAnswer() {
    var g = Xoshiro256(seed: 0)
    g.state = (1, 2, 3, 4)
    #expect(g.next() == 11520)
    #expect(g.next() == 0)
    #expect(g.next() == 1_509_978_240)
    #expect(g.next() == 1_215_971_899_390_074_240)
}

@Test("the same seed gives the same stream and nearby seeds give different ones")
func seedsAreReproducible() {
    var a = Xoshiro256(seed: 42), b = Xoshiro256(seed: 42), c = Xoshiro256(seed: 43)
    let sa = (0..<8).map { _ in a.next() }
    #expect(sa == (0..<8).map { _ in b.next() })
    #expect(sa != (0..<8).map { _ in c.next() })
    var d1 = Xoshiro256.derived(seed: 42, stream: 1), d2 = Xoshiro256.derived(seed: 42, stream: 2)
    #expect(d1.next() != d2.next())
}

@Test("bounded integers stay in range and are roughly uniform")
func boundedIntegers() {
    var g = Xoshiro256(seed: 7)
    var counts = [Int](repeating: 0, count: 7)
    for _ in 0..<70_000 { counts[Sampling.index(below: 7, using: &g)] += 1 }
    // Expected 10 000 each; a standard deviation is about 93.
    #expect(counts.allSatisfy { abs($0 - 10_000) < 500 })
}

@Test("a shuffle is a permutation")
func shuffleIsPermutation() {
    var g = Xoshiro256(seed: 3)
    let p = Sampling.permutation(count: 1000, using: &g)
    #expect(p.sorted() == Array(0..<1000))
    #expect(p != Array(0..<1000))
}

@Test("standard normal draws have mean 0 and variance 1")
func normalMoments() {
    var g = Xoshiro256(seed: 11)
    let n = 50_000
    let xs = (0..<n).map { _ in Sampling.standardNormal(using: &g) }
    let mean = xs.reduce(0, +) / Double(n)
    let variance = xs.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(n)
    #expect(abs(mean) < 0.02)
    #expect(abs(variance - 1) < 0.03)
}

@Test("Gamma draws have mean equal to the shape", arguments: [0.1, 0.5, 1.0, 2.5, 10.0])
func gammaMean(shape: Double) {
    var g = Xoshiro256(seed: 5)
    let n = 40_000
    let mean = (0..<n).map { _ in Sampling.gamma(shape: shape, using: &g) }.reduce(0, +) / Double(n)
    // Standard error is √(shape/n); allow about five of them.
    #expect(abs(mean - shape) < 5 * (shape / Double(n)).squareRoot())
}

@Test("Dirichlet draws are probability vectors even for tiny alpha", arguments: [0.001, 0.1, 1.0, 100.0])
func dirichletIsSimplex(alpha: Double) {
    var g = Xoshiro256(seed: 9)
    for _ in 0..<200 {
        let p = Sampling.dirichlet(alpha: alpha, count: 20, using: &g)
        #expect(p.allSatisfy { $0 >= 0 && $0.isFinite })
        #expect(abs(p.reduce(0, +) - 1) < 1e-9)
    }
}

@Test("Dirichlet draws concentrate as the reference sampler's do")
func dirichletConcentration() {
    var g = Xoshiro256(seed: 2)
    func meanMax(_ alpha: Double) -> Double {
        (0..<2000).map { _ in Sampling.dirichlet(alpha: alpha, count: 10, using: &g).max()! }.reduce(0, +) / 2000
    }
    // Mean largest share among 10 categories, from 200 000 draws of numpy's
    // `default_rng(0).dirichlet`: 0.783 for α = 0.05 and 0.116 for α = 100. The standard errors
    // here are about 0.006 and 0.0005.
    #expect(abs(meanMax(0.05) - 0.783) < 0.025)
    #expect(abs(meanMax(100) - 0.116) < 0.003)
}
