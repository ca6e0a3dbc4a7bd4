import ChorusWire

/// The parameters object: version u8 = 1 ‖ step u64 ‖ degree u16 ‖ count u32 ‖ count × float32 (LE).
/// The degree is the number of neighbours the sender currently mixes with (for Metropolis–Hastings).
public struct ParametersMessage: Equatable, Sendable {
    public var step: UInt64
    public var degree: Int
    public var vector: [Float]

    public init(step: UInt64, degree: Int, vector: [Float]) {
        self.step = step
        self.degree = degree
        self.vector = vector
    }

    public func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 15 + vector.count * 4)
        w.u8(1)
        w.u64(step)
        w.u16(UInt16(clamping: degree))
        w.u32(UInt32(vector.count))
        vector.withUnsafeBytes { w.raw($0) }
        return w.bytes
    }

    /// Strict: exact length, known version. NaN/Inf are left to the averaging layer to reject and count.
    public static func decode(_ bytes: [UInt8]) -> ParametersMessage? {
        var r = ByteReader(bytes)
        guard let version = try? r.u8(), version == 1,
              let step = try? r.u64(), let degree = try? r.u16(), let count = try? r.u32(),
              Int(count) * 4 == r.remaining, let raw = try? r.slice(Int(count) * 4)
        else { return nil }
        // Straight from the object into the vector: every peer decodes one per neighbour per round.
        let vector = [Float](unsafeUninitializedCapacity: Int(count)) { floats, initialized in
            raw.withUnsafeBytes { UnsafeMutableRawBufferPointer(floats).copyMemory(from: $0) }
            initialized = Int(count)
        }
        return ParametersMessage(step: step, degree: Int(degree), vector: vector)
    }
}
