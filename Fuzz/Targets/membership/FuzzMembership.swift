import ChorusCrypto
@_spi(Simulation) import ChorusMembership
import ChorusWire
import FuzzSupport

/// libFuzzer target `membership`: `MembershipMessage.decode` (with `Claim.read` for every claim)
/// and what a `MembershipInstance` does with the messages it decodes.
///
/// The input is records (u16 length ‖ bytes, `Fuzz.records`), each an operation byte then a
/// message payload as it arrives on the membership channel. Operation byte: bits 0–1 pick the
/// sender (Alice and Bob, members; Dave, a stranger; Carol, the receiver herself), bits 2–4
/// advance the clock by that many × 0.25 s, bit 5 calls `tick` after the message. The receiver
/// Carol knows Alice and Bob, and trusts a network authority (revocations). Keys are in the simulated crypto mode (a stand-in signature is a
/// 64-bit digest the fuzzer can learn from comparisons), so claims the fuzzer changes can still
/// verify and reach the state rules; the decoder is the same in both modes.
///
/// Checked: a message that decodes is the one encoding of what it decoded to (`encoded()` gives
/// the input back); every message Carol sends decodes to itself, and every one that travels in a
/// single datagram (all but syncs) fits `maxMessageBytes`, which the datagram layer enforces
/// with a precondition.

private let epoch: UInt64 = 1_800_000_000
private let unixTimeAtZero = 1_800_000_000.0
private func key(_ byte: UInt8) -> SigningKey { try! SigningKey(seed: [UInt8](repeating: byte, count: 32), mode: .simulated) }
private let alice = key(0x0a), bob = key(0x0b), carol = key(0x0c), dave = key(0x0d), authority = key(0xa0)
private let senders = [alice, bob, dave, carol]
private let addresses = ["10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.4:7000", "10.0.0.3:7000"]
private let settings = MembershipSettings.fast

private let template: MembershipInstance = {
    var m = MembershipInstance(key: carol, address: addresses[3], incarnation: epoch << 16, settings: settings, now: 0,
                               unixTimeAtZero: unixTimeAtZero, verifier: ClaimVerifier(mode: .simulated), authority: authority.peerID)
    m.preload([
        Claim.make(.alive, subject: alice.peerID, incarnation: (epoch - 10) << 16, address: addresses[0], key: alice),
        Claim.make(.alive, subject: bob.peerID, incarnation: (epoch - 20) << 16, address: addresses[1], key: bob),
    ], now: 0)
    return m
}()

private func checkSent(_ directives: [MembershipDirective]) {
    for case let .send(message, _, _) in directives {
        let bytes = message.encoded()
        Fuzz.check(MembershipMessage.decode(bytes) == message, "a message sent does not decode to itself: \(message)")
        if !message.isBulk {
            Fuzz.check(bytes.count <= settings.maxMessageBytes,
                       "a single-datagram message of \(bytes.count) bytes, over maxMessageBytes (\(settings.maxMessageBytes))")
        }
    }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzMembership(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let records = Fuzz.records(UnsafeRawBufferPointer(start: data, count: size))
    var carolNow = template
    var rng = FuzzRandom(seed: 1)
    var now = 0.0
    for record in records {
        guard let op = record.first else { continue }
        let payload = Array(record.dropFirst())
        let who = Int(op & 3)
        now += Double((op >> 2) & 7) * 0.25
        if let message = MembershipMessage.decode(payload) {
            Fuzz.check(message.encoded() == payload, "decoded \(message) but it encodes to other bytes")
            checkSent(carolNow.receive(message, from: senders[who].peerID, address: addresses[who], now: now, rng: &rng))
        }
        if op & 0x20 != 0 {
            checkSent(carolNow.tick(now: now, rng: &rng))
        }
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    Fuzz.writeSeedsIfAsked {
        let aliveA = Claim.make(.alive, subject: alice.peerID, incarnation: (epoch - 10) << 16 + 1, address: addresses[0], key: alice)
        let aliveB = Claim.make(.alive, subject: bob.peerID, incarnation: (epoch - 20) << 16, address: addresses[1], key: bob)
        let aliveD = Claim.make(.alive, subject: dave.peerID, incarnation: (epoch - 5) << 16, address: addresses[2], key: dave)
        let suspectC = Claim.make(.suspect, subject: carol.peerID, incarnation: epoch << 16, key: alice)
        let suspectB = Claim.make(.suspect, subject: bob.peerID, incarnation: (epoch - 20) << 16, key: alice)
        let failedB = Claim.make(.failed, subject: bob.peerID, incarnation: (epoch - 20) << 16, key: alice)
        let leftA = Claim.make(.left, subject: alice.peerID, incarnation: (epoch - 10) << 16 + 1, key: alice)
        let revokedB = Claim.make(.revoked, subject: bob.peerID, incarnation: 0, key: authority)
        func record(_ op: UInt8, _ message: MembershipMessage) -> [UInt8] { Fuzz.joinRecords([[op] + message.encoded()]) }
        let ping = MembershipMessage.ping(sequence: 7, claims: [aliveA])
        return [
            ("ping", record(0, ping)),
            ("ping-no-claims", record(0, .ping(sequence: 1, claims: []))),
            ("ack", record(1, .ack(sequence: 3, claims: [aliveB]))),
            ("ping-request", record(0, .pingRequest(sequence: 9, target: bob.peerID, address: addresses[1], claims: [aliveA]))),
            ("ping-request-stranger", record(0, .pingRequest(sequence: 9, target: dave.peerID, address: addresses[2], claims: [aliveD]))),
            ("nack", record(1, .nack(sequence: 4, claims: []))),
            ("gossip", record(0, .gossip(claims: [aliveA, aliveB, aliveD]))),
            ("sync-request", record(0, .sync(isResponse: false, claims: [aliveA, aliveB, aliveD]))),
            ("sync-response", record(1, .sync(isResponse: true, claims: [aliveA, aliveB, suspectB]))),
            ("digest", record(0, .digest(0x0123_4567_89ab_cdef, claims: []))),
            ("suspect-me", record(0, .gossip(claims: [suspectC]))),
            ("suspect-then-fail", record(0, .gossip(claims: [suspectB])) + record(0x3c, .gossip(claims: [failedB])) + record(0x3c, ping)),
            ("left", record(0, .gossip(claims: [leftA]))),
            ("revoked-then-alive", record(0, .gossip(claims: [revokedB])) + record(0x21, .gossip(claims: [aliveB]))),
            ("stranger", record(2, .ping(sequence: 1, claims: [aliveD]))),
            ("ticks", record(0x3c, ping) + record(0x3c, ping) + record(0x3d, .ack(sequence: 1, claims: []))),
        ]
    } valid: { input in
        input.withUnsafeBytes { Fuzz.records($0) }.allSatisfy { MembershipMessage.decode(Array($0.dropFirst())) != nil }
    }
    return 0
}
