import Foundation
import Testing
@testable import ChorusAveraging

/// A deterministic generator for the tests (SplitMix64).
struct TestRandom: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// n averagers over a topology, driven in synchronous rounds: every peer sends at the round's
/// start, the network delivers (or loses, duplicates, reorders) the shares, every peer mixes.
struct AveragingNetwork {
    var peers: [GossipAverager<Int>]
    let topology: Topology
    var members: [Int]
    var rng = TestRandom(state: 7)
    var round: UInt64 = 100

    init(values: [[Double]], topology: Topology, settings: AveragingSettings) {
        peers = values.enumerated().map { GossipAverager(initial: $0.element, epoch: UInt64($0.offset + 1), settings: settings) }
        self.topology = topology
        members = Array(values.indices)
    }

    /// One round. `fate(from, to)` says how many copies of a share arrive (0: lost).
    mutating func step(fate: (Int, Int, inout TestRandom) -> Int = { _, _, _ in 1 }, now: Double = 0) {
        var inFlight: [(from: Int, to: Int, share: Share)] = []
        for i in members {
            let hood = topology.neighbourhood(of: i, inSorted: members, round: round)
            for item in peers[i].beginRound(round, out: hood.out, ownDegree: hood.outDegree, maxDegree: hood.maxDegree,
                                            retained: hood.retained, now: now) {
                for target in item.targets { inFlight.append((i, target, item.share)) }
            }
        }
        inFlight.shuffle(using: &rng)  // arrival order is not send order
        for message in inFlight {
            for _ in 0..<fate(message.from, message.to, &rng) { peers[message.to].receive(from: message.from, message.share, now: now) }
        }
        for i in members {
            let hood = topology.neighbourhood(of: i, inSorted: members, round: round)
            _ = peers[i].mix(round: round, in: hood.in, ownDegree: hood.inDegree, maxDegree: hood.maxDegree)
        }
        round += 1
    }

    var estimates: [[Double]] { members.compactMap { peers[$0].estimate } }

    /// max_i ‖z_i − c‖ / ‖c‖.
    func error(to c: [Double]) -> Double {
        let norm = c.reduce(0) { $0 + $1 * $1 }.squareRoot()
        return estimates.map { z in zip(z, c).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() / norm }.max() ?? .infinity
    }

    /// max_i ‖z_i − z̄‖ (consensus, whatever the value).
    var spread: Double {
        let z = estimates
        let mean = (0..<z[0].count).map { k in z.map { $0[k] }.reduce(0, +) / Double(z.count) }
        return z.map { v in zip(v, mean).reduce(0) { $0 + ($1.0 - $1.1) * ($1.0 - $1.1) }.squareRoot() }.max()!
    }
}

func randomValues(_ n: Int, dimension: Int, seed: UInt64) -> [[Double]] {
    var rng = TestRandom(state: seed)
    return (0..<n).map { _ in (0..<dimension).map { _ in Double.random(in: -1...1, using: &rng) } }
}

func mean(_ values: [[Double]]) -> [Double] {
    (0..<values[0].count).map { k in values.map { $0[k] }.reduce(0, +) / Double(values.count) }
}

let ringSLEM16: Double = 1.0 / 3 + 2.0 / 3 * cos(2 * Double.pi / 16)

@Test("plain mixing contracts the consensus error by the second-largest eigenvalue modulus every round",
      arguments: [(Topology.exponential, 16, 0.5), (Topology.ring, 16, ringSLEM16), (Topology.exponential, 8, 1.0 / 3)] as [(Topology, Int, Double)])
func plainContractsBySLEM(topology: Topology, n: Int, slem: Double) {
    var network = AveragingNetwork(values: randomValues(n, dimension: 5, seed: 3), topology: topology, settings: .init())
    for _ in 0..<15 { network.step() }
    let before = network.spread
    for _ in 0..<15 { network.step() }
    let rate = pow(network.spread / before, 1.0 / 15)
    #expect(abs(rate - slem) < 0.02 * slem, "measured \(rate) per round, expected \(slem)")
}

@Test("on the complete graph one round of plain mixing gives every peer the exact average")
func completeGraphAveragesInOneRound() {
    let values = randomValues(7, dimension: 4, seed: 5)
    var network = AveragingNetwork(values: values, topology: .complete, settings: .init())
    network.step()
    #expect(network.error(to: mean(values)) < 1e-14)
}

@Test("one-peer exponential with uniform weights gives the exact average in log₂ n rounds", arguments: [
    (MixingMode.plain, 8), (.plain, 16), (.pushSum, 16), (.pushSum, 32),
])
func onePeerExponentialIsExact(mixing: MixingMode, n: Int) {
    let values = randomValues(n, dimension: 3, seed: 11)
    var network = AveragingNetwork(values: values, topology: .onePeerExponential, settings: .init(mixing: mixing, weights: .uniform))
    network.round = 0  // the schedule starts with 2⁰
    var k = 0
    while 1 << k < n { k += 1 }
    for _ in 0..<(k - 1) { network.step() }
    #expect(network.error(to: mean(values)) > 1e-3)
    network.step()
    #expect(network.error(to: mean(values)) <= 1e-12)
}

@Test("on an irregular graph plain Metropolis–Hastings mixing converges to the true mean")
func irregularGraphKeepsTheMean() {
    // random:3 over 15 peers: n·k is odd, so one peer has degree 4.
    let topology = Topology.randomRegular(k: 3, seed: 2)
    let degrees = topology.adjacency(count: 15).map(\.count)
    #expect(Set(degrees) == [3, 4])
    let values = randomValues(15, dimension: 3, seed: 13)
    var network = AveragingNetwork(values: values, topology: topology, settings: .init())
    for _ in 0..<300 { network.step() }
    #expect(network.error(to: mean(values)) < 1e-12)
}

@Test("push-sum keeps the exact average under loss, duplication and reordering; plain mixing does not")
func pushSumSurvivesLoss() {
    let values = randomValues(16, dimension: 6, seed: 17)
    let lossy: (Int, Int, inout TestRandom) -> Int = { _, to, rng in
        let loss = to == 3 ? 0.5 : 0.3  // peer 3 loses half of what it receives
        let r = Double.random(in: 0..<1, using: &rng)
        return r < loss ? 0 : (r < loss + 0.1 ? 2 : 1)
    }
    var push = AveragingNetwork(values: values, topology: .exponential, settings: .init(mixing: .pushSum))
    var plain = AveragingNetwork(values: values, topology: .exponential, settings: .init(mixing: .plain))
    for _ in 0..<400 {
        push.step(fate: lossy)
        plain.step(fate: lossy)
    }
    #expect(push.error(to: mean(values)) < 1e-12)
    #expect(plain.spread < 1e-9)  // plain agrees on a value…
    #expect(plain.error(to: mean(values)) > 1e-3)  // …that is not the average
}

@Test("a push-sum peer that leaves hands its whole mass over, even when shares are lost")
func pushSumLeaveHandsOver() {
    let values = randomValues(8, dimension: 4, seed: 19)
    var network = AveragingNetwork(values: values, topology: .exponential, settings: .init(mixing: .pushSum))
    for _ in 0..<3 { network.step() }
    // Peer 5 leaves: it hands over at once and during its linger; its shares are half lost.
    let leaver = 5
    let lossy: (Int, Int, inout TestRandom) -> Int = { from, _, rng in from == leaver && Double.random(in: 0..<1, using: &rng) < 0.5 ? 0 : 1 }
    for lingerRound in 0..<8 {
        var inFlight: [(Int, Share)] = []
        let hood = network.topology.neighbourhood(of: leaver, inSorted: network.members, round: network.round)
        for item in network.peers[leaver].beginRound(network.round, out: hood.out, ownDegree: hood.outDegree, maxDegree: hood.maxDegree,
                                                     handOver: true) {
            for target in item.targets { inFlight.append((target, item.share)) }
        }
        if lingerRound == 0 { network.members.removeAll { $0 == leaver } }  // the others see "left" at once
        for (target, share) in inFlight where lossy(leaver, target, &network.rng) > 0 {
            network.peers[target].receive(from: leaver, share, now: 0)
        }
        network.step(fate: lossy)
    }
    #expect(network.peers[leaver].weight == 0)
    for _ in 0..<100 { network.step() }
    #expect(network.error(to: mean(values)) < 1e-12)
}

@Test("a push-sum joiner with no weight leaves the network's average as it was")
func pushSumJoinerAddsNoMass() {
    let values = randomValues(8, dimension: 4, seed: 23)
    var network = AveragingNetwork(values: values, topology: .exponential, settings: .init(mixing: .pushSum))
    for _ in 0..<5 { network.step() }
    network.peers.append(GossipAverager(initial: [9, 9, 9, 9], weight: 0, epoch: 99, settings: .init(mixing: .pushSum)))
    #expect(network.peers[8].estimate == nil)
    network.members.append(8)
    for _ in 0..<100 { network.step() }
    #expect(network.error(to: mean(values)) < 1e-12)
    #expect(network.estimates.count == 9)
}

@Test("push-sum keeps the average across a false failure: streams go on when the peer comes back")
func pushSumSurvivesFalseFailure() {
    let values = randomValues(8, dimension: 4, seed: 29)
    var network = AveragingNetwork(values: values, topology: .exponential, settings: .init(mixing: .pushSum))
    for _ in 0..<3 { network.step() }
    // Everyone but peer 2 drops peer 6 from its view for a few rounds; peer 6 still runs.
    let everyone = network.members
    for i in everyone where i != 6 { network.peers[i].forget(6) }
    for _ in 0..<12 {
        // Peer 6 still sends on its own view; the others route around it.
        network.members = everyone.filter { $0 != 6 }
        network.step()
        network.members = everyone
        let hood = network.topology.neighbourhood(of: 6, inSorted: everyone, round: network.round)
        for item in network.peers[6].beginRound(network.round, out: hood.out, ownDegree: hood.outDegree, maxDegree: hood.maxDegree) {
            for target in item.targets { network.peers[target].receive(from: 6, item.share, now: 0) }
        }
    }
    network.members = everyone
    for _ in 0..<200 { network.step() }
    #expect(network.error(to: mean(values)) < 1e-12)
}

@Test("shares with NaN, the wrong length or the wrong mode are refused and change nothing")
func badSharesRejected() {
    var a = GossipAverager<String>(initial: [1, 2], settings: .init(mixing: .pushSum))
    let before = (a.value, a.weight)
    #expect(a.receive(from: "b", Share(round: 1, degree: 1, stream: StreamID(epoch: 1, counter: 1), sequence: 1, weight: 0.5,
                                       values: [.nan, 0]), now: 0) == .nonFinite)
    #expect(a.receive(from: "b", Share(round: 1, degree: 1, stream: StreamID(epoch: 1, counter: 1), sequence: 1, weight: .infinity,
                                       values: [0, 0]), now: 0) == .nonFinite)
    #expect(a.receive(from: "b", Share(round: 1, degree: 1, stream: StreamID(epoch: 1, counter: 1), sequence: 1, weight: 0.5,
                                       values: [0]), now: 0) == .wrongDimension)
    #expect(a.receive(from: "b", Share(round: 1, degree: 1, values: [0, 0]), now: 0) == .wrongMode)
    #expect(a.receive(from: "b", Share(round: 1, degree: 0, stream: StreamID(epoch: 1, counter: 1), sequence: 1, weight: 0.5,
                                       values: [0, 0]), now: 0) == .badDegree)
    #expect(a.value == before.0 && a.weight == before.1)
    #expect(a.rejections == [.nonFinite: 2, .wrongDimension: 1, .wrongMode: 1, .badDegree: 1])
}

@Test("push-sum applies each share once: duplicates, overtaken shares, old and closed streams change nothing")
func pushSumStreamRules() {
    var a = GossipAverager<String>(initial: [0], settings: .init(mixing: .pushSum, streamIdleTimeout: 10))
    func share(_ counter: UInt32, _ sequence: UInt64, _ total: Double) -> Share {
        Share(round: sequence, degree: 1, stream: StreamID(epoch: 5, counter: counter), sequence: sequence, weight: total, values: [total])
    }
    #expect(a.receive(from: "b", share(1, 2, 1.0), now: 0) == nil)
    #expect(a.value == [1] && a.weight == 2)
    #expect(a.receive(from: "b", share(1, 2, 1.0), now: 0) == .duplicate)  // the same share twice
    #expect(a.receive(from: "b", share(1, 1, 0.5), now: 0) == .duplicate)  // overtaken by the later one
    #expect(a.receive(from: "b", share(1, 4, 0.75), now: 0) == .negativeWeight)  // running sums never shrink
    #expect(a.receive(from: "b", share(1, 3, 1.5), now: 0) == nil)  // adds the difference, 0.5
    #expect(a.value == [1.5] && a.weight == 2.5)
    #expect(a.receive(from: "b", share(2, 1, 0.25), now: 1) == nil)  // a later stream starts from zero
    #expect(a.value == [1.75] && a.weight == 2.75)
    #expect(a.receive(from: "b", share(1, 9, 3.0), now: 1) == .closedStream)  // the replaced stream is over
    a.housekeeping(now: 20)  // silent for longer than the idle timeout: closed
    #expect(a.receive(from: "b", share(2, 2, 0.5), now: 20) == .closedStream)
    #expect(a.value == [1.75] && a.weight == 2.75)
}

@Test("plain mixing uses only the round's contributions; a missing or late one leaves its weight with self")
func plainRoundRule() {
    var a = GossipAverager<String>(initial: [0], settings: .init())
    #expect(a.receive(from: "b", Share(round: 7, degree: 2, values: [3]), now: 0) == nil)
    #expect(a.receive(from: "c", Share(round: 8, degree: 2, values: [6]), now: 0) == nil)  // early: kept for round 8
    let report = a.mix(round: 7, in: [("b", 2), ("c", 2)], ownDegree: 2, maxDegree: 2)
    #expect(report.weights == ["b": 1.0 / 3])
    #expect(abs(report.selfWeight - 2.0 / 3) < 1e-15)
    #expect(a.value == [1])
    #expect(a.receive(from: "b", Share(round: 7, degree: 2, values: [30]), now: 0) == .late)
    let next = a.mix(round: 8, in: [("b", 2), ("c", 2)], ownDegree: 2, maxDegree: 2)
    #expect(next.weights == ["c": 1.0 / 3])
    #expect(abs(a.value[0] - (2.0 / 3 * 1 + 2)) < 1e-15)
}

@Test("training's change is added to the value with the weight the estimate had, keeping shares that arrived meanwhile")
func localUpdate() {
    var a = GossipAverager<String>(initial: [1, 1], weight: 0.5, settings: .init(mixing: .pushSum))
    #expect(a.estimate == [1, 1])
    a.applyLocalUpdate(from: [1, 1], to: [3, 0], weight: 0.5)
    #expect(a.estimate == [3, 0])
    var plain = GossipAverager<String>(initial: [1, 1], settings: .init())
    plain.applyLocalUpdate(from: [1, 1], to: [2, 1], weight: 1)
    #expect(plain.estimate == [2, 1])
}

@Test("averaging settings report bad values by name")
func settingsProblems() {
    #expect(AveragingSettings(closingRounds: -1).problems().first?.hasPrefix("closingRounds") == true)
    #expect(AveragingSettings(streamIdleTimeout: 0).problems().first?.hasPrefix("streamIdleTimeout") == true)
    #expect(AveragingSettings().problems().isEmpty)
    #expect(AveragingSettings(mixing: .pushSum).sendsFloat64 && !AveragingSettings().sendsFloat64)
}

@Test("push-sum gives no new mass to a neighbour it has not heard from for the silence, nor to one held back, but keeps its stream going")
func pushSumHoldsMassFromSilentNeighbours() {
    var a = GossipAverager<String>(initial: [4], settings: .init(mixing: .pushSum))
    let out: [(node: String, degree: Int)] = [("b", 2), ("c", 2)]
    // Round 1: both new, both get a third.
    var sent = a.beginRound(1, out: out, ownDegree: 2, maxDegree: 2, now: 0, silence: 0.3)
    let third: Double = 1.0 / 3
    #expect(sent.map(\.share.weight) == [third, third])
    a.receive(from: "b", Share(round: 1, degree: 2, stream: StreamID(epoch: 1, counter: 1), sequence: 1, weight: 0, values: [0]), now: 0.05)
    // 0.5 s later c has said nothing since its stream opened: it gets nothing new, b a third.
    let before: Double = a.weight
    let total: Double = 1.0 / 3 + (1.0 / 3) * before
    sent = a.beginRound(6, out: out, ownDegree: 2, maxDegree: 2, now: 0.5, held: [], silence: 1.0)
    #expect(sent.allSatisfy { abs($0.share.weight - total) < 1e-15 })  // within the silence: both
    sent = a.beginRound(7, out: out, ownDegree: 2, maxDegree: 2, now: 0.6, held: ["b"], silence: 0.3)
    #expect(sent.count == 2)  // both streams still go out…
    #expect(abs(sent[0].share.weight - total) < 1e-15)  // …b held back: no new mass
    #expect(abs(sent[1].share.weight - total) < 1e-15)  // c silent for 0.6 s: no new mass
    #expect(a.lastReport?.selfWeight == 1)
}

@Test("push-sum: a stream that stopped carrying mass sends its final sums for the closing rounds, then every closingResendRounds until the idle timeout, then closes")
func pushSumClosingStreamsResend() {
    var a = GossipAverager<String>(initial: [4], settings: .init(mixing: .pushSum, closingRounds: 2, streamIdleTimeout: 5))
    let first = a.beginRound(10, out: [("b", 1)], ownDegree: 1, maxDegree: 1, now: 0)  // b's last round as an out-neighbour
    var resends: [UInt64] = []
    for round in UInt64(11)...80 {  // 0.1 s rounds without b
        let sent = a.beginRound(round, out: [], ownDegree: 0, maxDegree: 1, now: Double(round - 10) * 0.1)
        for item in sent where item.targets == ["b"] {
            resends.append(round)
            #expect(item.share.weight == first[0].share.weight && item.share.values == first[0].share.values)
        }
    }
    // Two closing rounds, then once every 10 rounds: a share whose every send was lost (all the
    // datagrams of a model's object must arrive) is still delivered later, until the stream closes 5 s
    // after it last carried mass.
    #expect(resends == [11, 12, 20, 30, 40, 50, 60], "\(resends)")
}

@Test("self-centred clipping: a poisoned contribution moves a peer by at most its weight times the radius; honest ones pass untouched; a lone one is clipped against the last full round")
func clippingBoundsAPoisonedNeighbour() {
    let settings = AveragingSettings(weights: .uniform, clipFactor: 1.5)  // as a training peer resolves the default
    var a = GossipAverager<String>(initial: [0, 0], settings: settings)
    let hood: [(node: String, degree: Int)] = [("b", 3), ("c", 3), ("d", 3)]
    // Round 1: two honest neighbours at distance 1 and 2, an insider at 10^30.
    _ = a.receive(from: "b", Share(round: 1, degree: 3, values: [1, 0]), now: 0)
    _ = a.receive(from: "c", Share(round: 1, degree: 3, values: [0, 2]), now: 0)
    _ = a.receive(from: "d", Share(round: 1, degree: 3, values: [1e30, 1e30]), now: 0)
    let report = a.mix(round: 1, in: hood, ownDegree: 3, maxDegree: 3)
    let w = report.weights["d"]!
    // Radius 1.5 × the lower median (2) = 3: the insider moved the value by w·3 at most.
    let honest = [w * 1, w * 2]  // what b and c contribute: w·(y − x)
    let moved = ((a.value[0] - honest[0]) * (a.value[0] - honest[0]) + (a.value[1] - honest[1]) * (a.value[1] - honest[1])).squareRoot()
    #expect(abs(moved - w * 3) < 1e-9, "pulled \(moved) by the insider, bound \(w * 3)")
    #expect(a.rejections == [.clipped: 1], "only the insider's contribution is clipped")
    // Round 2: the insider alone; it is clipped against round 1's reference (2), not its own distance.
    let before = a.value
    _ = a.receive(from: "d", Share(round: 2, degree: 3, values: [1e30, 1e30]), now: 0)
    _ = a.mix(round: 2, in: hood, ownDegree: 3, maxDegree: 3)
    let step = ((a.value[0] - before[0]) * (a.value[0] - before[0]) + (a.value[1] - before[1]) * (a.value[1] - before[1])).squareRoot()
    #expect(step <= w * 3 + 1e-9 && a.rejections[.clipped] == 2)
    // Off: the same insider takes the value to its 10^30 at once.
    var off = GossipAverager<String>(initial: [0, 0], settings: AveragingSettings(weights: .uniform, clipFactor: 0))
    _ = off.receive(from: "d", Share(round: 1, degree: 3, values: [1e30, 1e30]), now: 0)
    _ = off.mix(round: 1, in: hood, ownDegree: 3, maxDegree: 3)
    #expect(off.value[0] > 1e28 && off.rejections.isEmpty)
}

@Test("before any round of two, a lone contribution is held back; with a single neighbour it is clipped against this peer's own training path")
func loneContributionBeforeAnyReference() {
    let settings = AveragingSettings(weights: .uniform, clipFactor: 1.5)
    func step(_ a: inout GossipAverager<String>, hood: [(node: String, degree: Int)], round: UInt64) -> Double {
        let before = a.value
        _ = a.receive(from: "d", Share(round: round, degree: hood.count, values: [1e30, 1e30]), now: 0)
        _ = a.mix(round: round, in: hood, ownDegree: hood.count, maxDegree: 3)
        return ((a.value[0] - before[0]) * (a.value[0] - before[0]) + (a.value[1] - before[1]) * (a.value[1] - before[1])).squareRoot()
    }
    // Three neighbours, only the insider heard: held back (a second contribution will come).
    var many = GossipAverager<String>(initial: [0, 0], settings: settings)
    many.applyLocalUpdate(from: [0, 0], to: [3, 4], weight: 1)
    #expect(step(&many, hood: [("b", 3), ("c", 3), ("d", 3)], round: 1) == 0 && many.rejections[.clipped] == 1)
    // A single neighbour, nothing trained yet: held back too.
    var single = GossipAverager<String>(initial: [0, 0], settings: settings)
    #expect(step(&single, hood: [("d", 1)], round: 1) == 0)
    // Trained along a path of length 7 (3, then 4 at a right angle; 5 from the start): the
    // insider moves it by w·1.5·7 at most.
    single.applyLocalUpdate(from: [0, 0], to: [3, 0], weight: 1)
    single.applyLocalUpdate(from: [3, 0], to: [3, 4], weight: 1)
    let w = 0.5  // uniform weights, degree 1: 1/(1+1)
    let moved = step(&single, hood: [("d", 1)], round: 2)
    #expect(abs(moved - w * 1.5 * 7) < 1e-9, "moved \(moved)")
    #expect(single.rejections[.clipped] == 2)
    // An adopted model is a new start: the path counts from there.
    single.reset(to: [1, 1], weight: 1)
    #expect(step(&single, hood: [("d", 1)], round: 3) == 0)
}
