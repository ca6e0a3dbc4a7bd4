import Testing
@testable import ChorusAveraging

@Test("averaging over a connected graph converges to the exact average")
func convergesToAverage() {
    let n = 8
    let adjacency = Topology.exponential.adjacency(count: n).map(Set.init)
    var averagers = (0..<n).map { GossipAverager<Int>(dimension: 3, neighbours: adjacency[$0]) }
    var x: [[Float]] = (0..<n).map { i in [Float(i), Float(i * i), -Float(i)] }
    let mean = (0..<3).map { k in x.map { $0[k] }.reduce(0, +) / Float(n) }
    for round in 0..<30 {
        let now = Double(round) * 0.1
        let degrees = averagers.map { _ in 0 }.indices.map { i in max(1, adjacency[i].count) }
        for i in 0..<n { for j in adjacency[i] { averagers[j].receive(from: i, vector: x[i], degree: degrees[i], now: now) } }
        for i in 0..<n { _ = averagers[i].mix(&x[i], now: now) }
    }
    for i in 0..<n { for k in 0..<3 { #expect(abs(x[i][k] - mean[k]) < 1e-4) } }
}

@Test("a silent neighbour is excluded from degree and weights after the silence timeout")
func silentNeighbourExcluded() {
    var a = GossipAverager<String>(dimension: 1, neighbours: ["b", "c"], settings: .init(silenceTimeout: 3, maxContributionAge: 1))
    a.receive(from: "b", vector: [1], degree: 2, now: 0)
    a.receive(from: "c", vector: [1], degree: 2, now: 0)
    #expect(a.degree(now: 0.5) == 2)
    #expect(a.currentWeights(now: 0.5).weights == ["b": 1.0 / 3, "c": 1.0 / 3])
    // c falls silent; b keeps talking.
    a.receive(from: "b", vector: [1], degree: 2, now: 2.9)
    #expect(a.degree(now: 3.0) == 2)
    #expect(a.degree(now: 3.01) == 1)
    #expect(a.activeNeighbours(now: 3.01) == ["b"])
    #expect(a.currentWeights(now: 3.01).weights == ["b": 1.0 / 3])
    #expect(abs(a.currentWeights(now: 3.01).selfWeight - 2.0 / 3) < 1e-12)
}

@Test("each contribution is mixed once; stale ones are dropped and their weight stays with self")
func stalenessRule() {
    var a = GossipAverager<String>(dimension: 1, neighbours: ["b"], settings: .init(silenceTimeout: 3, maxContributionAge: 1))
    var x: [Float] = [0]
    a.receive(from: "b", vector: [4], degree: 1, now: 0)
    let first = a.mix(&x, now: 0.1)
    #expect(first.weights == ["b": 0.5] && x == [2])
    // Nothing new: a second mix changes nothing.
    #expect(a.mix(&x, now: 0.2).weights.isEmpty && x == [2])
    // A contribution that waited too long is not used.
    a.receive(from: "b", vector: [100], degree: 1, now: 1)
    #expect(a.mix(&x, now: 2.5).selfWeight == 1 && x == [2])
}

@Test("NaN, infinite, wrong-length and non-neighbour vectors are rejected without touching state")
func badVectorsRejected() {
    var a = GossipAverager<String>(dimension: 2, neighbours: ["b"])
    #expect(a.receive(from: "b", vector: [.nan, 1], degree: 1, now: 0) == .nonFinite)
    #expect(a.receive(from: "b", vector: [.infinity, 1], degree: 1, now: 0) == .nonFinite)
    #expect(a.receive(from: "b", vector: [1], degree: 1, now: 0) == .wrongDimension)
    #expect(a.receive(from: "z", vector: [1, 1], degree: 1, now: 0) == .notANeighbour)
    #expect(a.receive(from: "b", vector: [1, 1], degree: 0, now: 0) == .badDegree)
    var x: [Float] = [3, 3]
    #expect(a.mix(&x, now: 0).selfWeight == 1 && x == [3, 3])
    #expect(a.degree(now: 0) == 0)
    #expect(a.rejections.values.reduce(0, +) == 5)
}

@Test("rows stay valid while peers disagree about degrees")
func rowsValidUnderDisagreement() {
    // b claims a degree of 1 while a has 3 active neighbours: weights follow max(d_i, d_j).
    var a = GossipAverager<String>(dimension: 1, neighbours: ["b", "c", "d"])
    var x: [Float] = [0]
    a.receive(from: "b", vector: [1], degree: 1, now: 0)
    a.receive(from: "c", vector: [1], degree: 50, now: 0)
    a.receive(from: "d", vector: [1], degree: 3, now: 0)
    let report = a.mix(&x, now: 0)
    #expect(report.weights["b"] == 0.25 && report.weights["d"] == 0.25)
    #expect(abs(report.weights["c"]! - 1.0 / 51) < 1e-15)
    #expect(report.selfWeight > 0)
    #expect(abs(report.selfWeight + report.weights.values.reduce(0, +) - 1) < 1e-12)
}

@Test("changing the neighbour set forgets former neighbours")
func neighbourChange() {
    var a = GossipAverager<String>(dimension: 1, neighbours: ["b", "c"])
    a.receive(from: "b", vector: [1], degree: 1, now: 0)
    a.setNeighbours(["c"])
    #expect(a.degree(now: 0) == 0)
    var x: [Float] = [0]
    #expect(a.mix(&x, now: 0).weights.isEmpty)
}

@Test("averaging settings are validated by field name")
func averagingSettingsValidation() {
    #expect(AveragingSettings(silenceTimeout: 1, maxContributionAge: 2).problems().first?.hasPrefix("maxContributionAge") == true)
    #expect(AveragingSettings(silenceTimeout: 0, maxContributionAge: 0).problems().count >= 2)
}

@Test("a mix reports the peer's distance to its neighbours' weighted average, before mixing")
func distanceToNeighbours() {
    var a = GossipAverager<String>(dimension: 2, neighbours: ["b", "c"])
    var own: [Float] = [1, 1]
    #expect(a.mix(&own, now: 0).distanceToNeighbours == nil, "nothing arrived: nothing to compare with")
    a.receive(from: "b", vector: [3, 0], degree: 2, now: 1)
    a.receive(from: "c", vector: [3, 0], degree: 2, now: 1)
    // Both weigh the same: ȳ = (3, 0); ‖(1, 1) − (3, 0)‖ / ‖(3, 0)‖ = √5 / 3.
    let report = a.mix(&own, now: 1)
    #expect(abs((report.distanceToNeighbours ?? 0) - 5.0.squareRoot() / 3) < 1e-9)
    a.receive(from: "b", vector: own, degree: 2, now: 2)
    #expect(a.mix(&own, now: 2).distanceToNeighbours == 0)
}

@Test("a mix not measuring the distance mixes exactly the same and reports no distance")
func mixWithoutDistance() {
    func run(measuring: Bool) -> ([Float], Double?) {
        var a = GossipAverager<String>(dimension: 3, neighbours: ["b", "c"])
        var own: [Float] = [1, 2, 3]
        a.receive(from: "b", vector: [0.5, -1, 4], degree: 3, now: 1)
        a.receive(from: "c", vector: [2, 0, 1], degree: 1, now: 1)
        let report = a.mix(&own, now: 1, measuringDistance: measuring)
        return (own, report.distanceToNeighbours)
    }
    let (measured, distance) = run(measuring: true)
    let (unmeasured, none) = run(measuring: false)
    #expect(measured == unmeasured)
    #expect(measured != [1, 2, 3])
    #expect(distance != nil && none == nil)
}
