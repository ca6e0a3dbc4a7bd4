import ChorusCrypto
import Foundation
import Testing
@testable import ChorusPeer

private struct Counter: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        return z ^ (z >> 31)
    }
}

@Test("the fault plan drops, duplicates and delays datagrams at the configured rates")
func faultPlanRates() {
    var faults = FaultSettings()
    faults.drop = 0.2
    faults.duplicate = 0.1
    faults.delay = 0.005...0.020
    var rng = Counter(state: 1)
    var dropped = 0, duplicated = 0
    for _ in 0..<20_000 {
        let plan = faults.plan(to: nil, using: &rng)
        if plan.isEmpty { dropped += 1 }
        if plan.count == 2 { duplicated += 1 }
        #expect(plan.allSatisfy { (0.005...0.020).contains($0) })
    }
    #expect(abs(Double(dropped) / 20_000 - 0.2) < 0.02)
    #expect(abs(Double(duplicated) / 16_000 - 0.1) < 0.02)
    #expect(!FaultSettings().isActive)
}

@Test("blocked peers are cut off in both directions")
func faultBlocking() throws {
    let blocked = SigningKey.generate().peerID
    let other = SigningKey.generate().peerID
    var faults = FaultSettings()
    faults.blocked = [blocked]
    var rng = Counter(state: 2)
    #expect(faults.plan(to: blocked, using: &rng).isEmpty)
    #expect(faults.plan(to: other, using: &rng) == [0])
    // Incoming: the sender id sits at bytes 6..<38 of the datagram header.
    var datagram = [UInt8](repeating: 0, count: 80)
    datagram.replaceSubrange(6..<38, with: blocked.bytes)
    #expect(faults.blocks(incoming: datagram))
    datagram.replaceSubrange(6..<38, with: other.bytes)
    #expect(!faults.blocks(incoming: datagram))
    #expect(!faults.blocks(incoming: [1, 2, 3]))
}
