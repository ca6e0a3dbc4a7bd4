import Foundation
import Testing

/// `chorus simulate --replay DIR/summary.json` runs a simulation again from what its summary
/// recorded: every option and the schedule's text, so a failure found by one command is
/// reproduced by another, even after the schedule file changed.
@Suite("simulate --replay")
struct ReplayTests {
    @Test("a replay gives byte-identical series.csv and events.csv, even after the schedule file changed")
    func byteIdentical() throws {
        let s = try Scratch()
        let schedule = s.write("""
            [[action]]
            at = 4
            action = "crash"
            count = 2
            [[action]]
            at = 8
            action = "join"
            count = 2
            """, name: "churn.toml")
        let first = try ChorusBinary.run(["simulate", "--peers", "12", "--duration", "14", "--seed", "5", "--task", "average",
                                          "--crypto", "simulated", "--sample-interval", "0.5", "--loss", "0.05", "--mixing", "push-sum",
                                          "--link-loss", "p1>p2=0.3", "--schedule", schedule, "--no-plot", "--out", s.path + "/run1"], timeout: 120)
        #expect(first.status == 0, "\(first.stderr)")
        try "# emptied after the run\n".write(toFile: schedule, atomically: true, encoding: .utf8)
        let again = try ChorusBinary.run(["simulate", "--replay", s.path + "/run1/summary.json", "--no-plot", "--out", s.path + "/run2"], timeout: 120)
        #expect(again.status == 0, "\(again.stderr)")
        for file in ["series.csv", "events.csv"] {
            let a = try Data(contentsOf: URL(fileURLWithPath: s.path + "/run1/" + file))
            let b = try Data(contentsOf: URL(fileURLWithPath: s.path + "/run2/" + file))
            #expect(a == b, "\(file) differs on replay")
        }
        let events = try String(contentsOfFile: s.path + "/run2/events.csv", encoding: .utf8)
        #expect(events.contains(",crash,") && events.contains(",join,"), "the recorded schedule, not the emptied file, was replayed")
    }

    @Test("--replay refuses other options beside --out and --no-plot, and a file that is not a simulate summary")
    func refusals() throws {
        let s = try Scratch()
        let extra = try ChorusBinary.run(["simulate", "--replay", s.path + "/none.json", "--peers", "8", "--out", s.path + "/o"], timeout: 30)
        #expect(extra.status == 64, "\(extra.stderr)")
        #expect(extra.stderr.contains("--replay takes every option from"), "\(extra.stderr)")
        let junk = s.write("{\"peers\": 3}", name: "summary.json")
        let old = try ChorusBinary.run(["simulate", "--replay", junk, "--out", s.path + "/o"], timeout: 30)
        #expect(old.status != 0)
        #expect(old.stderr.contains("no \"replay\" record"), "\(old.stderr)")
    }
}
