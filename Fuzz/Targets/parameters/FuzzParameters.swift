import ChorusAveraging
import ChorusCore
import FuzzSupport

/// libFuzzer target `parameters`: `ParametersMessage.decode` (the parameters and model objects,
/// channels 1 and 5) and the averaging that takes what it decodes.
///
/// The input is records (u16 length ‖ bytes, `Fuzz.records`), each an operation byte then a
/// parameters object as it completes reassembly. Operation byte: bits 0–1 pick the sender (one of
/// four neighbours), bit 2 mixes the message's round after it. Plain shares go to a plain averager
/// of 8 values with self-centred clipping on (as a training peer has it), push-sum shares to a
/// push-sum averager; both refuse what they must (wrong length, non-finite, stale, wrong mode).
///
/// Checked: a message without NaN that decodes is the one encoding of what it decoded to
/// (`encoded()` gives the input back; NaN payloads are not kept by float32 → float64 → float32);
/// after every plain mix the value is finite, since only finite shares are accepted and clipping
/// bounds what any of them can do.

private let dimension = 8
private let initial = (0..<dimension).map { Double($0) / 10 }
private let neighbours: [(node: Int, degree: Int)] = [(0, 4), (1, 4), (2, 3), (3, 5)]
private let plain = GossipAverager<Int>(initial: initial, epoch: 1,
                                        settings: AveragingSettings(clipFactor: AveragingSettings.defaultClipFactor))
private let pushSum = GossipAverager<Int>(initial: initial, epoch: 1, settings: AveragingSettings(mixing: .pushSum))

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzParameters(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let records = Fuzz.records(UnsafeRawBufferPointer(start: data, count: size))
    var plain = plain, pushSum = pushSum
    var now = 0.0
    for record in records {
        guard let op = record.first else { continue }
        let payload = Array(record.dropFirst())
        now += 0.1
        guard let message = ParametersMessage.decode(payload) else { continue }
        if !message.values.contains(where: \.isNaN) && !message.weight.isNaN {
            Fuzz.check(message.encoded() == payload, "decoded a message that encodes to other bytes")
        }
        _ = message.parameters  // what a joiner adopts
        let node = Int(op & 3)
        if message.stream == nil {
            plain.receive(from: node, message.share, now: now)
        } else {
            pushSum.receive(from: node, message.share, now: now)
        }
        if op & 4 != 0 {
            _ = plain.mix(round: message.round, in: neighbours, ownDegree: 4, maxDegree: 5, measuringDistance: true)
            Fuzz.check(plain.value.allSatisfy(\.isFinite), "a plain mix of finite shares left a non-finite value")
            _ = pushSum.beginRound(message.round, out: [(1, 4)], ownDegree: 4, maxDegree: 5, now: now)
            pushSum.housekeeping(now: now)
        }
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    Fuzz.writeSeedsIfAsked {
        let values = (0..<dimension).map { Double($0) / 8 - 0.4 }
        func record(_ op: UInt8, _ message: ParametersMessage) -> [UInt8] { Fuzz.joinRecords([[op] + message.encoded()]) }
        let float32 = ParametersMessage(round: 10, step: 500, degree: 4, parameters: values.map(Float.init))
        let float64 = ParametersMessage(round: 10, step: 500, degree: 4, values: values, float64: true)
        func push(_ sequence: UInt64, _ weight: Double) -> ParametersMessage {
            ParametersMessage(round: 10 + sequence, step: 0, degree: 4, stream: StreamID(epoch: 7, counter: 1), sequence: sequence,
                              weight: weight, values: values.map { $0 * weight }, float64: true)
        }
        let mixed = (0..<4).map { UInt8($0) }.map { node in
            record(node | (node == 3 ? 4 : 0), ParametersMessage(round: 10, step: 1, degree: 4, parameters: values.map { Float($0) + Float(node) }))
        }.reduce([], +)
        return [
            ("float32", record(4, float32)),
            ("float64", record(4, float64)),
            ("model-handover", record(0, ParametersMessage(round: 0, step: 12_345, degree: 1, parameters: values.map(Float.init)))),
            ("wrong-dimension", record(4, ParametersMessage(round: 10, step: 1, degree: 4, parameters: [1, 2, 3]))),
            ("empty", record(0, ParametersMessage(round: 1, step: 1, degree: 1, parameters: []))),
            ("four-neighbours-then-mix", mixed),
            ("push-sum-stream", record(1, push(1, 0.2)) + record(1, push(2, 0.3)) + record(5, push(3, 0.45))),
            ("push-sum-duplicate", record(1, push(2, 0.3)) + record(1, push(2, 0.3)) + record(1, push(1, 0.2))),
            ("late", record(4, float32) + record(0, float32)),
        ]
    } valid: { input in
        input.withUnsafeBytes { Fuzz.records($0) }.allSatisfy { ParametersMessage.decode(Array($0.dropFirst())) != nil }
    }
    return 0
}
