import ArgumentParser
import ChorusRuns
import Foundation

/// Per-peer and per-link loss and delay from the command line, shared by `chorus simulate` and
/// `chorus experiment`: each option is a schedule action at 0 s (the same code path as a
/// schedule's `loss` and `delay` entries, docs/experiments.md).
struct FaultOptions: ParsableArguments {
    @Option(help: ArgumentHelp("Loss on one peer's traffic from the start: NAME=P[:in|out] (in: what it receives; default both). Repeatable.",
                               valueName: "name=p"))
    var peerLoss: [String] = []

    @Option(help: ArgumentHelp("Loss on one link from the start: A>B=P (from A to B) or A-B=P (both ways). Repeatable.", valueName: "a>b=p"))
    var linkLoss: [String] = []

    @Option(help: ArgumentHelp("Extra one-way delay on one peer's traffic: NAME=MS[:in|out]. Repeatable.", valueName: "name=ms"))
    var peerDelay: [String] = []

    @Option(help: ArgumentHelp("Extra one-way delay on one link: A>B=MS or A-B=MS. Repeatable.", valueName: "a>b=ms"))
    var linkDelay: [String] = []

    func validate() throws { _ = try actions() }

    /// The run's schedule checked against its peers and duration (`Schedule.reviewed`): an
    /// impossible action stops the command with every problem listed; warnings are printed here
    /// and kept for summary.json.
    static func review(_ schedule: Schedule, peers: Int, duration: Double, quiet: Bool = false) throws -> ScheduleReview {
        let review: ScheduleReview
        do { review = try schedule.reviewed(peers: peers, duration: duration) } catch { throw UserError(error.description) }
        for warning in review.warnings where !quiet { FileHandle.standardError.write(Data("warning: \(warning)\n".utf8)) }
        return review
    }

    /// The options as schedule actions at time 0.
    func actions() throws -> [Schedule.Action] {
        var out: [Schedule.Action] = []
        for text in peerLoss { out.append(try peerAction(text, option: "--peer-loss", kind: .loss)) }
        for text in peerDelay { out.append(try peerAction(text, option: "--peer-delay", kind: .delay)) }
        for text in linkLoss { out.append(try linkAction(text, option: "--link-loss", kind: .loss)) }
        for text in linkDelay { out.append(try linkAction(text, option: "--link-delay", kind: .delay)) }
        return out
    }

    private func value(_ text: Substring, kind: Schedule.Kind) -> Double? {
        guard let v = Double(text) else { return nil }
        return kind == .loss ? ((0..<1).contains(v) ? v : nil) : ((0...60_000).contains(v) ? v : nil)
    }

    private func expected(_ kind: Schedule.Kind) -> String {
        kind == .loss ? "a probability in [0, 1)" : "0 to 60000 milliseconds"
    }

    private func peerAction(_ text: String, option: String, kind: Schedule.Kind) throws -> Schedule.Action {
        let parts = text.split(separator: "=", maxSplits: 1)
        let rest = parts.count == 2 ? parts[1].split(separator: ":", omittingEmptySubsequences: false) : []
        guard parts.count == 2, Schedule.index(ofName: String(parts[0])) != nil, (1...2).contains(rest.count),
              let v = value(rest[0], kind: kind), let direction = rest.count == 2 ? Schedule.Direction(rawValue: String(rest[1])) : .both
        else {
            throw ValidationError("\(option): expected NAME=VALUE[:in|out] with a peer name such as p3 and \(expected(kind)), got \"\(text)\"")
        }
        return Schedule.Action(time: 0, kind: kind, target: .names([String(parts[0])]), probability: kind == .loss ? v : 0,
                               direction: direction, delayMs: kind == .delay ? v : 0, origin: "\(option) \(text)")
    }

    private func linkAction(_ text: String, option: String, kind: Schedule.Kind) throws -> Schedule.Action {
        let parts = text.split(separator: "=", maxSplits: 1)
        let oneWay = parts.first?.contains(">") ?? false
        let ends = parts.first?.split(separator: oneWay ? ">" : "-").map(String.init) ?? []
        guard parts.count == 2, ends.count == 2, ends.allSatisfy({ Schedule.index(ofName: $0) != nil }), ends[0] != ends[1],
              let v = value(parts[1], kind: kind)
        else {
            throw ValidationError("\(option): expected A>B=VALUE (one way) or A-B=VALUE (both ways) with peer names such as p1 and \(expected(kind)), got \"\(text)\"")
        }
        return Schedule.Action(time: 0, kind: kind, probability: kind == .loss ? v : 0, direction: oneWay ? .out : .both,
                               link: ends, delayMs: kind == .delay ? v : 0, origin: "\(option) \(text)")
    }
}
