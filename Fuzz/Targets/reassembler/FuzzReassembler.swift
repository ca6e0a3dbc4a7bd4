import ChorusCrypto
import ChorusWire
import FuzzSupport

/// libFuzzer target `reassembler`: a sequence of datagrams into one `Reassembler`, as
/// `WireEndpoint.receive` feeds it, with small budgets so that eviction, refusal and expiry
/// happen within a few inputs.
///
/// The input is records (u16 length ‖ bytes, `Fuzz.records`), each an operation byte then a whole
/// datagram in clear. The datagram is sealed with the fixed network key and opened by
/// `DatagramCodec.open`; a manifest or chunk goes to the reassembler under the sender its header
/// names. The operation byte: bits 0–2 advance the clock by that many × 0.75 s (objects time out
/// after 5 s), bit 3 expires old objects after the datagram, bit 4 drops the sender's objects
/// before it (a restart). Checked after every step: memory charged stays within the budgets and
/// is never negative; a completed object has its manifest's length and BLAKE2b-256; at the end,
/// expiring everything brings the charge back to zero.

private let settings = Reassembler.Settings(maxObjectBytes: 16 << 10, budgetBytes: 40 << 10, perSenderBudgetBytes: 20 << 10, timeout: 5)

private struct Key: Hashable {
    var sender: PeerID
    var objectID: UInt64
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzReassembler(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let records = Fuzz.records(UnsafeRawBufferPointer(start: data, count: size), limit: 160)
    var reassembler = Reassembler(settings: settings)
    var manifests: [Key: ObjectManifest] = [:]  // the last manifest opened of each object
    var now = 0.0
    for record in records {
        guard let op = record.first else { continue }
        now += Double(op & 7) * 0.75
        var bytes = Array(record.dropFirst())
        Fuzz.reseal(&bytes)
        guard case let .success(opened) = DatagramCodec.open(
            bytes, keyring: Fuzz.keyring, maxDatagramSize: DatagramCodec.maximumDatagramSize, maxObjectBytes: settings.maxObjectBytes)
        else { continue }
        let sender = opened.header.sender
        if op & 0x10 != 0 { reassembler.dropAll(from: sender) }
        let outcome: Reassembler.Outcome
        switch opened.body {
        case let .manifest(m):
            manifests[Key(sender: sender, objectID: m.objectID)] = m
            outcome = reassembler.add(manifest: m, from: sender, now: now)
        case let .chunk(c):
            outcome = reassembler.add(chunk: c, from: sender, now: now)
        case .hello, .helloWith, .message:
            continue
        }
        if case let .complete(object) = outcome {
            Fuzz.check(object.sender == sender, "completed object of another sender")
            // Some manifest of this sender's (the fuzzer may reuse a hash under other fields)
            // names exactly these bytes, their length and channel.
            let hash = CryptoMode.real.objectHash(object.bytes)
            Fuzz.check(manifests.contains { key, m in
                key.sender == sender && m.hash == hash && Int(m.totalLength) == object.bytes.count && m.channel == object.channel
            }, "completed object (\(object.bytes.count) bytes) matches no manifest opened")
        }
        if op & 0x08 != 0 { _ = reassembler.expire(now: now) }
        Fuzz.check(reassembler.bytesInUse >= 0, "negative charge \(reassembler.bytesInUse)")
        Fuzz.check(reassembler.bytesInUse <= settings.budgetBytes, "charge \(reassembler.bytesInUse) over the budget")
        Fuzz.check((reassembler.objectsInProgress == 0) == (reassembler.bytesInUse == 0),
                   "\(reassembler.objectsInProgress) objects charged \(reassembler.bytesInUse) bytes")
    }
    _ = reassembler.expire(now: now + settings.timeout + 1)
    Fuzz.check(reassembler.objectsInProgress == 0 && reassembler.bytesInUse == 0,
               "after expiring everything: \(reassembler.objectsInProgress) objects, \(reassembler.bytesInUse) bytes charged")
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    Fuzz.writeSeedsIfAsked {
        // 256-byte datagrams carry 67-byte chunks: objects of many chunks stay small inputs.
        var small = Fuzz.networkSealed
        small.maxDatagramSize = 256
        var (alice, bob, _) = Fuzz.connectedPair(settings: small)
        func send(_ object: PreparedObject, from a: inout WireEndpoint, to b: PeerID) -> [[UInt8]] {
            a.send(.object(object), to: b, now: 1)
        }
        // In clear: the target reseals every record.
        func record(_ op: UInt8, _ datagrams: [[UInt8]]) -> [UInt8] { Fuzz.joinRecords(datagrams.map { [op] + Fuzz.unseal($0) }) }
        let one = send(PreparedObject(channel: 1, bytes: Fuzz.pattern(40), objectID: 1), from: &alice, to: bob.localID)
        let empty = send(PreparedObject(channel: 1, bytes: [], objectID: 2), from: &alice, to: bob.localID)
        let nine = send(PreparedObject(channel: 3, bytes: Fuzz.pattern(600, seed: 3), objectID: 3), from: &alice, to: bob.localID)
        // 70 chunks: past the 64 the chunk set keeps inline.
        let seventy = send(PreparedObject(channel: 1, bytes: Fuzz.pattern(70 * 67 - 5, seed: 5), objectID: 4), from: &alice, to: bob.localID)
        let fromBob = send(PreparedObject(channel: 1, bytes: Fuzz.pattern(300, seed: 7), objectID: 3), from: &bob, to: alice.localID)
        return [
            ("one-chunk", record(0, one)),
            ("empty-object", record(0, empty)),
            ("nine-chunks", record(0, nine)),
            ("nine-chunks-reversed", record(0, nine.reversed())),
            ("nine-chunks-duplicated", record(0, nine + nine)),
            ("seventy-chunks", record(0, seventy)),
            ("two-senders-interleaved", Fuzz.joinRecords(zip(nine, fromBob).flatMap { [[0] + Fuzz.unseal($0), [0] + Fuzz.unseal($1)] })),
            ("timed-out", record(0, Array(nine.prefix(4))) + record(7, Array(nine.dropFirst(4)))),
            ("expired-then-resent", record(0x0f, Array(nine.prefix(4))) + record(0x0f, nine)),
            ("sender-restarted", record(0, Array(nine.prefix(4))) + record(0x10, nine)),
        ]
    } valid: { input in
        input.withUnsafeBytes { Fuzz.records($0, limit: 160) }.allSatisfy { record in
            var sealed = Array(record.dropFirst())
            Fuzz.reseal(&sealed)
            if case .success = DatagramCodec.open(sealed, keyring: Fuzz.keyring,
                                                  maxDatagramSize: DatagramCodec.maximumDatagramSize, maxObjectBytes: settings.maxObjectBytes) { return true }
            return false
        }
    }
    return 0
}
