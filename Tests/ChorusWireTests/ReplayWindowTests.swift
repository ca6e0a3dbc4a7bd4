import Testing
@testable import ChorusWire

/// Each case: counters committed first, then the counter under test and the verdict expected.
struct ReplayCase: CustomTestStringConvertible, Sendable {
    let name: String
    let committed: [UInt64]
    let probe: UInt64
    let expected: ReplayWindow.Verdict
    var testDescription: String { name }
}

let replayCases: [ReplayCase] = [
    .init(name: "first counter", committed: [], probe: 1, expected: .fresh),
    .init(name: "exact duplicate", committed: [1, 2, 3], probe: 2, expected: .duplicate),
    .init(name: "duplicate of the highest", committed: [1, 2, 3], probe: 3, expected: .duplicate),
    .init(name: "reordered within the window", committed: [1, 5], probe: 3, expected: .fresh),
    .init(name: "reordered at the window's far edge", committed: [ReplayWindow.size], probe: 1, expected: .fresh),
    .init(name: "just behind the window", committed: [ReplayWindow.size + 1], probe: 1, expected: .tooOld),
    .init(name: "far behind the window", committed: [100_000], probe: 10, expected: .tooOld),
    .init(name: "duplicate after the window moved", committed: [10, 20, 20 + ReplayWindow.size - 1], probe: 20, expected: .duplicate),
    .init(name: "ahead of the window", committed: [1, 2], probe: 1_000_000, expected: .fresh),
    .init(name: "counter zero", committed: [], probe: 0, expected: .invalid),
    .init(name: "counter at the limit", committed: [], probe: ReplayWindow.counterLimit, expected: .fresh),
    .init(name: "counter beyond the limit", committed: [], probe: ReplayWindow.counterLimit + 1, expected: .invalid),
    .init(name: "bit reused after a large jump", committed: [5, 5 + ReplayWindow.size * 3], probe: 5 + ReplayWindow.size * 2 + 1, expected: .fresh),
]

@Test("the replay window decides each case", arguments: replayCases)
func replayWindowCases(_ c: ReplayCase) {
    var window = ReplayWindow()
    for counter in c.committed { window.commit(counter) }
    #expect(window.check(c.probe) == c.expected)
}

@Test("a reordered counter inside the window is accepted exactly once")
func reorderedOnce() {
    var window = ReplayWindow()
    for counter: UInt64 in [1, 2, 4, 5] { window.commit(counter) }
    #expect(window.check(3) == .fresh)
    window.commit(3)
    #expect(window.check(3) == .duplicate)
}

@Test("checking a high counter does not move the window; only commit does")
func checkDoesNotMove() {
    var window = ReplayWindow()
    window.commit(10)
    #expect(window.check(1 << 40) == .fresh)
    #expect(window.highest == 10)
    #expect(window.check(9) == .fresh)
}

/// Forward jumps of up to `stride`: a sender's counter counts its datagrams to everyone, so a
/// receiver sees jumps of hundreds (the window then clears whole words at once). 50 keeps the
/// window dense (a bitmap), 3 000 turns the sparse list into the bitmap once, 20 000 goes back and forth.
@Test("a long random sequence agrees with a set-based reference", arguments: [50, 3_000, 20_000] as [UInt64])
func randomAgainstReference(stride: UInt64) {
    var window = ReplayWindow()
    var seen = Set<UInt64>()
    var highest: UInt64 = 0
    var state: UInt64 = 0x9e3779b97f4a7c15
    for _ in 0..<20_000 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        let jitter = (state >> 33) % 12_000
        let counter = state >> 63 == 0 ? highest + 1 + (state >> 20) % stride : max(1, highest + 50 > jitter ? highest + 50 - jitter : 1)
        let expected: ReplayWindow.Verdict =
            counter > highest ? .fresh : (highest - counter >= ReplayWindow.size ? .tooOld : (seen.contains(counter) ? .duplicate : .fresh))
        #expect(window.check(counter) == expected)
        if expected == .fresh {
            window.commit(counter)
            seen.insert(counter)
            highest = max(highest, counter)
        }
    }
}

/// A peer keeps a session, with its window, for every peer it talks to: n² of them in a simulation
/// of n peers, whose memory is what its cache misses are made of. A field added here should be a
/// decision (see docs/performance.md). 48: the pair's boot fingerprint (session keys) is the 8th word.
@Test("a session with its replay window and its pair's boot stays 48 bytes")
func sessionSize() {
    #expect(MemoryLayout<ReplayWindow>.size == 16)
    #expect(MemoryLayout<WireEndpoint.Session>.size == 48)
}
