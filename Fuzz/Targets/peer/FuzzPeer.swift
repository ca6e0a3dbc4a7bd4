import ChorusAveraging
@_spi(Simulation) import ChorusCore
import ChorusCrypto
import ChorusLearning
import ChorusMembership
@_spi(Simulation) import ChorusWire
import FuzzSupport

/// libFuzzer target `peer`: a whole `PeerInstance` receive path (datagram layer, reassembly,
/// membership, averaging, model handover) with the fuzzer's bytes as the datagrams it receives.
///
/// Carol (the receiver) knows Alice, a member (preloaded: sessions and membership as a network in
/// steady state has them); Tom is a stranger. Keys are in the simulated crypto mode, as the
/// simulator runs thousands of peers: tags and signatures are 64-bit digests, so the fuzzer can
/// learn them from comparisons inside claims, and re-signing costs nothing.
///
/// The input: one byte choosing Carol's phase (bit 0: joining, waiting for the network's model;
/// otherwise training), then records (u16 length ‖ bytes, `Fuzz.records`), each an operation byte
/// and a whole datagram (or none: the clock only). Operation byte: bits 0–2 advance the clock by
/// that many × 50 ms, bit 3 runs Carol's due timers after the datagram (a learning job she asks for comes back at once,
/// untrained). Session keys are on (the default): a paired datagram (kind byte with 0x80) whose
/// short id is Alice's or Tom's is re-tagged with that peer's pair keys with Carol; any other
/// datagram whose header names Alice, Tom or Carol as sender is re-signed with that identity
/// (signed kinds) and resealed with the network key, so each gets past the tag and the signature
/// to everything behind them.
///
/// Checked: nothing Carol sends is larger than the datagram size she is configured with.

private let unixTimeAtZero = 1_800_000_000.0
private let network = try! NetworkKey(bytes: Fuzz.networkKeyBytes, mode: .simulated)
private func key(_ byte: UInt8) -> SigningKey { try! SigningKey(seed: [UInt8](repeating: byte, count: 32), mode: .simulated) }
private let alice = key(0x0a), carol = key(0x0c), tom = key(0x0e)
private let identities = [alice, carol, tom]
private let tomID = tom.peerID.bytes
private let address = ["alice": "10.0.0.1:7000", "carol": "10.0.0.3:7000", "tom": "10.0.0.5:7000"]

private let data: SharedData = {
    let all = try! DataSource.synthetic(count: 240, features: 64, classes: 10).load(seed: 1)
    return try! SharedData(all, testFraction: 0.2, seed: 1)
}()

private func settings(joining: Bool) -> PeerSettings {
    var s = PeerSettings()
    s.membership = .fast
    s.fetchModel = joining
    return s
}

private func makePeer(_ identity: SigningKey, at addr: String, epoch: UInt64, shard: Int, joining: Bool = false) -> PeerInstance {
    var learning = LearningSettings(model: .softmax)
    learning.seed = UInt64(shard + 1)
    let learner = try! Learner(shard: try! data.shard(shard, of: 3, scheme: .iid, seed: 1), test: data.test, settings: learning)
    return PeerInstance(identity: identity, keyring: NetworkKeyring([network]), epoch: epoch, address: addr,
                        settings: settings(joining: joining), learner: learner, now: 0, unixTimeAtZero: unixTimeAtZero,
                        seed: UInt64(shard + 1))
}

private func makeTom() -> PeerInstance { makePeer(tom, at: address["tom"]!, epoch: 1_005, shard: 2) }

/// Carol and Alice, each preloaded with the other (a network in steady state) and started.
private func pair(carolJoining: Bool) -> (carol: PeerInstance, alice: PeerInstance) {
    var c = makePeer(carol, at: address["carol"]!, epoch: 1_003, shard: 0, joining: carolJoining)
    var a = makePeer(alice, at: address["alice"]!, epoch: 1_001, shard: 1)
    let claims = [c.aliveClaim, a.aliveClaim]
    let bootKeys = [c.id: c.wire.bootPublicKey!, a.id: a.wire.bootPublicKey!]
    c.preload(claims, now: 0, bootKeys: bootKeys)
    a.preload(claims, now: 0, bootKeys: bootKeys)
    _ = c.start(seeds: [], knownPeers: [], now: 0)
    _ = a.start(seeds: [], knownPeers: [], now: 0)
    return (c, a)
}

private let templates = [pair(carolJoining: false).carol, pair(carolJoining: true).carol]

/// The pair keys of Alice's and Tom's boots with Carol's, by short id (the boot keys come from
/// each peer's seed, so every template and the seeds' run have the same ones).
private let pairCiphers: [UInt64: PairCipher] = {
    let boots = [(alice.peerID, pair(carolJoining: false).alice.wire.bootPublicKey!), (tom.peerID, makeTom().wire.bootPublicKey!)]
    return Dictionary(uniqueKeysWithValues: boots.map { ($0.0.leadingWord, templates[0].wire.pairCipher(for: $0.0, bootKey: $0.1)!) })
}()

/// Carol's directives: sizes checked, learning jobs handed back at once (untrained: the fuzzer is
/// after the protocol, not the arithmetic), anything else dropped.
private func handle(_ directives: [PeerDirective], _ peer: inout PeerInstance, now: Double) {
    let limit = peer.settings.wire.maxDatagramSize
    for directive in directives {
        switch directive {
        case let .send(datagrams, _, _, _):
            for d in datagrams { Fuzz.check(d.count <= limit, "sent a datagram of \(d.count) bytes, over \(limit)") }
        case var .learn(job):
            (job.steps, job.evaluate) = (0, false)
            handle(peer.learningFinished(job.run(), now: now), &peer, now: now)
        case .saveCheckpoint, .event:
            break
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzPeer(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    _ = run(UnsafeRawBufferPointer(start: data, count: size))
    return 0
}

/// Carol after the input (nil for an empty one).
private func run(_ input: UnsafeRawBufferPointer) -> PeerInstance? {
    guard let phase = input.first else { return nil }
    var peer = templates[Int(phase & 1)]
    var now = 0.0
    for record in Fuzz.records(UnsafeRawBufferPointer(rebasing: input.dropFirst())) {
        guard let op = record.first else { continue }
        now += Double(op & 7) * 0.05
        var bytes = Array(record.dropFirst())
        if !bytes.isEmpty {  // an operation byte alone only moves the clock
            let paired = bytes.count >= PairedDatagram.overhead && bytes[1] & PairedDatagram.flag != 0
            let fromTom: Bool
            if paired {
                let shortID = bytes.withUnsafeBytes { UInt64(bigEndian: $0.loadUnaligned(fromByteOffset: 2, as: UInt64.self)) }
                if let cipher = pairCiphers[shortID] { Fuzz.resealPaired(&bytes, cipher: cipher) }
                fromTom = shortID == tom.peerID.leadingWord
            } else {
                Fuzz.resignAndReseal(&bytes, identities: identities, key: network)
                fromTom = bytes.count >= Fuzz.headerByteCount && bytes[6..<38].elementsEqual(tomID)
            }
            handle(peer.receive(bytes, from: address[fromTom ? "tom" : "alice"]!, now: now), &peer, now: now)
        }
        if op & 8 != 0 {
            var ticks = 0
            while peer.nextDeadline <= now && ticks < 4 {
                handle(peer.tick(now: now), &peer, now: now)
                ticks += 1
            }
        }
    }
    return peer
}

// MARK: Seeds

/// What Alice (and, joining through Carol, Tom) send Carol in the first seconds of a run with
/// both training as usual: every record with the time since the one before.
private func traffic(carolJoining: Bool, seconds: Double) -> [(time: Double, from: String, datagram: [UInt8])] {
    let (c, a) = pair(carolJoining: carolJoining)
    let t = makeTom()
    var peers = ["carol": c, "alice": a, "tom": t]
    var log: [(Double, String, [UInt8])] = []
    var now = 0.0
    func run(_ directives: [PeerDirective], by name: String) {
        for directive in directives {
            switch directive {
            case let .send(datagrams, to, _, _):
                guard let target = address.first(where: { $0.value == to })?.key else { continue }
                for d in datagrams {
                    if target == "carol" { log.append((now, name, d)) }
                    run(peers[target]!.receive(d, from: address[name]!, now: now), by: target)
                }
            case let .learn(job):
                run(peers[name]!.learningFinished(job.run(), now: now), by: name)
            default:
                break
            }
        }
    }
    run(peers["tom"]!.start(seeds: [address["carol"]!], knownPeers: [], now: 0), by: "tom")
    while now < seconds {
        let (name, deadline) = peers.map { ($0.key, $0.value.nextDeadline) }.min { $0.1 < $1.1 }!
        guard deadline <= seconds else { break }
        now = max(now, deadline)
        run(peers[name]!.tick(now: now), by: name)
    }
    return log
}

private func records(_ log: ArraySlice<(time: Double, from: String, datagram: [UInt8])>, tick: Bool = true) -> [UInt8] {
    var last = log.first?.time ?? 0
    var out: [[UInt8]] = []
    for entry in log {
        var gap = entry.time - last
        last = entry.time
        repeat {  // gaps over 0.35 s as empty records
            let steps = UInt8(min(7, (gap / 0.05).rounded(.down)))
            gap -= Double(steps) * 0.05
            if gap >= 0.05 { out.append([steps | (tick ? 8 : 0)]) }
            else { out.append([steps | (tick ? 8 : 0)] + entry.datagram); break }
        } while true
    }
    return Fuzz.joinRecords(out)
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    Fuzz.writeSeedsIfAsked {
        var seeds: [(name: String, bytes: [UInt8])] = []
        for joining in [false, true] {
            let log = traffic(carolJoining: joining, seconds: 3)
            let phase: [UInt8] = [joining ? 1 : 0]
            let name = joining ? "joining" : "training"
            let fromAlice = log.filter { $0.from == "alice" }
            let fromTom = log.filter { $0.from == "tom" }
            seeds.append(("\(name)-tom-joins", phase + records(fromTom.prefix(24)[...])))
            // Alice's traffic in windows of 16 datagrams (a parameters object is 3).
            for (i, start) in stride(from: 0, to: min(fromAlice.count, 64), by: 16).enumerated() {
                seeds.append(("\(name)-alice-\(i)", phase + records(fromAlice[start..<min(fromAlice.count, start + 16)])))
            }
            // Each kind of datagram once, alone.
            var seen = Set<String>()
            for entry in fromAlice {
                let d = entry.datagram
                let paired = d[1] & PairedDatagram.flag != 0
                let body = paired ? PairedDatagram.headerByteCount : Fuzz.headerByteCount
                let named = switch d[1] & ~PairedDatagram.flag {
                case 2: "message-channel-\(d[body])"
                case 3: "manifest-channel-\(d[body + 8])"
                case 4: "chunk"
                default: "hello"
                }
                let kind = named + (paired ? "-paired" : "")
                guard seen.insert(kind).inserted else { continue }
                seeds.append(("\(name)-single-\(kind)", phase + Fuzz.joinRecords([[8] + entry.datagram])))
            }
        }
        return seeds
    } valid: { input in
        // Every datagram of a seed gets in: tags, signatures, sessions and epochs all hold.
        let datagrams = input.withUnsafeBytes { Fuzz.records(UnsafeRawBufferPointer(rebasing: $0.dropFirst())) }.filter { $0.count > 1 }.count
        return input.withUnsafeBytes { run($0) }.map { $0.wire.acceptedDatagrams == datagrams && $0.wire.totalRejected == 0 } ?? false
    }
    return 0
}
