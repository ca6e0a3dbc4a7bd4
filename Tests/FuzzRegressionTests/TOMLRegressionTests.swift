import ChorusPeer
import ChorusRuns
import Foundation
import Testing
import TOMLKit

/// Inputs the libFuzzer targets found (scripts/fuzz.sh; docs/security.md, "Fuzzing with
/// libFuzzer"), each kept as a test so the crash cannot come back. Every case here aborted the
/// process (SIGABRT in toml++, or a Swift trap) before its fix.
@Suite("fuzz regressions: TOML files")
struct TOMLRegressionTests {
    /// toml++ 3.4.0 asserts that a table header's name starts with a key character (upstream fix:
    /// marzer/tomlplusplus#301). Found by the `config` and `schedule` targets within seconds.
    @Test("a table header without a name is an error naming the line, not an abort",
          arguments: ["[[\ndown = 5\n", "[[\r\nx = 1\n", "[=\n", "[[[1]]]\n", "[ #\n", "x = 1\n\n[[ \t\n",
                      "\u{FEFF}[[|actsh\"\nat = 30\n"])
    func unnamedTableHeader(text: String) throws {
        let error = try #require(throws: TOMLSyntaxError.self) { try TOMLText.parse(text) }
        #expect(error.message.contains("a table header must start with a name"))
        #expect(error.line == (text.hasPrefix("x = 1") ? 3 : 1))
    }

    /// toml++ 3.4.0 asserts that an array's next value does not start with a value terminator:
    /// `}` (and the Unicode line separators) got past its checks. Found by the `schedule` target
    /// from `at =[[[[…}}}` (the first input below is that one, minimized).
    @Test("an array whose value starts with '}' or a line separator is an error, not an abort",
          arguments: ["at = [}\n", "at = [[[[[}}}]\n", "a = [1, }\n", "a = { b = [ \n # c\n } }\n", "a = [\u{2028}1]\n", "a = [\u{85}]\n"])
    func arrayValueTerminator(text: String) throws {
        #expect(throws: TOMLSyntaxError.self) { try TOMLText.parse(text) }
    }

    /// toml++ 3.4.0's number and date scanner asserts what it does not check: `1979-05-27 ` then a
    /// lone digit makes it scan past the end of the value ("`!is_value_terminator(*cp)'"), and a
    /// date, `T` and no digit reaches parse_time without its digit ("`is_decimal_digit(*cp)'").
    /// Found by the `schedule` target (`W=4$22-p4-p' 0`) and then the `config` target
    /// (`s= 6020-06-20t):`). Every bare value is now checked against TOML's syntax first.
    @Test("a bare value that is not a TOML number, boolean, date or time is an error, not an abort",
          arguments: ["at = 1979-05-27 7\n", "W=4$22-p4-p' 0\n", "a = [1979-05-27 7]\n", "a = 1979-05-27 7#\n",
                      "s= 6020-06-20t):\n", "a = 1979-05-27T\n", "a = 1979-05-27 07:32\n", "a = 07:32:00Z\n", "a = 1__0\n",
                      "a = 01\n", "a = 1.\n", "a = .5\n", "a = 1e\n", "a = +0x10\n", "a = 0x\n", "a = 0x_1\n", "a = tru\n", "a = localhost\n",
                      "a = { b = 1979-05-27t) }\n",
                      // The `schedule` target, later: a number running into a non-ASCII character.
                      "\nct  =8\u{5C2DE}HJ----b= 0#EZo33", "a = 1\u{A0}\n", "a = 2024-01-01\u{3000}\n"])
    func invalidBareValue(text: String) throws {
        let error = try #require(throws: TOMLSyntaxError.self) { try TOMLText.parse(text) }
        #expect(error.message.contains("is not a TOML value"))
    }

    @Test("valid TOML that looks like those cases still parses")
    func validLookalikes() throws {
        let table = try TOMLText.parse("""
            \u{FEFF}# a header comment [=
            s = \"\"\"
            [[
            [=\"\"\"
            t = '''
            [}'''
            q = "[[ \\" ["
            nested = [
              [1, 2],
              [ # a comment
                3 ],
              [],
            ]
            inline = { a = [1], b = { c = "}" } }
            when = 1979-05-27 07:32:00
            offset = 1979-05-27T07:32:00.999-07:00
            utc = 1979-05-27t07:32:00z
            day = 1979-05-27
            time = 07:32:00.5
            days = [1979-05-27, 1979-05-28 ]
            numbers = [0, -1, +1_000, 0x1 , 0xdead_BEEF, 0o755, 0b1_0, 1.5, -0.0, 6.626e-34, 1E6, 1_0.0_1e+0_1, inf, -inf, +nan, true, false]
            [[ "quoted header" ]]
            [ table . sub ]
            x = 1
            """)
        #expect(table["nested"]?.array?.count == 3)
        #expect(table["numbers"]?.array?.count == 17)
        #expect(table["s"]?.string == "[[\n[=")
        #expect(table["t"]?.string == "[}")
        #expect(table["table"]?.table?["sub"]?.table?["x"]?.int == 1)
    }

    @Test("configuration and schedule readers report it with the file name and line")
    func readersReportIt() throws {
        let config = try #require(throws: ConfigError.self) { try PeerConfig.parse("[peer]\nbind = \"127.0.0.1:7001\"\n[[\n", file: "p.toml") }
        #expect(config.description.hasPrefix("p.toml: invalid TOML at line 3, column 3: a table header must start with a name"))
        let schedule = try #require(throws: Schedule.ParseError.self) { try Schedule.parse("[[action]]\nat = [}\n", file: "s.toml") }
        #expect(schedule.description.hasPrefix("s.toml: invalid TOML at line 2, column 7: expected a value"))
        let hosts = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-regression-hosts-\(getpid()).toml").path
        try "[[\nname = \"a\"\n".write(toFile: hosts, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: hosts) }
        let hostsError = try #require(throws: ConfigError.self) { try LocalNetwork.Host.load(path: hosts) }
        #expect(hostsError.description.contains("invalid TOML at line 1, column 3"))
    }

    /// A schedule naming one peer twice in `peers` restarted it twice in one action, and `chorus
    /// simulate run` trapped on the second (nil unwrapped in PeerSimulation.peek); a crash or
    /// leave counted it twice. Found by the `schedule` target (its check that an action's targets
    /// are distinct peers).
    @Test("a peer named twice in one action is refused")
    func peerNamedTwice() throws {
        let error = try #require(throws: Schedule.ParseError.self) {
            try Schedule.parse("[[action]]\nat = 10\naction = \"restart\"\npeers = [\"p2\", \"p2\"]\ndown = 4\n", file: "s.toml")
        }
        #expect(error.field == "action[0].peers[1]")
        #expect(error.message == "p2 is named twice")
    }
}
