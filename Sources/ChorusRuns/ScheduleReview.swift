/// A schedule checked against the run it is for, before the run starts.
///
/// Without this, an action naming a peer that never exists did nothing, `count = 5` among four
/// live peers crashed all four and the run went on measuring nobody, and an action at the run's
/// last instant counted as "not seen by all". Impossible actions are errors naming their entry;
/// actions at or after the end are left out with a warning (a run shortened on purpose, such as
/// a quick check of a long schedule, is legitimate), which the run prints and summary.json keeps.
public struct ScheduleReview: Sendable {
    /// The schedule without the actions that fall outside the run.
    public var schedule: Schedule
    /// One line per action left out or cut short, starting with where it was written.
    public var warnings: [String]
}

/// Why a schedule cannot run: one line per impossible action, each naming its entry.
public struct ScheduleError: Error, CustomStringConvertible, Equatable {
    public let problems: [String]
    public var description: String { problems.joined(separator: "\n") }
}

extension Schedule {
    /// Checks every action against a run of `peers` starting peers (p0 … p(peers−1); joiners
    /// continue the numbering) lasting `duration` seconds: names must exist by then and not have
    /// left, counts must not exceed the live peers, and crashes and leaves must leave someone.
    /// Live peers are counted from the actions alone; Poisson churn, being random, is not
    /// counted (its `replace` mode keeps the number anyway).
    public func reviewed(peers: Int, duration: Double) throws(ScheduleError) -> ScheduleReview {
        var problems: [String] = []
        var warnings: [String] = []
        var kept: [Action] = []
        var live = peers
        var existing = peers
        /// Peers named by an earlier crash, leave or restart: gone until (for a restart) they return.
        var gone: [Int: (until: Double, why: String)] = [:]
        /// Restarted peers coming back: when, and how many.
        var returns: [(time: Double, count: Int)] = []

        func at(_ t: Double) -> String { "\(number(t)) s" }
        for action in actions {
            let origin = action.origin.text ?? action.label
            let t = action.time
            guard t < duration else {
                warnings.append("\(origin): \(action.label) at \(at(t)) is at or after the end of the run (\(at(duration))): left out")
                continue
            }
            kept.append(action)
            live += returns.filter { $0.time <= t }.reduce(0) { $0 + $1.count }
            returns.removeAll { $0.time <= t }
            gone = gone.filter { $0.value.until > t }
            var refused = false
            func fail(_ message: String) {
                problems.append("\(origin): \(message)")
                refused = true
            }

            var named: [Int] = []
            for name in action.link ?? (action.target.flatMap { if case let .names(n) = $0 { n } else { nil } } ?? []) {
                guard let index = Schedule.index(ofName: name) else { continue }  // the parser has refused it
                if index >= existing {
                    fail("names \(name), but at \(at(t)) the run has only p0…p\(existing - 1) (\(peers) starting peers, \(existing - peers) joined by then)")
                } else if let departure = gone[index] {
                    fail("names \(name), which is not live at \(at(t)): \(departure.why)")
                } else {
                    named.append(index)
                }
            }

            var affected = named.count
            switch action.target {
            case let .count(n)? where action.kind != .join:
                if n > live { fail("count = \(n) is more than the \(live) peers live at \(at(t))") }
                affected = min(n, live)
            case let .fraction(f)? where action.kind != .join:
                affected = min(live, max(1, Int((f * Double(live)).rounded())))
            default:
                break
            }
            switch action.kind {
            case .crash, .leave:
                if affected >= live && live > 0 && !refused {
                    fail("\(action.kind.rawValue) of \(affected) would leave none of the \(live) peers live at \(at(t)); the run would go on measuring nobody")
                }
                live -= affected
                for index in named { gone[index] = (.infinity, "\(action.kind.rawValue) at \(at(t)) (\(origin))") }
            case .restart:
                live -= affected
                let back = t + action.down
                returns.append((back, affected))
                for index in named { gone[index] = (back, "restarting from \(at(t)) to \(at(back)) (\(origin))") }
                if back >= duration {
                    warnings.append("\(origin): restart at \(at(t)) comes back at \(at(back)), at or after the end of the run (\(at(duration))): the peers stay down")
                }
            case .partition:
                if affected >= live && live > 0 && !refused { fail("partition of \(affected) puts all \(live) live peers on one side at \(at(t)): nothing is cut") }
            case .join:
                let n = action.joinCount(startingPeers: peers)
                existing += n
                live += n
            case .heal, .loss, .delay, .pause:
                break
            }
        }
        var poisson = self.poisson
        if let p = poisson, p.start >= duration {
            warnings.append("\(p.origin.text ?? "poisson"): churn starts at \(at(p.start)), at or after the end of the run (\(at(duration))): left out")
            poisson = nil
        }
        guard problems.isEmpty else { throw ScheduleError(problems: problems) }
        return ScheduleReview(schedule: Schedule(actions: kept, poisson: poisson), warnings: warnings)
    }
}

/// 90, not 90.0; 0.25 as it is.
private func number(_ value: Double) -> String {
    value.isFinite && value == value.rounded() && abs(value) < 1e15 ? String(Int(value)) : String(value)
}
