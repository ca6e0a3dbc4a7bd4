/// Sliding anti-replay window over 64-bit datagram counters (RFC 6479 in spirit, as in WireGuard).
///
/// Accepts each counter at most once; accepts counters up to `size − 1` behind the highest seen
/// (reordering); accepts anything ahead. `check` is pure and `commit` is separate so the caller
/// moves the window only after the datagram's tag (and signature) verified: a forged datagram
/// with a huge counter can never slide the window.
///
/// A peer keeps one window per sender, and most senders are quiet: a sender's counter counts its
/// datagrams to everyone, so only a few of the counters in a window are ever addressed to us.
/// While at most `sparseLimit` seen counters lie in the window they are kept as a short sorted
/// list; the 1 KiB bitmap is allocated only for busy senders (a thousand-peer simulation keeps a
/// million windows); a jump past the whole window returns to the list. Both forms answer
/// exactly the same.
public struct ReplayWindow: Sendable, Equatable {
    public static let size: UInt64 = 8192
    /// Counters above this are refused; a sender must start a new epoch long before reaching it.
    public static let counterLimit: UInt64 = 1 << 62
    static let sparseLimit = 16

    public enum Verdict: Equatable, Sendable {
        case fresh
        case duplicate
        case tooOld
        case invalid  // 0 or beyond `counterLimit`
    }

    /// The highest counter seen (0: none yet). It is seen by definition, so it is not in the list.
    public private(set) var highest: UInt64 = 0
    /// One array for both forms (a window is 16 bytes): the other seen counters inside the window,
    /// ascending (at most `sparseLimit` of them), or, once there are more, the bitmap of
    /// `bitmapWords` words with bit `c % size` set when counter c (within the window) was seen.
    /// Most senders reach a peer once in a long while, so most windows hold `highest` alone and
    /// allocate nothing.
    private var seen: [UInt64] = []
    static let bitmapWords = Int(size / 64)
    /// The list never reaches `bitmapWords` entries (`sparseLimit` is far below).
    private var isDense: Bool { seen.count == Self.bitmapWords }

    public init() {}

    public func check(_ counter: UInt64) -> Verdict {
        guard counter != 0, counter <= Self.counterLimit else { return .invalid }
        if counter > highest { return .fresh }
        if counter == highest { return .duplicate }
        if highest - counter >= Self.size { return .tooOld }
        let wasSeen = isDense ? isSet(counter) : seen.contains(counter)
        return wasSeen ? .duplicate : .fresh
    }

    /// Records `counter` as seen. Call only after `check` returned `.fresh` and the datagram verified.
    public mutating func commit(_ counter: UInt64) {
        precondition(check(counter) == .fresh, "commit of a counter that is not fresh")
        if isDense {
            commitDense(counter)
        } else {
            commitSparse(counter)
        }
    }

    private mutating func commitSparse(_ counter: UInt64) {
        if counter > highest {
            if highest != 0 && counter - highest < Self.size { seen.append(highest) }
            highest = counter
            let outside = seen.prefix { highest - $0 >= Self.size }.count
            if outside == seen.count {
                seen = []  // its memory too
            } else if outside > 0 {
                seen.removeFirst(outside)
            }
        } else {
            seen.insert(counter, at: seen.firstIndex { $0 > counter } ?? seen.endIndex)
        }
        guard seen.count > Self.sparseLimit else { return }
        let list = seen
        seen = [UInt64](repeating: 0, count: Self.bitmapWords)
        for c in list + [highest] { set(c) }
    }

    private mutating func commitDense(_ counter: UInt64) {
        if counter > highest {
            let advance = counter - highest
            if advance >= Self.size {
                // Nothing seen is left in the window: back to the sparse form (and its memory).
                highest = counter
                seen = []
                return
            } else {
                // Clear the bits of highest+1 ..< counter: whole words at once (a sender's counter
                // counts its datagrams to everyone, so jumps of hundreds are normal).
                var c = highest + 1
                while c < counter {
                    let p = position(c)
                    let offset = c % 64
                    if offset == 0 && counter - c >= 64 {
                        seen[p.word] = 0
                        c += 64
                    } else {
                        seen[p.word] &= ~p.mask
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
    private func isSet(_ c: UInt64) -> Bool { let p = position(c); return seen[p.word] & p.mask != 0 }
    private mutating func set(_ c: UInt64) { let p = position(c); seen[p.word] |= p.mask }
}
