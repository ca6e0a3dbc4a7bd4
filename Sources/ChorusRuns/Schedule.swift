import Foundation
import TOMLKit

/// What happens to a network during a run, read from a TOML file (format: docs/experiments.md).
/// The simulator applies it to simulated peers; `chorus experiment` (next) to real processes.
public struct Schedule: Sendable, Equatable {
    public enum Kind: String, Sendable, CaseIterable {
        /// Stop at once, no goodbye (kill -9).
        case crash
        /// Graceful leave (SIGTERM): announce "left", hand parameters over, exit.
        case leave
        /// New peers join through a random live member and take the network's model.
        case join
        /// Crash, then start again after `down` seconds from the last checkpoint, same identity.
        case restart
        /// Cut the network in two: the targets on one side, everyone else on the other. With
        /// `direction` "out" only what the targets send to the others is lost, with "in" only what
        /// they receive from them (an asymmetric partition: one side hears the other).
        case partition
        /// Remove every partition.
        case heal
        /// Set the probability that a datagram is lost: everywhere, or on the targets' traffic
        /// (`direction`), or on one link.
        case loss
        /// Add latency: on the targets' traffic (`direction`) or on one link.
        case delay
        /// Stop the targets' processes for `seconds` (SIGSTOP, then SIGCONT): they neither run
        /// nor answer; what is sent to them waits and is read when they resume.
        case pause
    }

    /// Which of a peer's datagrams a loss or delay applies to.
    public enum Direction: String, Sendable, CaseIterable {
        /// What it receives.
        case `in`
        /// What it sends.
        case out
        case both
    }

    /// Which peers an action applies to. Peers are named `p0`, `p1`, … in start order; joiners
    /// continue the numbering.
    public enum Target: Sendable, Equatable {
        case count(Int)
        case fraction(Double)
        case names([String])
    }

    public struct Action: Sendable, Equatable {
        public var time: Double
        public var kind: Kind
        public var target: Target?
        /// restart: seconds between the crash and the new start.
        public var down: Double
        /// loss: the new loss probability.
        public var probability: Double
        /// loss, delay with a target: the targets' inbound, outbound or all datagrams.
        public var direction: Direction
        /// loss, delay: only datagrams from the first peer to the second (and back with
        /// direction both).
        public var link: [String]?
        /// delay: extra one-way milliseconds (0 removes the delay).
        public var delayMs: Double
        /// pause: seconds the targets stay stopped.
        public var seconds: Double
        /// Where the action was written, for messages: "FILE: 'action[2]'" or "--peer-loss p3=0.1".
        public var origin: Origin

        public init(time: Double, kind: Kind, target: Target? = nil, down: Double = 5, probability: Double = 0,
                    direction: Direction = .both, link: [String]? = nil, delayMs: Double = 0, seconds: Double = 0,
                    origin: String? = nil) {
            self.time = time
            self.kind = kind
            self.target = target
            self.down = down
            self.probability = probability
            self.direction = direction
            self.link = link
            self.delayMs = delayMs
            self.seconds = seconds
            self.origin = Origin(text: origin)
        }

        /// The name events.csv gives the action's subject: the link "p1>p2" (or "p1-p2" both
        /// ways), else nil (the targets' names, or "network").
        public var linkName: String? {
            guard let link, link.count == 2 else { return nil }
            return link[0] + (direction == .both ? "-" : ">") + link[1]
        }

        /// events.csv's action column: "loss:0.3", "loss:0.3:in", "delay:50ms:out", "partition:out",
        /// "pause:2.5s", "crash", …
        public var label: String {
            let side = target != nil && direction != .both ? ":\(direction.rawValue)" : ""
            switch kind {
            case .loss: return "loss:\(probability)" + side
            case .delay: return "delay:\(delayMs)ms" + side
            case .partition: return "partition" + side
            case .pause: return "pause:\(seconds)s"
            default: return kind.rawValue
            }
        }
    }

    /// Where an action came from. Not part of what an action is: two actions that do the same
    /// thing are equal wherever they were written.
    public struct Origin: Sendable, Equatable {
        public var text: String?
        public static func == (_: Origin, _: Origin) -> Bool { true }
    }

    /// Churn at random moments: each event replaces (crash + join), crashes or makes leave one
    /// random live peer; events come as a Poisson process.
    public struct Poisson: Sendable, Equatable {
        public enum Mode: String, Sendable, CaseIterable { case replace, crash, leave }
        /// Fraction of the starting peers affected per minute (0.05: 5 % per minute).
        public var ratePerMinute: Double
        public var mode: Mode
        public var start: Double
        public var end: Double
        /// Where it was written, for messages (not part of equality).
        public var origin = Origin(text: nil)
    }

    public var actions: [Action]
    public var poisson: Poisson?

    public init(actions: [Action] = [], poisson: Poisson? = nil) {
        self.actions = actions.sorted { $0.time < $1.time }
        self.poisson = poisson
    }

    public static let steady = Schedule()

    /// A mistake in a schedule file: names the file, the entry and the field.
    public struct ParseError: Error, CustomStringConvertible, Equatable {
        public let file: String
        public let field: String?
        public let message: String
        public var description: String { field.map { "\(file): '\($0)': \(message)" } ?? "\(file): \(message)" }
    }

    /// Largest schedule file read (a real one is a few kilobytes; see `PeerConfig.maxFileBytes`).
    public static let maxFileBytes = 1 << 20

    public static func load(path: String) throws(ParseError) -> Schedule {
        if let size = (try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int, size > maxFileBytes {
            throw ParseError(file: path, field: nil, message: "the file has \(size) bytes; a schedule has a few thousand (at most \(maxFileBytes) accepted)")
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ParseError(file: path, field: nil, message: FileManager.default.fileExists(atPath: path) ? "cannot read the file" : "no such file")
        }
        guard let text = String(data: data, encoding: .utf8) else { throw ParseError(file: path, field: nil, message: "not UTF-8 text") }
        return try parse(text, file: path)
    }

    public static func parse(_ text: String, file: String) throws(ParseError) -> Schedule {
        func fail(_ field: String?, _ message: String) -> ParseError { ParseError(file: file, field: field, message: message) }
        let root: TOMLTable
        do { root = try TOMLText.parse(text) } catch { throw fail(nil, error.description) }
        for key in root.keys.sorted() where key != "action" && key != "poisson" {
            throw fail(key, "unknown key (expected [[action]] entries and an optional [poisson] section)")
        }
        var actions: [Action] = []
        if let value = root["action"] {
            guard let array = value.array else { throw fail("action", "expected [[action]] entries") }
            for index in 0..<array.count {
                let field = "action[\(index)]"
                guard let table = array[index].table else { throw fail(field, "expected a table") }
                var action = try parseAction(table, field: field, fail: fail)
                action.origin = Origin(text: "\(file): '\(field)'")
                actions.append(action)
            }
        }
        var poisson: Poisson?
        if let value = root["poisson"] {
            guard let table = value.table else { throw fail("poisson", "expected a section [poisson]") }
            poisson = try parsePoisson(table, fail: fail)
            poisson?.origin = Origin(text: "\(file): 'poisson'")
        }
        return Schedule(actions: actions, poisson: poisson)
    }

    private static func number(_ table: TOMLTable, _ key: String, field: String, fail: (String?, String) -> ParseError) throws(ParseError) -> Double? {
        guard let v = table[key] else { return nil }
        if v.type == .int, let i = v.int { return Double(i) }
        if v.type == .double, let d = v.double, d.isFinite { return d }
        throw fail("\(field).\(key)", "expected a number, got \(v)")
    }

    private static func parseAction(_ table: TOMLTable, field: String, fail: (String?, String) -> ParseError) throws(ParseError) -> Action {
        let known: Set<String> = ["at", "action", "count", "fraction", "peers", "down", "probability", "direction", "link", "ms", "seconds"]
        if let unknown = table.keys.sorted().first(where: { !known.contains($0) }) {
            throw fail("\(field).\(unknown)", "unknown key (expected \(known.sorted().joined(separator: ", ")))")
        }
        guard let time = try number(table, "at", field: field, fail: fail) else { throw fail("\(field).at", "missing: seconds from the start") }
        guard time >= 0 else { throw fail("\(field).at", "must be 0 or more seconds, got \(time)") }
        guard let kindText = table["action"]?.string else {
            throw fail("\(field).action", "missing: one of \(Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard let kind = Kind(rawValue: kindText) else {
            throw fail("\(field).action", "expected one of \(Kind.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(kindText)\"")
        }
        var targets: [Target] = []
        if let v = table["count"] {
            guard v.type == .int, let n = v.int, n >= 1 else { throw fail("\(field).count", "expected a whole number of peers ≥ 1, got \(v)") }
            targets.append(.count(n))
        }
        if let f = try number(table, "fraction", field: field, fail: fail) {
            guard f > 0 && f <= 1 else { throw fail("\(field).fraction", "expected a fraction in (0, 1], got \(f)") }
            targets.append(.fraction(f))
        }
        if let v = table["peers"] {
            guard let array = v.array, array.count > 0 else { throw fail("\(field).peers", "expected a non-empty array of names such as \"p3\"") }
            var names: [String] = []
            for i in 0..<array.count {
                guard let name = array[i].string, Self.index(ofName: name) != nil else {
                    throw fail("\(field).peers[\(i)]", "expected a peer name p0, p1, … (start order), got \(array[i])")
                }
                // Named twice, a peer was restarted twice by one action and `chorus simulate`
                // trapped on the second; a crash or leave counted it twice (found by the
                // schedule fuzz target).
                guard !names.contains(name) else { throw fail("\(field).peers[\(i)]", "\(name) is named twice") }
                names.append(name)
            }
            targets.append(.names(names))
        }
        if targets.count > 1 { throw fail(field, "give one of count, fraction or peers, not several") }
        let target = targets.first
        var link: [String]?
        if let v = table["link"] {
            guard kind == .loss || kind == .delay else { throw fail("\(field).link", "only loss and delay take 'link'") }
            guard let array = v.array, array.count == 2, let a = array[0].string, let b = array[1].string,
                  Self.index(ofName: a) != nil, Self.index(ofName: b) != nil, a != b
            else { throw fail("\(field).link", "expected two different peer names, from and to, such as [\"p1\", \"p2\"]") }
            guard target == nil else { throw fail(field, "give a link or targets (count, fraction, peers), not both") }
            link = [a, b]
        }
        var direction = Direction.both
        if let v = table["direction"] {
            guard kind == .loss || kind == .delay || kind == .partition else {
                throw fail("\(field).direction", "only loss, delay and partition take 'direction'")
            }
            guard let text = v.string, let d = Direction(rawValue: text) else {
                throw fail("\(field).direction", "expected \"in\", \"out\" or \"both\", got \(v)")
            }
            guard target != nil || link != nil else { throw fail("\(field).direction", "needs targets (peers, count, fraction) or a link") }
            guard link == nil || d != .in else { throw fail("\(field).direction", "a link goes from its first peer to its second: \"out\" (one way) or \"both\"") }
            direction = d
        }
        switch kind {
        case .crash, .leave, .join, .restart, .partition, .pause:
            guard target != nil else { throw fail(field, "\(kind.rawValue) needs count, fraction or peers") }
            if kind == .join, case .names = target { throw fail("\(field).peers", "join makes new peers: give count or fraction") }
        case .heal:
            guard target == nil else { throw fail(field, "heal applies to the whole network: remove count, fraction or peers") }
        case .loss:
            break  // the whole network, the targets' traffic, or one link
        case .delay:
            guard target != nil || link != nil else { throw fail(field, "delay needs targets (peers, count, fraction) or a link") }
        }
        var down = 5.0
        if let d = try number(table, "down", field: field, fail: fail) {
            guard kind == .restart else { throw fail("\(field).down", "only restart takes 'down'") }
            guard d >= 0 else { throw fail("\(field).down", "must be 0 or more seconds, got \(d)") }
            down = d
        }
        var delayMs = 0.0
        if let ms = try number(table, "ms", field: field, fail: fail) {
            guard kind == .delay else { throw fail("\(field).ms", "only delay takes 'ms'") }
            guard ms >= 0 && ms <= 60_000 else { throw fail("\(field).ms", "expected 0 to 60000 milliseconds, got \(ms)") }
            delayMs = ms
        } else if kind == .delay {
            throw fail("\(field).ms", "missing: the extra one-way delay in milliseconds, e.g. 50")
        }
        var seconds = 0.0
        if let v = try number(table, "seconds", field: field, fail: fail) {
            guard kind == .pause else { throw fail("\(field).seconds", "only pause takes 'seconds'") }
            guard v > 0 && v <= 3600 else { throw fail("\(field).seconds", "expected a pause of more than 0 and at most 3600 seconds, got \(v)") }
            seconds = v
        } else if kind == .pause {
            throw fail("\(field).seconds", "missing: how long the peers stay stopped, e.g. 3")
        }
        var probability = 0.0
        if let p = try number(table, "probability", field: field, fail: fail) {
            guard kind == .loss else { throw fail("\(field).probability", "only loss takes 'probability'") }
            guard p >= 0 && p < 1 else { throw fail("\(field).probability", "expected a probability in [0, 1), got \(p)") }
            probability = p
        } else if kind == .loss {
            throw fail("\(field).probability", "missing: the loss probability, e.g. 0.05")
        }
        return Action(time: time, kind: kind, target: target, down: down, probability: probability, direction: direction,
                      link: link, delayMs: delayMs, seconds: seconds)
    }

    private static func parsePoisson(_ table: TOMLTable, fail: (String?, String) -> ParseError) throws(ParseError) -> Poisson {
        let known: Set<String> = ["rate_per_minute", "mode", "start", "end"]
        if let unknown = table.keys.sorted().first(where: { !known.contains($0) }) {
            throw fail("poisson.\(unknown)", "unknown key (expected \(known.sorted().joined(separator: ", ")))")
        }
        guard let rate = try number(table, "rate_per_minute", field: "poisson", fail: fail) else {
            throw fail("poisson.rate_per_minute", "missing: fraction of the peers affected per minute, e.g. 0.05")
        }
        guard rate >= 0 && rate <= 10 else { throw fail("poisson.rate_per_minute", "expected a fraction between 0 and 10, got \(rate)") }
        let modeText = table["mode"]?.string ?? "replace"
        guard let mode = Poisson.Mode(rawValue: modeText) else {
            throw fail("poisson.mode", "expected one of \(Poisson.Mode.allCases.map(\.rawValue).joined(separator: ", ")), got \"\(modeText)\"")
        }
        let start = try number(table, "start", field: "poisson", fail: fail) ?? 0
        let end = try number(table, "end", field: "poisson", fail: fail) ?? .infinity
        guard start >= 0 else { throw fail("poisson.start", "must be 0 or more seconds, got \(start)") }
        guard end > start else { throw fail("poisson.end", "must be after poisson.start (\(start) s), got \(end)") }
        return Poisson(ratePerMinute: rate, mode: mode, start: start, end: end)
    }

    /// "p12" → 12.
    public static func index(ofName name: String) -> Int? {
        guard name.first == "p", let i = Int(name.dropFirst()), i >= 0, "p\(i)" == name else { return nil }
        return i
    }
}

// MARK: Applying a schedule (one implementation for the simulator and real experiments)

extension Schedule.Target {
    /// The peers (indices) this target names among `live`: `count` and `fraction` (of the live
    /// peers, at least one) draw at random with the run's generator, in index order; `names` keeps
    /// those that are live.
    public func pick(from live: [Int], using rng: inout some RandomNumberGenerator) -> [Int] {
        let count: Int
        switch self {
        case let .count(n): count = min(n, live.count)
        case let .fraction(f): count = min(live.count, max(1, Int((f * Double(live.count)).rounded())))
        case let .names(names): return names.compactMap(Schedule.index(ofName:)).filter(live.contains)
        }
        var pool = live
        var out: [Int] = []
        for _ in 0..<count { out.append(pool.remove(at: Int.random(in: 0..<pool.count, using: &rng))) }
        return out.sorted()
    }
}

extension Schedule.Action {
    /// How many new peers a join adds: `count`, or `fraction` of the starting peers (at least one).
    public func joinCount(startingPeers: Int) -> Int {
        switch target {
        case let .count(n): return n
        case let .fraction(f): return max(1, Int((f * Double(startingPeers)).rounded()))
        default: return 0
        }
    }
}

extension Schedule.Poisson {
    /// The time of the next churn event after `t` (exponential gaps at `ratePerMinute` of the
    /// starting peers), or nil when it falls after `end` or the run's `duration`.
    public func nextEvent(after t: Double, startingPeers: Int, duration: Double, using rng: inout some RandomNumberGenerator) -> Double? {
        let perSecond = ratePerMinute * Double(startingPeers) / 60
        let at = t - log(1 - Double.random(in: 0..<1, using: &rng)) / perSecond
        return at < end && at <= duration ? at : nil
    }
}
