import ChorusCrypto

/// Little-endian writer for wire formats.
public struct ByteWriter {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 0) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    public mutating func f32(_ v: Float) { u32(v.bitPattern) }
    public mutating func f64(_ v: Double) { u64(v.bitPattern) }
    public mutating func raw(_ v: some Sequence<UInt8>) { bytes.append(contentsOf: v) }
    /// The bytes written so far, to change in place (a datagram is encrypted where it was written).
    public mutating func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) -> R) -> R { bytes.withUnsafeMutableBytes(body) }
    public mutating func peerID(_ id: PeerID) { id.withUnsafeBytes { bytes.append(contentsOf: $0) } }
    /// A length-prefixed (u16) byte string.
    public mutating func string16(_ v: [UInt8]) {
        precondition(v.count <= Int(UInt16.max))
        u16(UInt16(v.count))
        raw(v)
    }
}

/// Strict little-endian reader: every read is bounds-checked and `finish()` rejects trailing
/// bytes, so decoders accept exactly one encoding of each message.
public struct ByteReader {
    public struct OutOfBounds: Error, Equatable {}
    public struct TrailingBytes: Error, Equatable { public let count: Int }

    private let bytes: [UInt8]
    public private(set) var offset: Int
    private let end: Int

    public init(_ bytes: [UInt8], from start: Int = 0, to end: Int? = nil) {
        self.bytes = bytes
        self.offset = start
        self.end = end ?? bytes.count
    }

    public var remaining: Int { end - offset }

    public mutating func raw(_ count: Int) throws(OutOfBounds) -> [UInt8] {
        guard count >= 0, count <= remaining else { throw OutOfBounds() }
        defer { offset += count }
        return Array(bytes[offset..<offset + count])
    }

    /// The next `count` bytes in place: a slice sharing the buffer being read, not a copy.
    public mutating func slice(_ count: Int) throws(OutOfBounds) -> ArraySlice<UInt8> {
        guard count >= 0, count <= remaining else { throw OutOfBounds() }
        defer { offset += count }
        return bytes[offset..<offset + count]
    }

    /// A peer id's 32 bytes, without an intermediate array.
    public mutating func peerID() throws(OutOfBounds) -> PeerID {
        guard PeerID.byteCount <= remaining else { throw OutOfBounds() }
        defer { offset += PeerID.byteCount }
        return bytes.withUnsafeBytes { PeerID(exactly: UnsafeRawBufferPointer(rebasing: $0[offset..<offset + PeerID.byteCount])) }
    }

    private mutating func integer<T: FixedWidthInteger>(_: T.Type) throws(OutOfBounds) -> T {
        let size = MemoryLayout<T>.size
        guard size <= remaining else { throw OutOfBounds() }
        var value: T = 0
        for i in 0..<size { value |= T(bytes[offset + i]) << (8 * i) }
        offset += size
        return value
    }

    public mutating func u8() throws(OutOfBounds) -> UInt8 { try integer(UInt8.self) }
    public mutating func u16() throws(OutOfBounds) -> UInt16 { try integer(UInt16.self) }
    public mutating func u32() throws(OutOfBounds) -> UInt32 { try integer(UInt32.self) }
    public mutating func u64() throws(OutOfBounds) -> UInt64 { try integer(UInt64.self) }
    public mutating func f32() throws(OutOfBounds) -> Float { Float(bitPattern: try u32()) }
    public mutating func f64() throws(OutOfBounds) -> Double { Double(bitPattern: try u64()) }
    public mutating func string16() throws(OutOfBounds) -> [UInt8] { try raw(Int(try u16())) }

    public func finish() throws(TrailingBytes) {
        if remaining != 0 { throw TrailingBytes(count: remaining) }
    }
}
