import Foundation
import Testing
@testable import ChorusPeer

/// Inputs no run can use are refused with one message naming the option, file, entry or field:
/// never a trap, a hang, a misleading "Missing value", or a run that quietly does something else.
@Suite("impossible inputs")
struct ImpossibleInputTests {
    @Test("non-finite, negative and out-of-range numbers are refused by option name", arguments: [
        (["simulate", "--duration", "inf"], "--duration must be a finite number of seconds in (0, 1000000], got inf"),
        (["simulate", "--duration", "-5"], "--duration must be a finite number of seconds in (0, 1000000], got -5"),
        (["simulate", "--duration", "nan"], "--duration must be a finite number"),
        (["simulate", "--duration", "0"], "--duration must be a finite number"),
        (["simulate", "--sample-interval", "-1"], "--sample-interval must be a finite number"),
        (["simulate", "--sample-interval", "0.01", "--duration", "1000000"], "--sample-interval 0.01 gives more than 1000000 rows"),
        (["simulate", "--gossip-interval", "inf"], "--gossip-interval must be a finite number"),
        (["simulate", "--loss", "-0.1"], "--loss must be a probability in [0, 1), got -0.1"),
        (["simulate", "--loss", "1.5"], "--loss must be a probability in [0, 1), got 1.5"),
        (["simulate", "--learning-rate", "-1"], "--learning-rate must be in (0, 100]"),
        (["simulate", "membership", "--seconds", "inf"], "--seconds must be a finite number"),
        (["simulate", "membership", "--pause-seconds", "-2"], "--pause-seconds must be a finite number"),
        (["demo", "--duration", "inf"], "--duration must be a finite number of seconds in [5, 1000000], got inf"),
        (["demo", "--duration", "-5"], "--duration must be a finite number of seconds in [5, 1000000], got -5"),
        (["experiment", "--duration", "inf"], "--duration must be a finite number"),
        (["experiment", "--sample-interval", "inf"], "--sample-interval must be a finite number"),
        (["experiment", "--loss", "-1"], "--loss must be a probability in [0, 1), got -1"),
    ])
    func numbers(arguments: [String], message: String) throws {
        let out = NSTemporaryDirectory() + "chorus-impossible-\(UInt64.random(in: 0...UInt64.max))"
        defer { try? FileManager.default.removeItem(atPath: out) }
        let needsOut = arguments[0] == "experiment" || (arguments[0] == "simulate" && arguments[1] != "membership")
        let result = try ChorusBinary.run(arguments + (needsOut ? ["--out", out] : []), timeout: 30)
        #expect(result.status == 64, "exit \(result.status): \(result.stderr)")  // a usage error, not a trap
        #expect(result.stderr.contains(message), "\(result.stderr)")
        #expect(!result.stderr.contains("Missing value"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: out), "a refused run wrote output")
    }

    @Test("chorus simulate refuses a schedule naming absent peers or counting more than are live, listing every entry")
    func scheduleRefused() throws {
        let s = try Scratch()
        let schedule = s.write("""
            [[action]]
            at = 60
            action = "crash"
            count = 5
            [[action]]
            at = 30
            action = "loss"
            probability = 0.1
            peers = ["p9"]
            """, name: "bad.toml")
        let result = try ChorusBinary.run(["simulate", "--peers", "4", "--duration", "90", "--schedule", schedule, "--peer-loss", "p7=0.1",
                                           "--out", s.path + "/out"], timeout: 30)
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("--peer-loss p7=0.1: names p7, but at 0 s the run has only p0…p3"), "\(result.stderr)")
        #expect(result.stderr.contains("\(schedule): 'action[0]': count = 5 is more than the 4 peers live at 60 s"), "\(result.stderr)")
        #expect(result.stderr.contains("\(schedule): 'action[1]': names p9"), "\(result.stderr)")
        #expect(!FileManager.default.fileExists(atPath: s.path + "/out"))
    }

    @Test("an action at the run's end is left out with a warning the run prints and summary.json keeps")
    func scheduleWarning() throws {
        let s = try Scratch()
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
        let schedule = root + "/scripts/schedules/partition-heal.toml"
        let out = s.path + "/out"
        let result = try ChorusBinary.run(["simulate", "--peers", "4", "--duration", "90", "--schedule", schedule, "--task", "membership",
                                           "--crypto", "simulated", "--no-plot", "--out", out], timeout: 120)
        #expect(result.status == 0, "\(result.stderr)")
        let warning = "\(schedule): 'action[1]': heal at 90 s is at or after the end of the run (90 s): left out"
        #expect(result.stderr.contains("warning: " + warning), "\(result.stderr)")
        let summary = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/summary.json"))) as? [String: Any]
        #expect(summary?["warnings"] as? [String] == [warning])
        #expect(result.stdout.contains("of 0 watched actions"), "the heal was still carried out: \(result.stdout)")
    }
}

@Suite("impossible peer configurations")
struct ImpossibleConfigTests {
    @Test("a 10 MB configuration is refused at once, before the TOML parser reads it")
    func hugeFile() throws {
        let s = try Scratch()
        let file = s.write(s.config { $0.replacingOccurrences(of: "kind = \"softmax\"", with: "kind = \"\(String(repeating: "x", count: 10_000_000))\"") })
        let started = Date()
        let size = try #require(try FileManager.default.attributesOfItem(atPath: file)[.size] as? Int)
        #expect(throws: ConfigError(file: file, field: nil, "the file has \(size) bytes; a peer configuration has a few thousand (at most 1048576 accepted)")) {
            try PeerConfig.load(path: file)
        }
        #expect(Date().timeIntervalSince(started) < 1)
    }

    @Test("the join.toml chorus init writes is refused until its advertise placeholder is replaced")
    func initPlaceholder() throws {
        let s = try Scratch()
        let out = s.path + "/cluster"
        // Hosts on other machines: the joiner's host is not known yet. (On loopback hosts only,
        // init fills it in: initOnOneHostAndOperatorVerbs.)
        let written = try ChorusBinary.run(["init", "--hosts", "192.0.2.10:7101,192.0.2.11:7102,192.0.2.12:7103", "--out", out], timeout: 30)
        #expect(written.status == 0, "\(written.stderr)")
        let result = try ChorusBinary.run(["peer", "--config", out + "/join.toml"], timeout: 30)
        #expect(result.status != 0)
        #expect(result.stderr.contains("\(out)/join.toml: field 'peer.advertise': \"NEW-HOST:7101\" is the placeholder"), "\(result.stderr)")
    }

    @Test("an advertise name that does not resolve stops the peer at start, naming the field")
    func unresolvableAdvertise() throws {
        let s = try Scratch()
        let file = s.write(s.config { $0.replacingOccurrences(of: "127.0.0.1:7999", with: "no-such-host.invalid:7999") })
        let result = try ChorusBinary.run(["peer", "--config", file], timeout: 30)
        #expect(result.status != 0)
        #expect(result.stderr.contains("\(file): field 'peer.advertise': cannot resolve no-such-host.invalid"), "\(result.stderr)")
    }
}
