import ChorusAveraging
import ChorusCore
import ChorusCrypto
import Foundation
import Testing
import ChorusRuns
@testable import ChorusSimulation

/// Averaging through whole simulated peers (datagram layer, membership, rounds on the clock):
/// what the theory predicts, measured on the code that runs on real machines.
@Suite("averaging, simulated")
struct AveragingSimulationTests {
    static func averageOptions(peers: Int, duration: Double, topology: Topology = .exponential, mixing: MixingMode = .plain,
                               weights: WeightRule = .metropolisHastings, loss: Double = 0, seed: UInt64 = 1) -> SimulationOptions {
        var options = SimulationOptions()
        options.peers = peers
        options.duration = duration
        options.seed = seed
        options.crypto = .simulated
        options.task = .average
        options.sampleInterval = 0.1
        options.link.loss = loss
        options.settings.topology = topology
        options.settings.averaging.mixing = mixing
        options.settings.averaging.weights = weights
        return options
    }

    static func run(_ options: SimulationOptions) throws -> PeerSimulation {
        let simulation = try PeerSimulation(options: options)
        simulation.run()
        return simulation
    }

    /// Per-round contraction of consensus_max between two sample times (one sample per round).
    static func contraction(_ samples: [RunOutput.Sample], from a: Int, to b: Int) -> Double {
        pow(samples[b].consensusMax! / samples[a].consensusMax!, 1 / Double(b - a))
    }

    @Test("each round mixes the same round's values: consensus contracts by σ₂ (0.5 for the 16-peer exponential graph), not the 0.68 of a one-round-late mix")
    func sameRoundMixing() throws {
        let simulation = try Self.run(Self.averageOptions(peers: 16, duration: 2.5))
        let rate = Self.contraction(simulation.samples, from: 5, to: 20)
        #expect(abs(rate - 0.5) < 0.025, "measured \(rate) per round")
    }

    @Test("the complete graph gives every peer the exact average after its first round")
    func completeGraph() throws {
        let simulation = try Self.run(Self.averageOptions(peers: 12, duration: 0.5, topology: .complete))
        // The first round starts at 0.025 s and mixes at 0.075 s: the sample at 0.1 s follows it.
        #expect(simulation.samples[0].averageError! > 0.1)
        #expect(simulation.samples[1].averageError! < 1e-12)
    }

    @Test("one-peer exponential over 16 peers gives the exact average in 4 rounds")
    func onePeerExponential() throws {
        let simulation = try Self.run(Self.averageOptions(peers: 16, duration: 0.7, topology: .onePeerExponential, weights: .uniform))
        #expect(simulation.samples[3].averageError! > 1e-3)  // after 3 rounds
        #expect(simulation.samples[4].averageError! < 1e-12)  // after 4
    }

    @Test("push-sum keeps the true average under 20 % loss; plain mixing drifts from it")
    func pushSumUnderLoss() throws {
        let push = try Self.run(Self.averageOptions(peers: 16, duration: 40, mixing: .pushSum, loss: 0.2))
        let plain = try Self.run(Self.averageOptions(peers: 16, duration: 40, mixing: .plain, loss: 0.2))
        #expect(push.violation == nil && plain.violation == nil)
        #expect(push.summary(wallSeconds: 0).final.averageError! < 1e-9)
        #expect(plain.samples.last!.consensusMax! < 1e-9)
        #expect(plain.summary(wallSeconds: 0).final.averageError! > 1e-3)
    }

    /// Starting by joining (hellos, handshakes, views growing: each peer's neighbourhood changes
    /// many times in its first second) under loss: mass given to a neighbour that could not take
    /// it yet, on a stream that then stopped, was lost. Half of seeds 1–40 ended 0.2–7 % from the
    /// true average before peers gave mass only to neighbours they had heard from, and a stopped
    /// stream's final sums were sent again until it closed.
    @Test("push-sum keeps the true average when the peers start by joining through each other at 10 % loss", arguments: [5, 7, 32] as [UInt64])
    func pushSumJoiningUnderLoss(seed: UInt64) throws {
        var options = Self.averageOptions(peers: 16, duration: 15, mixing: .pushSum, loss: 0.1, seed: seed)
        options.bootstrap = .join
        options.sampleInterval = 5
        let simulation = try Self.run(options)
        #expect(simulation.violation == nil)
        let error = try #require(simulation.summary(wallSeconds: 0).final.averageError)
        #expect(error < 1e-9, "seed \(seed): \(error) from the true average")
    }

    @Test("one peer losing 30 % of what it receives: push-sum still finds the true average")
    func pushSumWithOneLossyPeer() throws {
        var options = Self.averageOptions(peers: 16, duration: 40, mixing: .pushSum)
        options.schedule = Schedule(actions: [.init(time: 0, kind: .loss, target: .names(["p3"]), probability: 0.3, direction: .in)])
        let simulation = try Self.run(options)
        #expect(simulation.events.first?.action == "loss:0.3:in" && simulation.events.first?.peer == "p3")
        #expect(simulation.totals.datagramsSent > 0)
        #expect(simulation.summary(wallSeconds: 0).final.averageError! < 1e-9)
    }

    @Test("loss on one link and on the parameters channel only reaches only that traffic")
    func targetedLoss() throws {
        var options = Self.averageOptions(peers: 8, duration: 10, mixing: .pushSum)
        options.schedule = Schedule(actions: [.init(time: 0, kind: .loss, probability: 0.9, link: ["p1", "p2"])])
        let linked = try Self.run(options)
        #expect(linked.events.first?.peer == "p1-p2")
        #expect(linked.samples.reduce(0) { $0 + $1.datagramsDropped } > 0)
        #expect(linked.violation == nil)
        var channelOnly = Self.averageOptions(peers: 8, duration: 10, mixing: .pushSum, loss: 0.9)
        channelOnly.link.lossChannels = [ChorusChannel.parameters]
        let simulation = try Self.run(channelOnly)
        // Membership loses nothing: no suspicion at all, although 90 % of the parameters are lost.
        #expect(simulation.totals.membership["suspicionsRaised"] == 0)
        #expect(simulation.samples.reduce(0) { $0 + $1.datagramsDropped } > 0)
    }

    @Test("a quarter leaving while the peers still disagree: push-sum hands their mass over and keeps the average; plain does not")
    func leavesHandOverMass() throws {
        func run(_ mixing: MixingMode) throws -> Double {
            var options = Self.averageOptions(peers: 32, duration: 15, mixing: mixing)
            options.sampleInterval = 1
            options.schedule = Schedule(actions: [.init(time: 0.55, kind: .leave, target: .fraction(0.25)),
                                                  .init(time: 1.05, kind: .join, target: .fraction(0.25))])
            let simulation = try Self.run(options)
            #expect(simulation.violation == nil)
            #expect(simulation.samples.last!.consensusMax! < 1e-12)
            return simulation.summary(wallSeconds: 0).final.averageError!
        }
        #expect(try run(.pushSum) < 1e-6)
        #expect(try run(.plain) > 1e-4)
    }

    @Test("a crash costs push-sum a bounded part of the mass, not all of it: the survivors still agree")
    func crashesCostBoundedMass() throws {
        var options = Self.averageOptions(peers: 32, duration: 15, mixing: .pushSum)
        options.sampleInterval = 1
        options.schedule = Schedule(actions: [.init(time: 0.55, kind: .crash, target: .fraction(0.25))])
        let simulation = try Self.run(options)
        #expect(simulation.samples.last!.consensusMax! < 1e-12)
        // The crashed quarter's values (and three rounds of shares to them) are gone, no more.
        #expect(simulation.summary(wallSeconds: 0).final.averageError! < 0.1)
    }
}
