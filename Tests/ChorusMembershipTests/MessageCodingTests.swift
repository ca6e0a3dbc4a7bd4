import ChorusCrypto
import Testing
@_spi(Simulation) @testable import ChorusMembership
@testable import ChorusSimulation

@Suite("Message encoding")
struct MessageCodingTests {
    static let claims: [Claim] = [
        Fixture.alive(2),
        Fixture.alive(3, incarnation: 7, address: ""),
        Fixture.alive(4, incarnation: .max >> 20, address: "[2001:db8::1]:7000 – hôte"),
        Fixture.suspect(2, by: 3),
        Fixture.failed(4, by: 2, incarnation: 0),
        Fixture.left(3, incarnation: 12),
    ]

    static let target = Fixture.id(5)

    /// Every message case, with no claims, one claim and all kinds of claims.
    static let messages: [MembershipMessage] = [[], [claims[0]], claims].flatMap { c -> [MembershipMessage] in
        [
            .ping(sequence: 0, claims: c), .ping(sequence: .max, claims: c),
            .ack(sequence: 42, claims: c),
            .pingRequest(sequence: 7, target: target, address: "10.0.0.5:7000", claims: c),
            .pingRequest(sequence: 8, target: target, address: "", claims: c),
            .nack(sequence: 9, claims: c),
            .gossip(claims: c),
            .sync(isResponse: false, claims: c), .sync(isResponse: true, claims: c),
            .digest(0, claims: c), .digest(0xDEAD_BEEF_0123_4567, claims: c),
        ]
    }

    @Test("every message round-trips through encode and decode", arguments: messages)
    func roundTrip(message: MembershipMessage) throws {
        let bytes = message.encoded()
        let decoded = try #require(MembershipMessage.decode(bytes))
        #expect(decoded == message)
        #expect(decoded.claims.allSatisfy { $0.signatureIsValid() })
        #expect(decoded.encoded() == bytes)
        #expect(message.isBulk == message.kind.hasPrefix("sync"), "only syncs travel as bulk objects")
    }

    @Test("decode rejects trailing bytes and every truncation", arguments: messages)
    func strictness(message: MembershipMessage) {
        let bytes = message.encoded()
        for extra: [UInt8] in [[0], [0xFF], [0, 0, 0]] {
            #expect(MembershipMessage.decode(bytes + extra) == nil)
        }
        for length in 0..<bytes.count {
            #expect(MembershipMessage.decode(Array(bytes.prefix(length))) == nil, "prefix of \(length) of \(bytes.count) bytes")
        }
    }

    @Test("decode rejects unknown message tags", arguments: [UInt8(0), 8, 9, 0x7F, 0xFF])
    func unknownTag(tag: UInt8) {
        for message in Self.messages.prefix(9) {
            var bytes = message.encoded()
            bytes[0] = tag
            #expect(MembershipMessage.decode(bytes) == nil)
        }
    }

    @Test("decode rejects unknown claim statuses")
    func unknownClaimStatus() {
        let bytes = MembershipMessage.gossip(claims: [Self.claims[0]]).encoded()
        for status: UInt8 in [0, 5, 0xFF] {
            var b = bytes
            b[3] = status  // tag u8, count u16, then the first claim's status
            #expect(MembershipMessage.decode(b) == nil)
        }
    }

    @Test("addresses longer than 255 bytes are refused on decode")
    func longAddresses() {
        let long = String(repeating: "a", count: Claim.maxAddressBytes + 1)
        #expect(MembershipMessage.decode(MembershipMessage.gossip(claims: [Fixture.alive(2, address: long)]).encoded()) == nil)
        #expect(MembershipMessage.decode(MembershipMessage.pingRequest(sequence: 1, target: Self.target, address: long, claims: []).encoded()) == nil)
        let longest = String(repeating: "a", count: Claim.maxAddressBytes)
        #expect(MembershipMessage.decode(MembershipMessage.gossip(claims: [Fixture.alive(2, address: longest)]).encoded()) != nil)
    }

    @Test("encodedSize and headerSize match the bytes actually written")
    func sizes() {
        for claim in Self.claims {
            #expect(MembershipMessage.gossip(claims: [claim]).encoded().count == 3 + claim.encodedSize)
        }
        for message in Self.messages {
            let claimBytes = message.claims.reduce(0) { $0 + $1.encodedSize }
            #expect(message.encoded().count == message.headerSize + claimBytes)
        }
    }

    @Test("every probe and gossip message fits maxMessageBytes, even with long addresses and a full queue")
    func probeMessagesFit() throws {
        var settings = Fixture.hand
        settings.maxMessageBytes = 400  // the smallest allowed
        let long = { (k: UInt8) in String(repeating: "h", count: 240) + ":\(k)" }
        let everyone = (2...20).map { UInt8($0) }
        var d = Driver(MembershipInstance(key: Fixture.key(1), address: long(1), incarnation: Fixture.base, settings: settings, now: 0,
                                          unixTimeAtZero: Fixture.unixTimeAtZero))
        d.instance.preload(everyone.prefix(8).map { Fixture.alive($0, address: long($0)) }, now: 0)
        // Queue plenty: new members with long addresses, accusations, departures.
        d.receive(.gossip(claims: everyone.dropFirst(8).map { Fixture.alive($0, address: long($0)) }), from: Fixture.id(2), at: 0.1)
        d.receive(.gossip(claims: [Fixture.suspect(3, by: 2), Fixture.suspect(4, by: 2), Fixture.left(5)]), from: Fixture.id(2), at: 0.2)
        #expect(d.instance.pendingClaims > 10)
        // A suspect target makes pings carry the accusation first; probes fail, so ping requests and their
        // long target addresses go out too; relays answer with nacks.
        d.run(until: 6)
        d.receive(.pingRequest(sequence: 99, target: Fixture.id(6), address: long(6), claims: []), from: Fixture.id(2), at: 6)
        d.run(until: 7)
        _ = d.receive(.ping(sequence: 1, claims: []), from: Fixture.id(7), at: 7)
        d.leave(at: 7.5)
        d.run(until: 9)
        let sent = d.log.compactMap { if case let .send(m, _, _) = $0.directive { m } else { nil } }
        #expect(Set(sent.map(\.kind)).isSuperset(of: ["ping", "ack", "pingRequest", "nack", "gossip"]))
        for message in sent where !message.isBulk {
            #expect(message.encoded().count <= settings.maxMessageBytes, "\(message.encoded().count) bytes")
        }
    }

    @Test("no oversized message in a busy simulation (loss, duplication, crashes, leaves, joins, a partition)")
    func noOversizedMessagesInSimulation() {
        let sim = MembershipSimulation(settings: .fast, network: NetworkModel(loss: 0.05, duplication: 0.05), seed: 11)
        sim.bootstrap(count: 20)
        let ids = sim.order
        sim.crash(ids[0], at: 2)
        sim.crash(ids[1], at: 2.5)
        sim.leave(ids[2], at: 3)
        for i in 0..<3 { sim.join(sim.addNode(), through: ids[3 + i], at: 3.5 + Double(i)) }
        sim.partition(Set(ids[4..<10]), Set(ids[10...]), at: 6)
        sim.heal(at: 10)
        sim.run(until: 16)
        #expect(sim.messagesDelivered > 1_000)
        #expect(sim.oversizedMessages == 0)
    }
}

extension MembershipMessage: CustomTestStringConvertible {
    var kind: String {
        switch self {
        case .ping: "ping"
        case .ack: "ack"
        case .pingRequest: "pingRequest"
        case .nack: "nack"
        case .gossip: "gossip"
        case let .sync(isResponse, _): isResponse ? "syncResponse" : "syncRequest"
        case .digest: "digest"
        }
    }

    public var testDescription: String { "\(kind) with \(claims.count) claims" }
}
