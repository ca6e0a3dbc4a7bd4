import ChorusLearning
import Testing
@testable import ChorusSimulation

/// The simulator's event queue: the order every run's reproducibility rests on.
@Suite("event queue")
struct EventQueueTests {
    @Test("events come out in time order, ties in insertion order; peekNext shows the one pop returns")
    func order() {
        var queue = EventQueue<String>()
        var rng = SplitMix64(seed: 5)
        var expected: [(time: Double, order: Int, name: String)] = []
        var inserted = 0
        // Interleaved pushes and pops, so payload slots are reused while others wait.
        for round in 0..<200 {
            for _ in 0..<3 {
                let time = Double(rng.next() % 50)  // many ties
                let name = "e\(inserted)"
                queue.push(name, at: time)
                expected.append((time, inserted, name))
                inserted += 1
            }
            if round % 2 == 0 {
                let peeked = queue.peekNext { $0 }
                let next = queue.pop()!
                #expect(peeked == next.payload)
                let index = expected.indices.min { (expected[$0].time, expected[$0].order) < (expected[$1].time, expected[$1].order) }!
                #expect(expected[index].name == next.payload && expected[index].time == next.time)
                expected.remove(at: index)
            }
        }
        while let peeked = queue.peekNext({ $0 }) {
            let next = queue.pop()!
            #expect(peeked == next.payload)
            let index = expected.indices.min { (expected[$0].time, expected[$0].order) < (expected[$1].time, expected[$1].order) }!
            #expect(expected[index].name == next.payload)
            expected.remove(at: index)
        }
        #expect(expected.isEmpty && queue.isEmpty && queue.pop() == nil)
    }
}
