import Testing
import ChorusLearning
@testable import ChorusRuns
@testable import ChorusSimulation

@Suite("schedules")
struct ScheduleTests {
    @Test("the shipped schedules parse", arguments: ["steady", "replace-quarter", "rolling-restart", "partition-heal", "poisson"])
    func shipped(name: String) throws {
        let root = #filePath.components(separatedBy: "/Tests/").first!
        let schedule = try Schedule.load(path: "\(root)/scripts/schedules/\(name).toml")
        switch name {
        case "replace-quarter": #expect(schedule.actions.map(\.kind) == [.crash, .join])
        case "partition-heal": #expect(schedule.actions.map(\.kind) == [.partition, .heal])
        case "poisson": #expect(schedule.poisson?.ratePerMinute == 0.05)
        default: break
        }
    }

    @Test("actions are kept in time order with their targets")
    func parse() throws {
        let s = try Schedule.parse("""
            [[action]]
            at = 30
            action = "join"
            count = 2
            [[action]]
            at = 10.5
            action = "restart"
            peers = ["p1", "p12"]
            down = 3
            [[action]]
            at = 20
            action = "loss"
            probability = 0.1
            """, file: "s.toml")
        #expect(s.actions == [
            .init(time: 10.5, kind: .restart, target: .names(["p1", "p12"]), down: 3),
            .init(time: 20, kind: .loss, probability: 0.1),
            .init(time: 30, kind: .join, target: .count(2)),
        ])
    }

    @Test("loss and delay take targets with a direction, or a link; their labels say so")
    func targetedFaults() throws {
        let s = try Schedule.parse("""
            [[action]]
            at = 0
            action = "loss"
            probability = 0.3
            peers = ["p3"]
            direction = "in"
            [[action]]
            at = 5
            action = "delay"
            ms = 40
            link = ["p1", "p2"]
            direction = "out"
            [[action]]
            at = 6
            action = "loss"
            probability = 0.5
            link = ["p4", "p5"]
            """, file: "s.toml")
        #expect(s.actions == [
            .init(time: 0, kind: .loss, target: .names(["p3"]), probability: 0.3, direction: .in),
            .init(time: 5, kind: .delay, direction: .out, link: ["p1", "p2"], delayMs: 40),
            .init(time: 6, kind: .loss, probability: 0.5, link: ["p4", "p5"]),
        ])
        #expect(s.actions.map(\.label) == ["loss:0.3:in", "delay:40.0ms", "loss:0.5"])
        #expect(s.actions.map(\.linkName) == [nil, "p1>p2", "p4-p5"])
    }

    static let mistakes: [(String, String, String)] = [
        ("[[action]]\naction = \"crash\"\ncount = 1", "'action[0].at'", "missing"),
        ("[[action]]\nat = -1\naction = \"crash\"\ncount = 1", "'action[0].at'", "0 or more"),
        ("[[action]]\nat = 1\naction = \"explode\"\ncount = 1", "'action[0].action'", "expected one of crash"),
        ("[[action]]\nat = 1\naction = \"crash\"", "'action[0]'", "needs count, fraction or peers"),
        ("[[action]]\nat = 1\naction = \"crash\"\ncount = 1\nfraction = 0.5", "'action[0]'", "not several"),
        ("[[action]]\nat = 1\naction = \"crash\"\nfraction = 1.5", "'action[0].fraction'", "(0, 1]"),
        ("[[action]]\nat = 1\naction = \"crash\"\ncount = 0", "'action[0].count'", "≥ 1"),
        ("[[action]]\nat = 1\naction = \"crash\"\npeers = [\"node3\"]", "'action[0].peers[0]'", "p0, p1"),
        ("[[action]]\nat = 1\naction = \"join\"\npeers = [\"p3\"]", "'action[0].peers'", "give count or fraction"),
        ("[[action]]\nat = 1\naction = \"heal\"\ncount = 2", "'action[0]'", "whole network"),
        ("[[action]]\nat = 1\naction = \"loss\"", "'action[0].probability'", "missing"),
        ("[[action]]\nat = 1\naction = \"loss\"\nprobability = 1", "'action[0].probability'", "[0, 1)"),
        ("[[action]]\nat = 1\naction = \"crash\"\ncount = 1\ndown = 3", "'action[0].down'", "only restart"),
        ("[[action]]\nat = 1\naction = \"crash\"\ncount = 1\nwhen = 3", "'action[0].when'", "unknown key"),
        ("[[action]]\nat = 1\naction = \"crash\"\ncount = 1\n[[action]]\nat = \"x\"\naction = \"heal\"", "'action[1].at'", "expected a number"),
        ("[poisson]\nmode = \"replace\"", "'poisson.rate_per_minute'", "missing"),
        ("[poisson]\nrate_per_minute = 0.1\nmode = \"swap\"", "'poisson.mode'", "replace, crash, leave"),
        ("[poisson]\nrate_per_minute = 0.1\nstart = 50\nend = 10", "'poisson.end'", "after poisson.start"),
        ("peers = 3", "'peers'", "unknown key"),
        ("[[action]]\nat = 1\naction = \"delay\"\npeers = [\"p1\"]", "'action[0].ms'", "missing"),
        ("[[action]]\nat = 1\naction = \"delay\"\nms = 5", "'action[0]'", "needs targets"),
        ("[[action]]\nat = 1\naction = \"loss\"\nprobability = 0.1\nlink = [\"p1\"]", "'action[0].link'", "two different peer names"),
        ("[[action]]\nat = 1\naction = \"loss\"\nprobability = 0.1\nlink = [\"p1\", \"p2\"]\npeers = [\"p3\"]", "'action[0]'", "not both"),
        ("[[action]]\nat = 1\naction = \"loss\"\nprobability = 0.1\ndirection = \"in\"", "'action[0].direction'", "needs targets"),
        ("[[action]]\nat = 1\naction = \"loss\"\nprobability = 0.1\npeers = [\"p3\"]\ndirection = \"sideways\"", "'action[0].direction'", "\"in\", \"out\" or \"both\""),
        ("[[action]]\nat = 1\naction = \"crash\"\ncount = 1\nms = 5", "'action[0].ms'", "only delay"),
        ("[[action]\nat = 1", "invalid TOML", "at line"),
        ("[[action]]\nat = 1\naction = \"pause\"\ncount = 1", "'action[0].seconds'", "missing"),
        ("[[action]]\nat = 1\naction = \"pause\"\ncount = 1\nseconds = 0", "'action[0].seconds'", "more than 0"),
        ("[[action]]\nat = 1\naction = \"crash\"\ncount = 1\nseconds = 2", "'action[0].seconds'", "only pause"),
        ("[[action]]\nat = 1\naction = \"crash\"\ncount = 1\ndirection = \"in\"", "'action[0].direction'", "only loss, delay and partition"),
    ]

    @Test("pauses and one-way partitions parse, with labels that say so")
    func pausesAndOneWayPartitions() throws {
        let s = try Schedule.parse("""
            [[action]]
            at = 5
            action = "pause"
            peers = ["p2"]
            seconds = 2.5

            [[action]]
            at = 6
            action = "partition"
            fraction = 0.25
            direction = "out"
            """, file: "p.toml")
        #expect(s.actions.map(\.kind) == [.pause, .partition])
        #expect(s.actions[0].seconds == 2.5 && s.actions[0].target == .names(["p2"]))
        #expect(s.actions[1].direction == .out)
        #expect(s.actions.map(\.label) == ["pause:2.5s", "partition:out"])
    }

    @Test("each mistake names the file, the entry and the field", arguments: mistakes.indices)
    func rejected(index: Int) {
        let (text, field, words) = Self.mistakes[index]
        do {
            _ = try Schedule.parse(text, file: "s.toml")
            Issue.record("accepted: \(text)")
        } catch {
            #expect(error.description.hasPrefix("s.toml: "), "\(error)")
            #expect(error.description.contains(field) && error.description.contains(words), "\(error)")
        }
    }

    @Test("a missing schedule file is named")
    func missingFile() {
        #expect(throws: Schedule.ParseError(file: "/nonexistent/s.toml", field: nil, message: "no such file")) {
            try Schedule.load(path: "/nonexistent/s.toml")
        }
    }
}

/// A schedule is checked against the run before it starts (`Schedule.reviewed`).
@Suite("schedules against their run")
struct ScheduleReviewTests {
    func problems(_ text: String, peers: Int, duration: Double = 300) -> [String] {
        do {
            _ = try Schedule.parse(text, file: "s.toml").reviewed(peers: peers, duration: duration)
            return []
        } catch let error as ScheduleError {
            return error.problems
        } catch {
            return ["\(error)"]
        }
    }

    @Test("a count above the live peers is refused, naming the file and the entry")
    func countAboveLive() {
        let found = problems("[[action]]\nat = 60\naction = \"crash\"\ncount = 5\n", peers: 4)
        #expect(found == ["s.toml: 'action[0]': count = 5 is more than the 4 peers live at 60 s"])
        // Counted after earlier departures and joins.
        let later = problems("""
            [[action]]
            at = 10
            action = "leave"
            count = 2
            [[action]]
            at = 20
            action = "partition"
            count = 7
            [[action]]
            at = 30
            action = "join"
            count = 3
            [[action]]
            at = 40
            action = "loss"
            probability = 0.1
            count = 9
            """, peers: 8)
        #expect(later == ["s.toml: 'action[1]': count = 7 is more than the 6 peers live at 20 s"])
    }

    @Test("a crash or leave of every live peer is refused: the run would measure nobody")
    func leavesNobody() {
        #expect(problems("[[action]]\nat = 60\naction = \"crash\"\ncount = 4\n", peers: 4)
            == ["s.toml: 'action[0]': crash of 4 would leave none of the 4 peers live at 60 s; the run would go on measuring nobody"])
        #expect(problems("[[action]]\nat = 60\naction = \"leave\"\nfraction = 1.0\n", peers: 4).count == 1)
        #expect(problems("[[action]]\nat = 5\naction = \"partition\"\npeers = [\"p0\", \"p1\"]\n", peers: 2).count == 1)
        // A restart of everyone is a full-cluster restart: allowed.
        #expect(problems("[[action]]\nat = 60\naction = \"restart\"\ncount = 4\n", peers: 4).isEmpty)
    }

    @Test("names of peers that do not exist yet, or no longer, are refused")
    func absentNames() {
        #expect(problems("[[action]]\nat = 30\naction = \"loss\"\nprobability = 0.1\npeers = [\"p9\"]\n", peers: 8)
            == ["s.toml: 'action[0]': names p9, but at 30 s the run has only p0…p7 (8 starting peers, 0 joined by then)"])
        // A joiner continues the numbering.
        #expect(problems("""
            [[action]]
            at = 10
            action = "join"
            count = 2
            [[action]]
            at = 20
            action = "delay"
            ms = 5
            link = ["p9", "p0"]
            """, peers: 8).isEmpty)
        // A crashed peer is gone; a restarted one is back after `down`.
        let found = problems("""
            [[action]]
            at = 10
            action = "crash"
            peers = ["p1"]
            [[action]]
            at = 12
            action = "restart"
            peers = ["p2"]
            down = 5
            [[action]]
            at = 15
            action = "leave"
            peers = ["p1", "p2"]
            [[action]]
            at = 17
            action = "leave"
            peers = ["p2"]
            """, peers: 8)
        #expect(found == [
            "s.toml: 'action[2]': names p1, which is not live at 15 s: crash at 10 s (s.toml: 'action[0]')",
            "s.toml: 'action[2]': names p2, which is not live at 15 s: restarting from 12 s to 17 s (s.toml: 'action[1]')",
        ])
    }

    @Test("actions at or after the end are left out with a warning that names them")
    func afterTheEnd() throws {
        let root = #filePath.components(separatedBy: "/Tests/").first!
        let file = "\(root)/scripts/schedules/partition-heal.toml"
        let review = try Schedule.load(path: file).reviewed(peers: 8, duration: 90)
        #expect(review.schedule.actions.map(\.kind) == [.partition])
        #expect(review.warnings == ["\(file): 'action[1]': heal at 90 s is at or after the end of the run (90 s): left out"])
        let restart = try Schedule.parse("[[action]]\nat = 10\naction = \"restart\"\ncount = 1\ndown = 30\n", file: "s.toml").reviewed(peers: 4, duration: 20)
        #expect(restart.schedule.actions.count == 1)
        #expect(restart.warnings == ["s.toml: 'action[0]': restart at 10 s comes back at 40 s, at or after the end of the run (20 s): the peers stay down"])
        let late = try Schedule.parse("[poisson]\nrate_per_minute = 0.1\nstart = 400\n", file: "s.toml").reviewed(peers: 4, duration: 300)
        #expect(late.schedule.poisson == nil && late.warnings.count == 1)
    }

    @Test("the shipped schedules pass with the commands the docs give", arguments: [
        ("replace-quarter", 64, 300.0), ("replace-quarter", 16, 120.0), ("partition-heal", 6, 120.0),
        ("rolling-restart", 48, 300.0), ("poisson", 48, 300.0), ("steady", 2, 5.0),
    ])
    func shippedWithDocs(name: String, peers: Int, duration: Double) throws {
        let root = #filePath.components(separatedBy: "/Tests/").first!
        let schedule = try Schedule.load(path: "\(root)/scripts/schedules/\(name).toml")
        let review = try schedule.reviewed(peers: peers, duration: duration)
        #expect(review.warnings.isEmpty)
        #expect(review.schedule == schedule)
    }
}

/// `seen_by_all_after`'s one definition, shared by `chorus simulate` and `chorus experiment`.
@Suite("seen by all")
struct SeenByAllTests {
    typealias V = SeenByAll.View

    @Test("a crash is seen once every view holds the peer failed, left or forgets it, and only once it is down")
    func crash() {
        #expect(SeenByAll.seen(.crash, subjectRunning: false, subjectTraining: false, before: 0, views: [V.failed, .left, .absent]))
        #expect(!SeenByAll.seen(.crash, subjectRunning: false, subjectTraining: false, before: 0, views: [V.failed, .suspect(incarnation: 5)]))
        #expect(!SeenByAll.seen(.crash, subjectRunning: true, subjectTraining: true, before: 0, views: [V.failed]))
    }

    @Test("a leave is seen as left or forgotten, not as failed")
    func leave() {
        #expect(SeenByAll.seen(.leave, subjectRunning: true, subjectTraining: false, before: 0, views: [V.left, .absent]))
        #expect(!SeenByAll.seen(.leave, subjectRunning: false, subjectTraining: false, before: 0, views: [V.left, .failed]))
    }

    @Test("a join or restart is seen once the peer trains and every view holds a later incarnation than the one before")
    func joinAndRestart() {
        let later: [V] = [.alive(incarnation: 9), .suspect(incarnation: 9)]
        #expect(SeenByAll.seen(.restart, subjectRunning: true, subjectTraining: true, before: 8, views: later))
        #expect(!SeenByAll.seen(.restart, subjectRunning: true, subjectTraining: true, before: 9, views: later), "the crashed boot's own incarnation is not the restart")
        #expect(!SeenByAll.seen(.join, subjectRunning: true, subjectTraining: false, before: 0, views: later), "a joiner still waiting for the model")
        #expect(!SeenByAll.seen(.join, subjectRunning: false, subjectTraining: false, before: 0, views: later))
        #expect(!SeenByAll.seen(.join, subjectRunning: true, subjectTraining: true, before: 0, views: [V.alive(incarnation: 9), .absent]))
    }
}

/// Where joiners and restarted peers are pointed, shared by `chorus simulate` and `chorus experiment`.
@Suite("entry points")
struct EntryPointsTests {
    @Test("two distinct settled peers when there are any (fuzz seeds 1850 and 1987 of version 8); any live ones otherwise")
    func settledFirst() {
        var rng = SplitMix64(seed: 7)
        for _ in 0..<200 {
            let picked = EntryPoints.pick(from: Array(0..<10), settled: { $0 >= 6 }, using: &rng)
            #expect(picked.count == 2 && Set(picked).count == 2, "one entry point that crashes before it answers leaves the joiner alone")
            #expect(picked.allSatisfy { $0 >= 6 }, "a newcomer still joining is not a way into the network")
        }
        #expect(EntryPoints.pick(from: [3, 4], settled: { _ in false }, using: &rng) == [3, 4])
        #expect(EntryPoints.pick(from: [5], settled: { _ in true }, using: &rng) == [5])
        #expect(EntryPoints.pick(from: [], settled: { _ in true }, using: &rng).isEmpty)
    }
}

struct ChurnDriverTests {
    @Test("actions pick only targetable peers, links and joins need no draw, and Poisson churn leaves the last peer alone")
    func steps() {
        var rng = SplitMix64(seed: 11)
        for _ in 0..<100 {
            let crash = ChurnDriver.steps(for: Schedule.Action(time: 1, kind: .crash, target: .count(2)), targetable: [1, 4, 6],
                                          startingPeers: 8, using: &rng)
            #expect(crash.count == 2 && crash.allSatisfy { if case let .crash(i) = $0 { [1, 4, 6].contains(i) } else { false } },
                    "a departing or dead peer is no target")
        }
        let link = Schedule.Action(time: 1, kind: .loss, probability: 0.3, direction: .out, link: ["p2", "p5"])
        #expect(ChurnDriver.steps(for: link, targetable: [0], startingPeers: 8, using: &rng) == [.fault(link, .link(2, 5))])
        let everywhere = Schedule.Action(time: 1, kind: .loss, probability: 0.1)
        #expect(ChurnDriver.steps(for: everywhere, targetable: [0, 1], startingPeers: 8, using: &rng) == [.fault(everywhere, .network)])
        let joins = Schedule.Action(time: 1, kind: .join, target: .fraction(0.25))
        #expect(ChurnDriver.steps(for: joins, targetable: [0], startingPeers: 8, using: &rng) == [.join, .join])
        let restart = ChurnDriver.steps(for: Schedule.Action(time: 1, kind: .restart, target: .names(["p3"]), down: 7),
                                        targetable: [2, 3], startingPeers: 8, using: &rng)
        #expect(restart == [.restart(3, down: 7)])

        let replace = Schedule.Poisson(ratePerMinute: 0.1, mode: .replace, start: 0, end: 60)
        let steps = ChurnDriver.steps(for: replace, targetable: [3, 9], using: &rng)
        #expect(steps.count == 2 && steps.last == .join && (steps.first == .crash(3) || steps.first == .crash(9)))
        #expect(ChurnDriver.steps(for: replace, targetable: [3], using: &rng).isEmpty, "the last peer is never churned away")
    }
}
