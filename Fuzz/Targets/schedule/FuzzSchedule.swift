import ChorusRuns
import FuzzSupport

/// libFuzzer target `schedule`: `Schedule.parse`, a run's schedule of faults and churn in TOML
/// (docs/experiments.md), then the review against a run (`Schedule.reviewed`) and what applying
/// it computes (targets picked, join counts, Poisson event times, labels).
///
/// The input is the file's text (skipped unless UTF-8, as `Schedule.load` refuses it).

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzSchedule(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    guard let text = String(validating: UnsafeBufferPointer(start: data, count: size), as: UTF8.self) else { return 0 }
    guard let schedule = try? Schedule.parse(text, file: "fuzz.toml") else { return 0 }
    var rng = FuzzRandom(seed: 1)
    for action in schedule.actions {
        _ = action.label
        _ = action.linkName
        _ = action.joinCount(startingPeers: 8)
        if let target = action.target {
            let picked = target.pick(from: Array(0..<8), using: &rng)
            Fuzz.check(Set(picked).count == picked.count && picked.allSatisfy { (0..<8).contains($0) }, "picked \(picked) from p0–p7")
        }
    }
    // As both shells call it: only for a positive rate (a rate of -0.0 passes the parser's
    // `rate >= 0`, and nextEvent then returns -inf; the shells' `ratePerMinute > 0` skips it).
    if let poisson = schedule.poisson, poisson.ratePerMinute > 0 {
        var t = poisson.start
        for _ in 0..<4 {
            guard let next = poisson.nextEvent(after: t, startingPeers: 8, duration: 600, using: &rng) else { break }
            Fuzz.check(next >= t, "a Poisson event at \(next) before \(t)")
            t = next
        }
    }
    for peers in [1, 8] {
        if let review = try? schedule.reviewed(peers: peers, duration: 120) {
            Fuzz.check(review.schedule.actions.count <= schedule.actions.count, "the review added actions")
        }
    }
    return 0
}

@_cdecl("LLVMFuzzerInitialize")
public func initialize(_ argc: UnsafeMutableRawPointer?, _ argv: UnsafeMutableRawPointer?) -> CInt {
    Fuzz.writeSeedsIfAsked {
        // Every action kind and field (docs/experiments.md); scripts/fuzz.sh adds scripts/schedules/*.toml.
        let all = """
            [[action]]
            at = 5
            action = "crash"
            count = 2

            [[action]]
            at = 6.5
            action = "leave"
            fraction = 0.25

            [[action]]
            at = 8
            action = "join"
            count = 3

            [[action]]
            at = 10
            action = "restart"
            peers = ["p1", "p2"]
            down = 4

            [[action]]
            at = 12
            action = "partition"
            fraction = 0.5
            direction = "out"

            [[action]]
            at = 20
            action = "heal"

            [[action]]
            at = 21
            action = "loss"
            probability = 0.2

            [[action]]
            at = 22
            action = "loss"
            probability = 0.1
            peers = ["p3"]
            direction = "in"

            [[action]]
            at = 23
            action = "delay"
            link = ["p0", "p4"]
            ms = 50
            direction = "out"

            [[action]]
            at = 30
            action = "pause"
            peers = ["p5"]
            seconds = 2.5

            [poisson]
            rate_per_minute = 0.05
            mode = "replace"
            start = 40
            end = 100

            """
        let poisson = """
            [poisson]
            rate_per_minute = 0.5
            mode = "crash"

            """
        return [("all-kinds.toml", Array(all.utf8)), ("poisson.toml", Array(poisson.utf8))]
    } valid: { bytes in
        (try? Schedule.parse(String(decoding: bytes, as: UTF8.self), file: "seed.toml").reviewed(peers: 8, duration: 120)) != nil
    }
    return 0
}
