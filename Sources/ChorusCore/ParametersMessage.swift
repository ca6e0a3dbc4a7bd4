import ChorusAveraging
import ChorusWire

/// The parameters object (channels 1 and 5), version 2 (docs/protocol.md):
///
///     version u8 = 2 ‖ flags u8 ‖ round u64 ‖ step u64 ‖ degree u16
///     [flags bit 0, push-sum: stream epoch u64 ‖ stream counter u32 ‖ sequence u64 ‖ weight f64]
///     ‖ count u32 ‖ count × (float32, or float64 with flags bit 1), little-endian
///
/// `round` is the sender's gossip round (aligned to the wall clock), `degree` its degree in the
/// topology (for Metropolis–Hastings weights). With push-sum the values and the weight are running
/// totals of what the sender ever sent on that stream.
public struct ParametersMessage: Equatable, Sendable {
    public static let version: UInt8 = 2
    static let pushSumFlag: UInt8 = 1
    static let float64Flag: UInt8 = 2

    public var round: UInt64
    public var step: UInt64
    public var degree: Int
    public var stream: StreamID?
    public var sequence: UInt64
    public var weight: Double
    public var values: [Double]
    /// Whether the values travel as float64 (always with push-sum).
    public var float64: Bool

    public init(round: UInt64, step: UInt64, degree: Int, stream: StreamID? = nil, sequence: UInt64 = 0, weight: Double = 1,
                values: [Double], float64: Bool) {
        self.round = round
        self.step = step
        self.degree = degree
        self.stream = stream
        self.sequence = sequence
        self.weight = weight
        self.values = values
        self.float64 = float64 || stream != nil
    }

    /// A model handover or a plain share of float32 parameters.
    public init(round: UInt64, step: UInt64, degree: Int, parameters: [Float]) {
        self.init(round: round, step: step, degree: degree, values: parameters.map(Double.init), float64: false)
    }

    public init(share: Share, step: UInt64, float64: Bool) {
        self.init(round: share.round, step: step, degree: share.degree, stream: share.stream, sequence: share.sequence,
                  weight: share.weight, values: share.values, float64: float64)
    }

    public var share: Share { Share(round: round, degree: degree, stream: stream, sequence: sequence, weight: weight, values: values) }

    /// The values as float32 (a model to adopt).
    public var parameters: [Float] { values.map(Float.init) }

    public func encoded() -> [UInt8] {
        let width = float64 ? 8 : 4
        var w = ByteWriter(capacity: 20 + (stream == nil ? 0 : 28) + 4 + values.count * width)
        w.u8(Self.version)
        w.u8((stream == nil ? 0 : Self.pushSumFlag) | (float64 ? Self.float64Flag : 0))
        w.u64(round)
        w.u64(step)
        w.u16(UInt16(clamping: degree))
        if let stream {
            w.u64(stream.epoch)
            w.u32(stream.counter)
            w.u64(sequence)
            w.u64(weight.bitPattern)
        }
        w.u32(UInt32(values.count))
        if float64 {
            values.withUnsafeBytes { w.raw($0) }
        } else {
            values.map(Float.init).withUnsafeBytes { w.raw($0) }
        }
        return w.bytes
    }

    /// Strict: known version and flags, exact length. NaN and infinities are left to the
    /// averaging layer to reject and count.
    public static func decode(_ bytes: [UInt8]) -> ParametersMessage? {
        var r = ByteReader(bytes)
        guard let version = try? r.u8(), version == Self.version, let flags = try? r.u8(), flags & ~3 == 0,
              let round = try? r.u64(), let step = try? r.u64(), let degree = try? r.u16()
        else { return nil }
        var stream: StreamID?
        var sequence: UInt64 = 0
        var weight = 1.0
        if flags & pushSumFlag != 0 {
            guard flags & float64Flag != 0, let epoch = try? r.u64(), let counter = try? r.u32(), let seq = try? r.u64(),
                  let bits = try? r.u64() else { return nil }
            stream = StreamID(epoch: epoch, counter: counter)
            sequence = seq
            weight = Double(bitPattern: bits)
        }
        let float64 = flags & float64Flag != 0
        let width = float64 ? 8 : 4
        guard let count = try? r.u32(), Int(count) * width == r.remaining, let raw = try? r.slice(Int(count) * width) else { return nil }
        let values: [Double]
        if float64 {
            values = [Double](unsafeUninitializedCapacity: Int(count)) { out, initialized in
                raw.withUnsafeBytes { UnsafeMutableRawBufferPointer(out).copyMemory(from: $0) }
                initialized = Int(count)
            }
        } else {
            // Straight from the bytes to doubles, one pass: every peer decodes one per neighbour per round.
            values = [Double](unsafeUninitializedCapacity: Int(count)) { out, initialized in
                raw.withUnsafeBytes { bytes in
                    for i in 0..<Int(count) { out[i] = Double(bytes.loadUnaligned(fromByteOffset: i * 4, as: Float.self)) }
                }
                initialized = Int(count)
            }
        }
        return ParametersMessage(round: round, step: step, degree: Int(degree), stream: stream, sequence: sequence, weight: weight,
                                 values: values, float64: float64)
    }
}
