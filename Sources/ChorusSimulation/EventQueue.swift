/// A binary min-heap of timed events; ties broken by insertion order, so runs are reproducible.
///
/// The heap holds only plain (time, order, index) entries; payloads (which may own byte arrays)
/// stay put in a side table, so sifting never retains or releases anything.
struct EventQueue<Payload> {
    private struct Entry {
        var time: Double
        var order: UInt64
        var index: Int
    }

    private var heap: [Entry] = []
    private var payloads: [Payload?] = []
    private var free: [Int] = []
    private var counter: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }
    var nextTime: Double? { heap.first?.time }

    mutating func push(_ payload: Payload, at time: Double) {
        counter += 1
        let index: Int
        if let reused = free.popLast() {
            index = reused
            payloads[index] = payload
        } else {
            index = payloads.count
            payloads.append(payload)
        }
        heap.append(Entry(time: time, order: counter, index: index))
        var i = heap.count - 1
        let entry = heap[i]
        while i > 0 {
            let parent = (i - 1) / 2
            guard Self.less(entry, heap[parent]) else { break }
            heap[i] = heap[parent]
            i = parent
        }
        heap[i] = entry
    }

    mutating func pop() -> (time: Double, payload: Payload)? {
        guard let top = heap.first else { return nil }
        let last = heap.removeLast()
        if !heap.isEmpty {
            var i = 0
            let n = heap.count
            while true {
                let l = 2 * i + 1, r = l + 1
                var smallest = last
                var target = i
                if l < n && Self.less(heap[l], smallest) { smallest = heap[l]; target = l }
                if r < n && Self.less(heap[r], smallest) { smallest = heap[r]; target = r }
                if target == i { break }
                heap[i] = smallest
                i = target
            }
            heap[i] = last
        }
        let payload = payloads[top.index].take()!
        free.append(top.index)
        return (top.time, payload)
    }

    private static func less(_ a: Entry, _ b: Entry) -> Bool {
        a.time < b.time || (a.time == b.time && a.order < b.order)
    }
}
