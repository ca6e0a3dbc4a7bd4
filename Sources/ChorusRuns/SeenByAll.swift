/// When a watched schedule action counts as seen by every live peer: the one definition behind
/// events.csv's `seen_by_all_after`, for `chorus simulate` and `chorus experiment` alike.
public enum SeenByAll {
    /// What one observer's view holds about the action's subject.
    public enum View: Sendable, Equatable {
        case absent
        case alive(incarnation: UInt64)
        case suspect(incarnation: UInt64)
        case failed
        case left
    }

    /// Whether every observer (each live peer but the subject) has seen a `kind` action on one
    /// peer:
    /// - crash: every observer holds it failed, left or no longer at all (forgotten);
    /// - leave: left or no longer at all (a leave whose goodbye was lost is recorded as failed,
    ///   which is not seeing the leave);
    /// - join, restart: the subject runs and trains (a joiner holds the network's model), and
    ///   every observer holds it alive or suspect at an incarnation above `before` (a restart:
    ///   the incarnation its crashed boot had; a join: 0).
    /// Other kinds (heal, partition, loss, delay, pause) are not about one peer.
    public static func seen(_ kind: Schedule.Kind, subjectRunning: Bool, subjectTraining: Bool, before: UInt64,
                            views: some Sequence<View>) -> Bool {
        switch kind {
        case .crash:
            return !subjectRunning && views.allSatisfy { [.absent, .left, .failed].contains($0) }
        case .leave:
            return views.allSatisfy { $0 == .absent || $0 == .left }
        case .join, .restart:
            guard subjectRunning && subjectTraining else { return false }
            return views.allSatisfy {
                switch $0 {
                case let .alive(incarnation), let .suspect(incarnation): incarnation > before
                default: false
                }
            }
        case .heal, .partition, .loss, .delay, .pause:
            return true
        }
    }
}
