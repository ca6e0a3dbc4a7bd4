/// Lifeguard's local health multiplier (memberlist's `awareness.go`): a score from 0 (healthy)
/// to a maximum that stretches this peer's own probe period and timeout. Failed probes and
/// missing nacks raise it, acks lower it, being accused or paused raises it: a peer that is
/// itself slow then waits longer before it accuses anybody.
struct LocalHealth: Sendable {
    let maximum: Int
    private(set) var score = 0

    init(maximum: Int) { self.maximum = maximum }

    mutating func adjust(_ delta: Int) {
        score = min(maximum, max(0, score + delta))
    }

    /// A probe interval or timeout as this peer uses it now.
    func scaled(_ seconds: Double) -> Double { seconds * Double(1 + score) }
}
