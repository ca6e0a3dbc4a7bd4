import HeapModule

/// Timed events in time order; ties broken by insertion order, so runs are reproducible.
///
/// The heap holds only plain (time, order, index) entries; payloads (which may own byte arrays)
/// stay put in a side table, so sifting never retains or releases anything.
struct EventQueue<Payload> {
    private struct Entry: Comparable {
        var time: Double
        var order: UInt64
        var index: Int

        static func < (a: Entry, b: Entry) -> Bool { (a.time, a.order) < (b.time, b.order) }
        static func == (a: Entry, b: Entry) -> Bool { a.order == b.order }
    }

    private var heap = Heap<Entry>()
    private var payloads: [Payload?] = []
    private var free: [Int] = []
    private var counter: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }
    var count: Int { heap.count }
    var nextTime: Double? { heap.min?.time }

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
        heap.insert(Entry(time: time, order: counter, index: index))
    }

    /// Lets `body` look at the next event's payload without taking it (for prefetching).
    func peekNext<T>(_ body: (borrowing Payload) -> T) -> T? {
        guard let top = heap.min else { return nil }
        return payloads[top.index].map { body($0) }
    }

    mutating func pop() -> (time: Double, payload: Payload)? {
        guard let top = heap.popMin() else { return nil }
        let payload = payloads[top.index].take()!
        free.append(top.index)
        return (top.time, payload)
    }
}
