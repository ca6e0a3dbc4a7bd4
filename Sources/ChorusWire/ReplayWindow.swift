/// Sliding anti-replay window over 64-bit datagram counters (RFC 6479 in spirit, as in WireGuard).
///
/// Accepts each counter at most once; accepts counters up to `size − 1` behind the highest seen
/// (reordering); accepts anything ahead. `check` is pure and `commit` is separate so the caller
/// moves the window only after the datagram's tag (and signature) verified: a forged datagram
/// with a huge counter can never slide the window.
public struct ReplayWindow: Sendable, Equatable {
    public static let size: UInt64 = 8192
    /// Counters above this are refused; a sender must start a new epoch long before reaching it.
    public static let counterLimit: UInt64 = 1 << 62

    public enum Verdict: Equatable, Sendable {
        case fresh
        case duplicate
        case tooOld
        case invalid  // 0 or beyond `counterLimit`
    }

    public private(set) var highest: UInt64 = 0
    private var bits = [UInt64](repeating: 0, count: Int(size / 64))

    public init() {}

    public func check(_ counter: UInt64) -> Verdict {
        guard counter != 0, counter <= Self.counterLimit else { return .invalid }
        if counter > highest { return .fresh }
        if highest - counter >= Self.size { return .tooOld }
        return isSet(counter) ? .duplicate : .fresh
    }

    /// Records `counter` as seen. Call only after `check` returned `.fresh` and the datagram verified.
    public mutating func commit(_ counter: UInt64) {
        precondition(check(counter) == .fresh, "commit of a counter that is not fresh")
        if counter > highest {
            let advance = counter - highest
            if advance >= Self.size {
                for i in bits.indices { bits[i] = 0 }
            } else {
                // Clear the bits of highest+1 ..< counter: whole words at once (a sender's counter
                // counts its datagrams to everyone, so jumps of hundreds are normal).
                var c = highest + 1
                while c < counter {
                    let p = position(c)
                    let offset = c % 64
                    if offset == 0 && counter - c >= 64 {
                        bits[p.word] = 0
                        c += 64
                    } else {
                        bits[p.word] &= ~p.mask
                        c += 1
                    }
                }
            }
            highest = counter
        }
        set(counter)
    }

    private func position(_ counter: UInt64) -> (word: Int, mask: UInt64) {
        let bit = counter % Self.size
        return (Int(bit / 64), 1 << (bit % 64))
    }
    private func isSet(_ c: UInt64) -> Bool { let p = position(c); return bits[p.word] & p.mask != 0 }
    private mutating func set(_ c: UInt64) { let p = position(c); bits[p.word] |= p.mask }
}
