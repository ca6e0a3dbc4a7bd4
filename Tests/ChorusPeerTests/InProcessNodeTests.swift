import ChorusCore
import ChorusCrypto
import ChorusLearning
import ChorusMembership
import ChorusWire
import Foundation
import NIOCore
import Testing
@testable import ChorusPeer

/// The real shell (`PeerNode`: its timer, directives, learning-job hand-off, fault filter, status
/// and logs) in the test process, through the transport seam: nodes on one `EmbeddedEventLoop`
/// with a virtual clock, datagrams through an in-memory switch, real libsodium keys (from fixed
/// seeds). No socket, process or sleep: each run repeats exactly. The real-process tests
/// (ProcessTests, ShellTests, DatagramSizeTests, …) cover the socket and the process around it.
///
/// Synchronous on purpose: an `EmbeddedEventLoop` is used only from the thread that made it.
@Suite("the real shell in process")
struct InProcessNodeTests {
    @Test("two nodes say hello through the shell and each becomes a member of the other's view")
    func handshake() throws {
        let net = try InProcessNetwork()
        let a = try net.makePeer(), b = try net.makePeer()
        net.start(b)  // the first peer: no entry points
        net.start(a, knownPeers: [b])
        #expect(net.advance(until: { net.allAlive([a, b]) }, within: 5), "not members of each other after 5 s")
        print("in-process handshake: members of each other after \(net.now) virtual s, \(net.wires.datagrams.count) datagrams")
        #expect(net.now < 1)
        for (peer, other) in [(a, b), (b, a)] {
            let status = peer.status()
            #expect(status.members.contains { $0.id == other.id.description && $0.status == "alive" }, "\(status.members)")
            #expect(status.neighbours.map(\.id) == [other.id.description])
            #expect(status.datagramsRejected == 0, "\(status.rejections)")
            #expect(!status.isolated)
            #expect(peer.log.count("member alive") == 1)
            #expect(!net.wires.sent(from: peer.address).isEmpty)
        }
        // Every datagram went between the two, and the first was a's hello to b.
        #expect(net.wires.datagrams.allSatisfy { Set([$0.from, $0.to]) == Set([a.address, b.address]) })
        #expect(net.wires.datagrams.first?.from == a.address)
        #expect(net.wires.undeliverable == 0)
    }

    @Test("the same network run twice sends the same datagrams, of the same lengths, at the same virtual instants")
    func repeats() throws {
        func trace() throws -> [String] {
            let net = try InProcessNetwork()
            let peers = try (0..<3).map { _ in try net.makePeer() }
            net.start(peers[0])
            net.start(peers[1], knownPeers: [peers[0]])
            net.start(peers[2], seeds: [peers[0].address])
            net.advance(by: 5)
            return net.wires.datagrams.map { "\($0.at) \($0.from) → \($0.to): \($0.bytes.count) bytes" }
        }
        let first = try trace(), second = try trace()
        #expect(first.count > 1000)
        #expect(first == second, "first difference at datagram \(first.indices.first { $0 >= second.count || first[$0] != second[$0] } ?? first.count)")
    }

    @Test("a newcomer that knows only a seed's address joins a network of two, and all three see each other")
    func newcomerThroughSeed() throws {
        let net = try InProcessNetwork()
        let a = try net.makePeer(), b = try net.makePeer(), c = try net.makePeer()
        net.start(a)
        net.start(b, knownPeers: [a])
        #expect(net.advance(until: { net.allAlive([a, b]) }, within: 5))
        net.start(c, seeds: [a.address])
        #expect(net.advance(until: { net.allAlive([a, b, c]) }, within: 10), "c's view: \(c.status().members.map(\.status))")
        #expect(!c.status().isolated)
        #expect(c.instance.neighbours.count == 2)
        // c learned b from a, never from configuration: it reached b's address through the view.
        #expect(!net.wires.datagrams.filter { $0.from == c.address && $0.to == b.address }.isEmpty)
    }

    @Test("the timer fires at the instance's nextDeadline and not before, and hellos to a silent seed back off 1, 2, 4, 8, 8 s")
    func timerAtNextDeadline() throws {
        let net = try InProcessNetwork()
        let a = try net.makePeer()
        let seed = InProcessNetwork.address(99)  // nobody there
        net.start(a, seeds: [seed])
        var ticks = 0
        while net.now < 40 {
            ticks += 1
            let deadline = a.instance.nextDeadline
            #expect(deadline.isFinite && deadline >= net.now)
            if deadline - 1e-6 > net.now {
                net.advance(to: deadline - 1e-6)
                #expect(a.instance.nextDeadline == deadline, "ticked before \(deadline) s")
            }
            net.advance(to: deadline)
            guard a.instance.nextDeadline > deadline else {
                Issue.record("no tick at \(deadline) s")
                break
            }
        }
        #expect(ticks > 400)  // rounds, probes (of nobody), housekeeping
        let hellos = net.wires.sent(to: seed).map(\.at)
        let expected: [Double] = [0, 1, 3, 7, 15, 23, 31, 39]
        #expect(hellos.count == expected.count, "\(hellos)")
        for (at, want) in zip(hellos, expected) { #expect(abs(at - want) < 1e-6, "\(hellos)") }
        #expect(net.wires.undeliverable == expected.count)
        // Alone for 10 s: warned once (the next warning is due a minute later).
        #expect(a.log.count("alone: no answer from the entry points", atLeast: .warning) == 1)
        #expect(a.status().isolated)
    }

    @Test("a datagram under another network key is dropped, counted, warned about once and never answered")
    func unknownNetworkKey() throws {
        let net = try InProcessNetwork()
        let a = try net.makePeer()
        net.start(a)
        let stranger = InProcessNetwork.address(66), insider = InProcessNetwork.address(67)
        var foreign = WireEndpoint(identity: SigningKey.generate(), keyring: NetworkKeyring([NetworkKey.generate()]), epoch: 1)
        for _ in 0..<3 { net.wires.send([foreign.hello(now: net.now)], from: stranger, to: a.address) }
        net.advance(by: 1)
        let status = a.status()
        #expect(status.rejections["unknownNetwork"] == 3, "\(status.rejections)")
        #expect(status.datagramsRejected == 3)
        #expect(net.wires.sent(to: stranger).isEmpty, "answered a datagram under another key")
        #expect(a.log.count("datagrams under a network key this peer does not hold", atLeast: .warning) == 1)
        #expect(a.instance.membership.members.isEmpty)
        // The same hello under the network's key is answered: the silence above was the key's.
        var member = WireEndpoint(identity: SigningKey.generate(), keyring: NetworkKeyring([net.networkKey]), epoch: 1)
        net.wires.send([member.hello(now: net.now)], from: insider, to: a.address)
        net.advance(by: 1)
        #expect(!net.wires.sent(to: insider).isEmpty)
        #expect(a.status().datagramsRejected == 3)
    }

    @Test("garbage, short, oversized, tampered and replayed datagrams are each dropped and counted once, and the node carries on")
    func garbage() throws {
        let net = try InProcessNetwork()
        let a = try net.makePeer(), b = try net.makePeer()
        net.start(a)
        net.start(b, knownPeers: [a])
        #expect(net.advance(until: { net.allAlive([a, b]) }, within: 5))
        net.advance(by: 1)
        let before = a.status()
        // A paired datagram (session keys, the default: every kind is checked against the window).
        let genuine = try #require(net.wires.sent(from: b.address).last { $0.to == a.address && $0.bytes[1] & PairedDatagram.flag != 0 }).bytes
        var tampered = genuine
        tampered[13] ^= 0x01  // counter + 2^24 (associated data): fresh for the window, so the tag decides
        var rng = SystemRandomNumberGenerator()
        let noise = { (count: Int) in [0] + (1..<count).map { _ in UInt8.random(in: 0...255, using: &rng) } }  // version 0: lengths decide the reasons below
        let junk = InProcessNetwork.address(66)
        net.wires.send([[], [0x01], noise(20), noise(1200), noise(5000)], from: junk, to: a.address)
        net.wires.send([tampered, genuine], from: b.address, to: a.address)  // genuine: already received once
        net.advance(by: 0.01)
        let after = a.status()
        func added(_ reason: String) -> Int { (after.rejections[reason] ?? 0) - (before.rejections[reason] ?? 0) }
        #expect(after.datagramsRejected - before.datagramsRejected == 7, "\(before.rejections) → \(after.rejections)")
        #expect(added("tooShort") == 3)  // up to 20 bytes: shorter than any header and tag
        #expect(added("tooLong") == 1)
        #expect(added("badTag") == 1)
        #expect(added("replayed") == 1)
        #expect(net.wires.sent(to: junk).isEmpty)
        net.advance(by: 3)
        #expect(net.allAlive([a, b]))
        #expect(a.status().membershipCounts.suspicionsRaised == 0)
    }

    @Test("NaN parameters from a member are dropped and counted; the model stays finite and mixing goes on")
    func nanParameters() throws {
        let net = try InProcessNetwork()
        let a = try net.makePeer(), b = try net.makePeer()
        net.start(a)
        net.start(b, knownPeers: [a])
        #expect(net.advance(until: { net.allAlive([a, b]) }, within: 5))
        // A member that speaks the wire layer and membership just enough to be a neighbour.
        let rogue = RogueMember(network: net, at: InProcessNetwork.address(66))
        rogue.send(.message(channel: ChorusChannel.membership, payload: MembershipMessage.gossip(claims: [rogue.aliveClaim]).encoded()), to: a)
        #expect(net.advance(until: { a.instance.neighbours.contains(rogue.id) }, within: 2), "the rogue never became a's neighbour")
        let mixesBefore = a.status().mixes
        let nan = [Float](repeating: .nan, count: a.instance.learner.parameterCount)
        for i in 0..<20 {
            let round = UInt64(((InProcessNetwork.unixTimeAtZero + net.now) / a.instance.settings.gossipInterval).rounded(.down))
            let message = ParametersMessage(round: round, step: 0, degree: 2, parameters: nan)
            rogue.send(.object(PreparedObject(channel: ChorusChannel.parameters, bytes: message.encoded(), objectID: UInt64(i + 1))), to: a)
            net.advance(by: a.instance.settings.gossipInterval)
        }
        let status = a.status()
        #expect(status.rejections["parameters.nonFinite"] ?? 0 >= 15, "\(status.rejections)")
        #expect(a.parameters.allSatisfy { $0.isFinite })
        #expect(status.mixes >= mixesBefore + 15)
        #expect(a.instance.averager.lastHeard[rogue.id] == nil, "a NaN contribution was taken")
        #expect(a.instance.averager.lastHeard[b.id] != nil)
    }

    @Test("parameters are exchanged and mixed: three nodes starting from different random models agree")
    func mixing() throws {
        let net = try InProcessNetwork()
        let peers = try (0..<3).map { _ in try net.makePeer { $0.randomStart = true; $0.stepsPerRound = 0 } }
        let initial = peers.map(\.parameters)
        #expect(spread(initial) > 0.5)
        net.start(peers[0])
        net.start(peers[1], knownPeers: [peers[0]])
        net.start(peers[2], knownPeers: [peers[0]])
        net.advance(by: 10)
        for peer in peers {
            let status = peer.status()
            #expect(status.mixes > 50)
            #expect(status.contributionsMixed > 100)
            #expect(status.payloadBytesReceived["parameters"] ?? 0 > 0)
            #expect(status.neighbours.count == 2 && status.neighbours.allSatisfy { $0.weight > 0 }, "\(status.neighbours)")
            #expect(status.datagramsRejected == 0, "\(status.rejections)")
        }
        let final = peers.map(\.parameters)
        #expect(spread(final) < 1e-3, "still apart by \(spread(final))")
        // They met near the mean of their starts: averaging, not one model winning.
        let mean = (0..<initial[0].count).map { i in initial.map { Double($0[i]) }.reduce(0, +) / 3 }
        let offMean = zip(final[0], mean).map { abs(Double($0) - $1) }.max() ?? .infinity
        print("in-process mixing: spread \(spread(initial)) → \(spread(final)); largest distance from the mean of the starts \(offMean)")
        #expect(offMean < 0.1)
    }

    @Test("learning jobs go out through the worker seam and come back: three nodes train the digits past 85 %")
    func training() throws {
        let net = try InProcessNetwork()
        let peers = try (0..<3).map { _ in try net.makePeer() }
        net.start(peers[0])
        net.start(peers[1], knownPeers: [peers[0]])
        net.start(peers[2], knownPeers: [peers[0]])
        net.advance(by: 20)
        for peer in peers {
            let status = peer.status()
            print("in-process training: \(status.peerId.prefix(8)) step \(status.step), accuracy \(status.testAccuracy), \(peer.worker.jobs) jobs")
            #expect(peer.worker.jobs > 150)
            #expect(status.step > 750)
            #expect(status.testAccuracy > 0.85)
            #expect(status.trainLoss.isFinite)
            #expect(status.rejections["rounds.skipped"] == nil)
        }
    }

    @Test("a learning job that outlasts its round: the rounds it spans are skipped and counted, and its result still comes back")
    func slowTraining() throws {
        let net = try InProcessNetwork()
        let a = try net.makePeer(learningSeconds: 0.25), b = try net.makePeer()
        net.start(a)
        net.start(b, knownPeers: [a])
        net.advance(by: 5)
        let status = a.status()
        #expect(status.rejections["rounds.skipped"] ?? 0 >= 20, "\(status.rejections)")
        #expect(a.worker.jobs >= 12 && a.worker.jobs <= 20, "\(a.worker.jobs) jobs of 0.25 s in 5 s of 0.1 s rounds")
        #expect(status.stepsTrained >= 5 * (a.worker.jobs - 1), "\(status.stepsTrained) steps trained in \(a.worker.jobs) jobs")
        #expect(b.worker.jobs >= 45)
        #expect(net.allAlive([a, b]))
    }

    @Test("a graceful leave: the others see 'left', the callback runs once the linger is over, and stop hands back the model")
    func leave() throws {
        let net = try InProcessNetwork()
        let a = try net.makePeer(), b = try net.makePeer(), c = try net.makePeer()
        net.start(a)
        net.start(b, knownPeers: [a])
        net.start(c, knownPeers: [a])
        #expect(net.advance(until: { net.allAlive([a, b, c]) }, within: 5))
        net.advance(by: 1)
        let leftAt = net.now
        var doneAt: Double?
        a.node.leave { doneAt = net.now }
        #expect(net.advance(until: { doneAt != nil }, within: 3, step: 0.01))
        let linger = try #require(doneAt) - leftAt
        #expect(abs(linger - a.instance.settings.leaveLinger) < 0.05, "lingered \(linger) s")
        for other in [b, c] {
            #expect(other.instance.membership.status(of: a.id) == .left)
            #expect(other.log.count("member left") == 1)
        }
        #expect(a.status().phase == "leaving")
        let (checkpoint, _) = try #require(net.stop(a))
        #expect(checkpoint.steps == a.instance.learner.steps && checkpoint.steps > 0)
        #expect(checkpoint.parameters == a.parameters)
        net.advance(by: 2)
        #expect(net.allAlive([b, c]))
        #expect(b.instance.neighbours == [c.id])
    }

    @Test("faults set live cut a node off: the others declare it failed, and it is alive again once healed")
    func liveFaults() throws {
        let net = try InProcessNetwork()
        let a = try net.makePeer(), b = try net.makePeer(), c = try net.makePeer()
        net.start(a)
        net.start(b, knownPeers: [a])
        net.start(c, knownPeers: [a])
        #expect(net.advance(until: { net.allAlive([a, b, c]) }, within: 5))
        var cut = FaultSettings()
        cut.blocked = [b.id, c.id]
        a.node.setFaults(cut)
        let failed = net.advance(until: {
            [b, c].allSatisfy { $0.instance.membership.status(of: a.id) == .failed }
        }, within: 30)
        #expect(failed, "b: \(String(describing: b.instance.membership.status(of: a.id))), c: \(String(describing: c.instance.membership.status(of: a.id)))")
        print("in-process faults: a declared failed after \(net.now) virtual s")
        #expect(a.status().rejections["faults.injected"] ?? 0 > 0)
        #expect(net.allAlive([b, c]))
        a.node.setFaults(FaultSettings())
        #expect(net.advance(until: { net.allAlive([a, b, c]) }, within: 60), "not alive again within 60 s of healing")
        print("in-process faults: alive again \(net.now) virtual s after the start")
        #expect(a.log.count("faults changed") == 2)
    }
}

/// The largest difference between two models' parameters.
private func spread(_ models: [[Float]]) -> Double {
    var largest = 0.0
    for i in models.indices {
        for j in models.indices where j > i {
            for (x, y) in zip(models[i], models[j]) { largest = max(largest, Double(abs(x - y))) }
        }
    }
    return largest
}

/// A member with real keys that speaks just enough: the datagram layer (hellos, sessions) and
/// membership acks, so the nodes keep it alive; the test sends whatever else it likes.
private final class RogueMember {
    let identity = SigningKey.generate()
    let address: SocketAddress
    let aliveClaim: Claim
    private var wire: WireEndpoint
    /// Unowned: the network's switch holds this member (through its receive closure).
    private unowned let network: InProcessNetwork

    var id: PeerID { identity.peerID }

    init(network: InProcessNetwork, at address: SocketAddress) {
        self.network = network
        self.address = address
        let epoch = UInt64(InProcessNetwork.unixTimeAtZero)
        wire = WireEndpoint(identity: identity, keyring: NetworkKeyring([network.networkKey]), epoch: epoch)
        aliveClaim = Claim.make(.alive, subject: identity.peerID, incarnation: epoch << 16,
                                address: "\(address.ipAddress!):\(address.port!)", key: identity)
        _ = network.wires.attach(address) { bytes, source in self.receive(bytes, from: source) }
    }

    func send(_ item: Outgoing, to peer: TestPeer) {
        network.wires.send(wire.send(item, to: peer.id, now: network.now), from: address, to: peer.address)
    }

    private func receive(_ bytes: [UInt8], from source: SocketAddress) {
        let reception = wire.receive(bytes, now: network.now)
        network.wires.send(reception.replies + reception.flushed, from: address, to: source)
        for case let .message(from, channel, payload) in reception.deliveries where channel == ChorusChannel.membership {
            if case let .ping(sequence, _)? = MembershipMessage.decode(payload) {
                let ack = MembershipMessage.ack(sequence: sequence, claims: [])
                network.wires.send(wire.send(.message(channel: ChorusChannel.membership, payload: ack.encoded()), to: from, now: network.now),
                                   from: address, to: source)
            }
        }
    }
}
