/// The one churn driver behind `chorus simulate` and `chorus experiment`. It turns a schedule
/// action or a Poisson event into steps on numbered peers, drawing every random choice (which
/// peers, how many) from the run's scenario generator; each shell carries the steps out its own
/// way, on a simulated peer or on a process. With the choices made here, the two shells pick the
/// same peers for the same schedule and generator.
public enum ChurnDriver {
    /// One thing to do to the network, in the order given.
    public enum Step: Sendable, Equatable {
        case crash(Int)
        case leave(Int)
        /// Crash now, start again from the last checkpoint after `down` seconds.
        case restart(Int, down: Double)
        /// A new peer; the shell picks its entry points (`EntryPoints`) when it starts it.
        case join
        case partition(side: Set<Int>, direction: Schedule.Direction)
        case heal
        case pause([Int], seconds: Double)
        /// A loss or delay (`action.kind`, with its value and direction) on a scope.
        case fault(Schedule.Action, Scope)
    }

    /// Where a loss or delay applies.
    public enum Scope: Sendable, Equatable {
        case network
        case peers([Int])
        /// From the first peer to the second (and back when the direction is `both`).
        case link(Int, Int)
    }

    /// The steps of one schedule action. `targetable` are the live peers an action may pick.
    public static func steps(for action: Schedule.Action, targetable: [Int], startingPeers: Int,
                             using rng: inout some RandomNumberGenerator) -> [Step] {
        func targets() -> [Int] { action.target?.pick(from: targetable, using: &rng) ?? [] }
        switch action.kind {
        case .crash: return targets().map { .crash($0) }
        case .leave: return targets().map { .leave($0) }
        case .restart: return targets().map { .restart($0, down: action.down) }
        case .join: return Array(repeating: .join, count: action.joinCount(startingPeers: startingPeers))
        case .partition: return [.partition(side: Set(targets()), direction: action.direction)]
        case .heal: return [.heal]
        case .pause: return [.pause(targets(), seconds: action.seconds)]
        case .loss, .delay:
            if let names = action.link, let a = Schedule.index(ofName: names[0]), let b = Schedule.index(ofName: names[1]) {
                return [.fault(action, .link(a, b))]
            }
            return [.fault(action, action.target == nil ? .network : .peers(targets()))]
        }
    }

    /// The steps of one Poisson event: one random peer among `targetable` replaced (crash, then
    /// a join), crashed or made to leave. Nothing while a single peer is left.
    public static func steps(for poisson: Schedule.Poisson, targetable: [Int],
                             using rng: inout some RandomNumberGenerator) -> [Step] {
        guard targetable.count > 1 else { return [] }
        let index = targetable[Int.random(in: 0..<targetable.count, using: &rng)]
        switch poisson.mode {
        case .replace: return [.crash(index), .join]
        case .crash: return [.crash(index)]
        case .leave: return [.leave(index)]
        }
    }
}
