import ChorusCore
import ChorusCrypto
import ChorusMembership
import ChorusWire
import Foundation
import Testing
@testable import ChorusPeer

/// Attacks by a member of the network (it holds the network key), on real processes.
@Suite("insiders against real peers", .serialized)
struct InsiderTests {
    /// The replay-window attack of issue 21: chunks are not signed, so an insider could tag one
    /// in another peer's name with a counter of 2^62, and the receiver's window for that sender
    /// moved past every genuine counter. One such chunk per ordered pair cut every link (1706
    /// contributions per 5 s to 0, 52 of 56 pairs failed, nothing recovered in 60 s).
    @Test("forged chunks with a counter of 2^62 in every peer's name, to every peer, cut no link")
    func replayWindowAttack() throws {
        let network = try LocalNetwork.forTests(peers: 4)
        defer { network.discard() }
        let peers = Array(network.members.indices)
        for index in peers { try network.start(index) }
        try network.waitUntilReady(peers)
        Thread.sleep(forTimeInterval: 3)
        let before = try peers.map { try AdminClient.status(at: network.members[$0].admin) }
        #expect(before.allSatisfy { $0.contributionsMixed > 0 }, "no averaging before the attack")

        let key = try KeyFiles.readNetworkKey(at: network.networkKeyPath)
        let socket = try UDPSender()
        for sender in peers {
            for receiver in peers where receiver != sender {
                let header = DatagramHeader(kind: .chunk, keyID: key.keyID, sender: network.members[sender].id,
                                            senderEpoch: before[sender].bootEpoch, recipientEpoch: before[receiver].bootEpoch,
                                            counter: 1 << 62)
                let chunk = ObjectChunk(objectID: UInt64.random(in: 1 ... .max), totalLength: 64, chunkSize: 32, index: 1,
                                        data: [UInt8](repeating: 0x5a, count: 32))
                let forged = DatagramCodec.seal(header: header, body: .chunk(chunk), identity: nil, key: key)
                try socket.send(forged, to: network.members[receiver].udp)
            }
        }
        // Long enough for every pair to mix several times, and for a cut link to be suspected.
        Thread.sleep(forTimeInterval: 6)
        let after = try peers.map { try AdminClient.status(at: network.members[$0].admin) }
        for index in peers {
            let mixedSince = after[index].contributionsMixed - before[index].contributionsMixed
            #expect(mixedSince >= 3 * (peers.count - 1), "peer \(index) mixed \(mixedSince) contributions after the attack")
            let alive = after[index].members.filter { $0.status == "alive" }.count
            #expect(alive == peers.count, "peer \(index) holds \(alive) of \(peers.count) alive: \(after[index].members.map(\.status))")
            #expect((after[index].rejections["tooOld"] ?? 0) == (before[index].rejections["tooOld"] ?? 0),
                    "genuine datagrams refused as too old at peer \(index)")
        }
    }

    /// The accusation attack of issue 21: a member sent 532 false `failed` claims about one peer
    /// in 20 s (each at the peer's current incarnation, so each took effect until refuted) and
    /// kept it not alive in 39 % of samples of the others' views. An accuser proved wrong about
    /// one member 3 times within 60 s is now ignored for 5 minutes.
    @Test("532 false failure accusations about one peer in 20 s: it stays alive in the others' views in at least 85 % of samples")
    func falseAccusationFlood() throws {
        let network = try LocalNetwork.forTests(peers: 4)
        defer { network.discard() }
        let peers = Array(network.members.indices)
        for index in peers { try network.start(index) }
        try network.waitUntilReady(peers)
        Thread.sleep(forTimeInterval: 2)
        let victim = 0, observers = Array(peers.dropFirst())
        let victimID = network.members[victim].id
        let insider = try ForeignMember(networkKeyFile: network.networkKeyPath)
        for index in observers { insider.know(network.members[index].id, at: network.members[index].udp) }

        var incarnation = try AdminClient.status(at: network.members[victim].admin).incarnation
        var sent = 0, samples = 0, notAlive = 0
        let started = Date()
        var lastRead = started, lastSample = started
        while Date().timeIntervalSince(started) < 20 {
            // 532 accusations in 20 s, spread over the observers.
            let due = min(532, Int(Date().timeIntervalSince(started) / 20 * 532) + 1)
            while sent < due {
                let claim = Claim.make(.failed, subject: victimID, incarnation: incarnation, key: insider.identity)
                let message = MembershipMessage.gossip(claims: [claim])
                insider.send(.message(channel: ChorusChannel.membership, payload: message.encoded()),
                             to: network.members[observers[sent % observers.count]].id)
                sent += 1
            }
            insider.pump(for: 0.01)
            if Date().timeIntervalSince(lastRead) >= 0.2, let status = try? AdminClient.status(at: network.members[victim].admin, timeout: 0.5) {
                incarnation = status.incarnation  // the refutation's incarnation: the next accusation names it
                lastRead = Date()
            }
            if Date().timeIntervalSince(lastSample) >= 0.5 {
                lastSample = Date()
                for index in observers {
                    guard let view = try? AdminClient.status(at: network.members[index].admin, timeout: 0.5) else { continue }
                    samples += 1
                    if view.members.first(where: { $0.id == victimID.description })?.status != "alive" { notAlive += 1 }
                }
            }
        }
        let share = Double(notAlive) / Double(max(1, samples))
        print("accusation flood: \(sent) accusations; the victim not alive in \(notAlive) of \(samples) samples")
        #expect(sent >= 532)
        #expect(samples >= 60, "too few samples: \(samples)")
        // The rule lets each observer be proved wrong falseAccusationLimit (3) times before it
        // distrusts the accuser, and each time the victim is not alive there until its
        // refutation arrives (within a second): at most 3 × 2 samples at 0.5 s per observer of
        // about 39, 15 %. Measured 0–13 of 117 (2026-12-05); 39 % without the rule.
        #expect(share <= 0.15, "the victim was not alive in \(notAlive) of \(samples) samples (\(Int(share * 100)) %)")
        let distrusted = try observers.map { try AdminClient.status(at: network.members[$0].admin).rejections["claims.distrustedAccuser"] ?? 0 }
        #expect(distrusted.allSatisfy { $0 > 0 }, "accusations ignored by each observer: \(distrusted)")
    }

    /// The Sybil flood of issue 21: 100 000 hellos, each from a fresh identity, brought back 45 MB
    /// of syncs for 14 MB, kept the memory, and got the flooded peer suspected by the others.
    /// Sent from 64 sockets: from one, the per-source budget alone would cut it to a few dozen
    /// sessions, and the total budget and the sessions' release would go untested.
    @Test("100 000 hellos from fresh identities: less back than was sent, the budget cuts them, the sessions back to normal within a minute of the flood's end")
    func sybilFlood() throws {
        let network = try LocalNetwork.forTests(peers: 4)
        defer { network.discard() }
        let peers = Array(network.members.indices)
        for index in peers { try network.start(index) }
        try network.waitUntilReady(peers)
        Thread.sleep(forTimeInterval: 2)
        let victim = 0, observers = Array(peers.dropFirst())
        let target = network.members[victim]
        let key = try KeyFiles.readNetworkKey(at: network.networkKeyPath)
        let before = try AdminClient.status(at: target.admin)
        let rssBefore = try Self.residentBytes(target.admin)

        let sockets = try (0..<64).map { _ in try UDPSender() }
        var sentBytes = 0, backBytes = 0, samples = 0, suspected = 0
        var lastSample = Date.distantPast
        let started = Date()
        for n in 0..<100_000 {
            let sybil = SigningKey.generate()
            let header = DatagramHeader(kind: .hello, keyID: key.keyID, sender: sybil.peerID, senderEpoch: UInt64(n + 1),
                                        recipientEpoch: 0, counter: 1)
            let hello = DatagramCodec.seal(header: header, body: .hello, identity: sybil, key: key)
            let socket = sockets[n % sockets.count]
            try socket.send(hello, to: target.udp)
            sentBytes += hello.count
            while let back = socket.receive(waiting: false) { backBytes += back.count }
            if Date().timeIntervalSince(lastSample) >= 0.5 {
                lastSample = Date()
                for index in observers {
                    guard let view = try? AdminClient.status(at: network.members[index].admin, timeout: 0.5) else { continue }
                    samples += 1
                    if view.members.first(where: { $0.id == target.id.description })?.status != "alive" { suspected += 1 }
                }
            }
        }
        let floodSeconds = Date().timeIntervalSince(started)
        let during = try AdminClient.status(at: target.admin)
        let rssPeak = try Self.residentBytes(target.admin)
        print("sybil flood: \(sentBytes) bytes in \(Int(floodSeconds)) s; \(backBytes) bytes back; sessions \(before.sessions ?? -1) → \(during.sessions ?? -1); RSS \(rssBefore >> 20) → \(rssPeak >> 20) MB; victim not alive in \(suspected) of \(samples) samples")
        #expect(backBytes <= sentBytes, "the flood brought back \(backBytes) bytes for \(sentBytes)")
        // Whether the others suspect the flooded peer meanwhile depends on how fast this machine
        // drains its socket (a debug build on a busy machine drops genuine datagrams with the
        // flood): measured with a release build in docs/security.md, not asserted here.
        #expect((during.rejections["sourceRateLimited"] ?? 0) > 0 && (during.rejections["sessionsRateLimited"] ?? 0) > 0,
                "each source's share and the total both cut the flood: \(during.rejections)")

        // The strangers' sessions go once idle for idleSessionTimeout (30 s); the memory with them.
        var after = during
        let floodEnded = Date()
        let deadline = floodEnded.addingTimeInterval(60)
        while (after.sessions ?? .max) > (before.sessions ?? 0) + 64 && Date() < deadline {
            Thread.sleep(forTimeInterval: 1)
            after = try AdminClient.status(at: target.admin)
        }
        let rssAfter = try Self.residentBytes(target.admin)
        print("sybil flood: sessions \(after.sessions ?? -1) \(Int(Date().timeIntervalSince(floodEnded))) s after the flood; RSS \(rssAfter >> 20) MB")
        #expect((after.sessions ?? .max) <= (before.sessions ?? 0) + 64, "sessions still \(after.sessions ?? -1)")
        #expect(after.members.allSatisfy { $0.status == "alive" } && after.members.count == peers.count)
    }

    /// The third-party claim of issue 21: an insider that announced itself at a third party's
    /// address (8 datagrams, 2.1 KB) made the members send that party 662 KB in 20 s. A peer
    /// that advertises an address it does not receive at now gets everything where it proved it
    /// receives (where its datagrams come from), and the advertised address gets hellos at most.
    @Test("a peer that advertises a third party's address is sent everything where it receives; the third party gets hellos only")
    func claimNamingAThirdParty() throws {
        let network = try LocalNetwork.forTests(peers: 4)
        defer { network.discard() }
        let peers = Array(network.members.indices), insider = 3
        let victim = try UDPSender(boundToLoopback: true)
        let config = try String(contentsOfFile: network.members[insider].configPath, encoding: .utf8)
        try config.replacingOccurrences(of: "[peer]\n", with: "[peer]\nadvertise = \"127.0.0.1:\(victim.port)\"\n")
            .write(toFile: network.members[insider].configPath, atomically: true, encoding: .utf8)
        for index in peers { try network.start(index) }
        try network.waitUntilReady(peers)
        var victimBytes = 0, victimDatagrams = 0, paired = 0
        let until = Date().addingTimeInterval(20)
        while Date() < until {
            while let bytes = victim.receive() {
                victimBytes += bytes.count
                victimDatagrams += 1
                if bytes[1] & PairedDatagram.flag != 0 { paired += 1 }
            }
        }
        print("third-party claim: \(victimBytes) bytes in \(victimDatagrams) datagrams (\(paired) paired) to the advertised address in 20 s")
        #expect(paired == 0, "\(paired) paired datagrams went to the third party")
        #expect(victimBytes <= 3 * 20 * 200, "\(victimBytes) bytes to the third party in 20 s")
        let view = try AdminClient.status(at: network.members[insider].admin)
        #expect(view.contributionsMixed > 0, "the peer that advertised another address takes part")
        for index in peers where index != insider {
            let status = try AdminClient.status(at: network.members[index].admin)
            #expect(status.members.first { $0.id == network.members[insider].id.description }?.status == "alive", "in peer \(index)'s view")
        }
    }

    /// The peer's resident memory, from its `/metrics`.
    static func residentBytes(_ admin: HostPort) throws -> Int {
        let text = String(decoding: try AdminClient.request("GET", "/metrics", at: admin).body, as: UTF8.self)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("process_resident_memory_bytes") })
        return Int(Double(line.split(separator: " ").last ?? "") ?? 0)
    }
}

/// A member that is no peer process: its own identity and datagram layer over a UDP socket,
/// for attacks only a member (holding the network key) can make.
private final class ForeignMember {
    let identity = SigningKey.generate()
    private var wire: WireEndpoint
    private let socket: UDPSender
    private var addresses: [PeerID: HostPort] = [:]

    init(networkKeyFile: String) throws {
        let key = try KeyFiles.readNetworkKey(at: networkKeyFile)
        wire = WireEndpoint(identity: identity, keyring: NetworkKeyring([key]), epoch: UInt64(Date().timeIntervalSince1970))
        socket = try UDPSender()
    }

    func know(_ peer: PeerID, at address: HostPort) { addresses[peer] = address }

    private var now: Double { Date().timeIntervalSince1970 }

    /// Sealed to `peer`; the first goes out as a hello, the rest when it answers (`pump`).
    func send(_ item: Outgoing, to peer: PeerID) {
        guard let address = addresses[peer] else { return }
        for datagram in wire.send(item, to: peer, now: now) { try? socket.send(datagram, to: address) }
    }

    /// Reads what comes back for `seconds`, answering hellos and sending what waited for them.
    func pump(for seconds: Double) {
        let until = Date().addingTimeInterval(seconds)
        while Date() < until, let bytes = socket.receive() {
            let reception = wire.receive(bytes, now: now)
            guard let sender = reception.sender, let address = addresses[sender] else { continue }
            for datagram in reception.replies + reception.flushed { try? socket.send(datagram, to: address) }
        }
    }
}

/// A bare UDP socket for datagrams built by hand.
private final class UDPSender {
    private let fd: Int32

    /// The port it receives at (bound to 127.0.0.1 when asked; 0 before an unbound one sends).
    private(set) var port = 0

    init(boundToLoopback: Bool = false) throws {
        fd = Glibc.socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { throw StartupError("socket(): errno \(errno)") }
        guard boundToLoopback else { return }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw StartupError("bind(127.0.0.1:0): errno \(errno)") }
        port = Int(UInt16(bigEndian: address.sin_port))
    }

    deinit { close(fd) }

    /// One datagram, or nil when none arrives within 5 ms (`waiting: false`: only one already there).
    func receive(waiting: Bool = true) -> [UInt8]? {
        var timeout = timeval(tv_sec: 0, tv_usec: 5_000)
        if waiting { setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size)) }
        var buffer = [UInt8](repeating: 0, count: 65_536)
        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, waiting ? 0 : Int32(MSG_DONTWAIT)) }
        return n > 0 ? Array(buffer[..<n]) : nil
    }

    func send(_ bytes: [UInt8], to address: HostPort) throws {
        var destination = sockaddr_in()
        destination.sin_family = sa_family_t(AF_INET)
        destination.sin_port = UInt16(address.port).bigEndian
        guard inet_pton(AF_INET, address.host, &destination.sin_addr) == 1 else { throw StartupError("not an IPv4 address: \(address.host)") }
        let sent = bytes.withUnsafeBytes { buffer in
            withUnsafePointer(to: &destination) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, buffer.baseAddress, buffer.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
        }
        guard sent == bytes.count else { throw StartupError("sendto(): errno \(errno)") }
    }
}
