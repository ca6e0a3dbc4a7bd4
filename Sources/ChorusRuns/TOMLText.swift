import TOMLKit

/// A TOML syntax error: where, and what (from toml++, or from the check below).
public struct TOMLSyntaxError: Error, Equatable, Sendable, CustomStringConvertible {
    public let line: Int
    public let column: Int
    public let message: String

    public var description: String {
        line > 0 ? "invalid TOML at line \(line), column \(column): \(message)" : "invalid TOML: \(message)"
    }
}

/// The one way Chorus parses TOML text (configurations, schedules, hosts files).
public enum TOMLText {
    /// Parses `text` with TOMLKit (toml++), refusing first the invalid TOML that toml++ 3.4.0, as
    /// TOMLKit 0.6.0 bundles it, would abort the process on.
    ///
    /// toml++ checks some of its preconditions only by assertions, and SwiftPM builds C++
    /// dependencies with assertions on, in release too (without them each would be undefined
    /// behaviour: toml++ turns them into assumptions). So a damaged configuration or schedule made
    /// `chorus peer --config` and `chorus simulate --schedule` die with SIGABRT instead of naming
    /// the line: a table header without a name (`[[` then a line break, `[=`, `[[[x]]`:
    /// "Assertion `is_bare_key_character(*cp) || is_string_delimiter(*cp)' failed", fixed upstream
    /// after 3.4.0 in marzer/tomlplusplus#301), and an array whose next value starts with `}` or a
    /// Unicode line separator (`a = [}`: "Assertion `!is_value_terminator(*cp)' failed"). Found by
    /// the `config` and `schedule` libFuzzer targets (docs/security.md, "Fuzzing with libFuzzer").
    /// A third came later: a date, a space and a lone digit (`at = 1979-05-27 7`: "Assertion
    /// `!is_value_terminator(*cp)' failed" in the date-time scan).
    /// Everything refused here is invalid TOML anyway; valid documents reach toml++ unchanged.
    public static func parse(_ text: String) throws(TOMLSyntaxError) -> TOMLTable {
        if let problem = assertionTrigger(in: Array(text.utf8)) { throw problem }
        do {
            return try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            throw TOMLSyntaxError(line: error.source.begin.line, column: error.source.begin.column, message: error.description)
        } catch {
            throw TOMLSyntaxError(line: 0, column: 0, message: "\(error)")
        }
    }

    /// The first place where toml++ 3.4.0 would reach a failing assertion, nil when there is none:
    /// a table header (a `[` or `[[` where a statement starts) whose name does not start with a
    /// bare-key character, a quote or `]`, as `parse_table_header` reads it; an array's value
    /// (right after `[` or `,`) starting with `}`; a Unicode line separator (U+0085, U+2028,
    /// U+2029) outside strings and comments, where TOML allows none; a date-like token followed
    /// by a space, one digit and the end of the value. Strings, comments, arrays and
    /// inline tables are followed so that a `[` inside a value is not taken for a header. What
    /// follows another syntax error does not matter: toml++ stops at the first.
    static func assertionTrigger(in bytes: [UInt8]) -> TOMLSyntaxError? {
        let quote = UInt8(ascii: "\""), apostrophe = UInt8(ascii: "'"), backslash = UInt8(ascii: "\\")
        let newline = UInt8(ascii: "\n"), space = UInt8(ascii: " "), tab = UInt8(ascii: "\t")
        // toml++ skips a byte-order mark at the start.
        let start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var i = start, line = 1, lineStart = start
        /// The arrays (true while a value is expected: after `[` or `,`) and inline tables (false)
        /// open in the current value, innermost last.
        var open: [(isArray: Bool, expectingValue: Bool)] = []
        var statementStart = true
        func at(_ j: Int) -> UInt8? { j < bytes.count ? bytes[j] : nil }
        func problem(at j: Int, _ message: String) -> TOMLSyntaxError {
            TOMLSyntaxError(line: line, column: j - lineStart + 1, message: message)
        }
        func describe(_ j: Int) -> String {
            let d = bytes[j]
            return d == newline ? "a line break" : d == UInt8(ascii: "\r") ? "a carriage return" : d < 0x80 ? "'\(Character(Unicode.Scalar(d)))'" : "a non-ASCII character"
        }
        func isKeyStart(_ c: UInt8) -> Bool {
            (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || (c >= 0x30 && c <= 0x39) || c == 0x5f || c == 0x2d
                || c == quote || c == apostrophe
        }
        /// Length of a U+0085, U+2028 or U+2029 at `j` (UTF-8), 0 for anything else.
        func lineSeparator(at j: Int) -> Int {
            if bytes[j] == 0xC2 && at(j + 1) == 0x85 { return 2 }
            if bytes[j] == 0xE2 && at(j + 1) == 0x80 && (at(j + 2) == 0xA8 || at(j + 2) == 0xA9) { return 3 }
            return 0
        }
        /// Whether `c` ends a value for toml++ (whitespace, `]`, `}`, `,`, `#`; any non-ASCII byte
        /// counts, as it might start Unicode whitespace).
        func endsValue(_ c: UInt8) -> Bool {
            c == space || c == tab || (c >= 0x0A && c <= 0x0D) || c == UInt8(ascii: "]") || c == UInt8(ascii: "}")
                || c == UInt8(ascii: ",") || c == UInt8(ascii: "#") || c >= 0x80
        }
        /// For a token starting at `j` with a digit that toml++ would read as a date whose time is
        /// separated by a space (ten characters, underscores not counted, with `-` at 4 and 7)
        /// followed by a space, one digit and the end of the value: where that digit is. toml++
        /// then scans on from the end of the value, which it asserts it never does.
        func dateThenLoneDigit(at j: Int) -> Int? {
            guard bytes[j] >= 0x30 && bytes[j] <= 0x39, j == 0 || endsValue(bytes[j - 1]) || bytes[j - 1] == UInt8(ascii: "=")
                    || bytes[j - 1] == UInt8(ascii: "[") || bytes[j - 1] == UInt8(ascii: "{") else { return nil }
            var k = j
            var token: [UInt8] = []
            while let d = at(k), !endsValue(d), token.count <= 10 {  // quotes too, as toml++ scans
                if d != UInt8(ascii: "_") { token.append(d) }
                k += 1
            }
            guard token.count == 10, token[4] == UInt8(ascii: "-"), token[7] == UInt8(ascii: "-"),
                  at(k) == space, let digit = at(k + 1), digit >= 0x30 && digit <= 0x39, let next = at(k + 2), endsValue(next)
            else { return nil }
            return k + 1
        }
        /// A value (or the start of one) seen: the innermost array no longer expects one.
        func valueSeen() {
            statementStart = false
            if let last = open.indices.last, open[last].isArray { open[last].expectingValue = false }
        }
        /// Skips a string starting at `i` (its quote), counting the lines it spans.
        func skipString() {
            let delimiter = bytes[i]
            let multiline = at(i + 1) == delimiter && at(i + 2) == delimiter
            i += multiline ? 3 : 1
            while i < bytes.count {
                let c = bytes[i]
                if c == backslash && delimiter == quote {
                    if at(i + 1) == newline { line += 1; lineStart = i + 2 }
                    i += 2
                    continue
                }
                if c == newline {
                    if !multiline { return }  // unterminated: toml++ reports it
                    line += 1
                    lineStart = i + 1
                }
                if c == delimiter {
                    if !multiline { i += 1; return }
                    if at(i + 1) == delimiter && at(i + 2) == delimiter {
                        i += 3
                        // A closing delimiter may follow up to two quotes of the content.
                        for _ in 0..<2 where at(i) == delimiter { i += 1 }
                        return
                    }
                }
                i += 1
            }
        }
        while i < bytes.count {
            let c = bytes[i]
            switch c {
            case newline:
                line += 1
                lineStart = i + 1
                if open.isEmpty { statementStart = true }
                i += 1
            case space, tab, UInt8(ascii: "\r"):
                i += 1
            case UInt8(ascii: "#"):
                while i < bytes.count && bytes[i] != newline { i += 1 }
            case quote, apostrophe:
                valueSeen()
                skipString()
            case UInt8(ascii: "[") where open.isEmpty && statementStart:
                // As parse_table_header: '[', spaces and tabs, a second '[' only right after the first.
                var j = i + 1
                let afterFirst = j
                while let d = at(j), d == space || d == tab { j += 1 }
                if at(j) == UInt8(ascii: "[") && j == afterFirst {
                    j += 1
                    while let d = at(j), d == space || d == tab { j += 1 }
                }
                if let d = at(j), !isKeyStart(d) && d != UInt8(ascii: "]") {
                    return problem(at: j, "a table header must start with a name (a bare key or a quoted one), saw \(describe(j))")
                }
                statementStart = false
                i = j
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                valueSeen()
                open.append((isArray: c == UInt8(ascii: "["), expectingValue: true))
                i += 1
            case UInt8(ascii: "}") where open.last.map { $0.isArray && $0.expectingValue } == true:
                return problem(at: i, "expected a value or ']' in the array, saw '}'")
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                if !open.isEmpty { open.removeLast() }
                valueSeen()
                i += 1
            case UInt8(ascii: ","):
                if let last = open.indices.last, open[last].isArray { open[last].expectingValue = true }
                i += 1
            default:
                if lineSeparator(at: i) > 0 {
                    return problem(at: i, "a Unicode line separator outside a string (TOML breaks lines with \\n or \\r\\n only)")
                }
                if let digit = dateThenLoneDigit(at: i) {
                    return problem(at: digit, "a date followed by a space and a lone digit (a date and time is written 1979-05-27 07:32:00)")
                }
                valueSeen()
                i += 1
            }
        }
        return nil
    }
}
