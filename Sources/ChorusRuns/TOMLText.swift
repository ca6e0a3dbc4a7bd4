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
    /// the line. The `config` and `schedule` libFuzzer targets (docs/security.md, "Fuzzing with
    /// libFuzzer") found four such assertions one after the other:
    /// - a table header without a name: `[[` then a line break, `[=`, `[[[x]]` ("Assertion
    ///   `is_bare_key_character(*cp) || is_string_delimiter(*cp)' failed"; fixed upstream after
    ///   3.4.0, marzer/tomlplusplus#301);
    /// - an array whose next value starts with `}` (`a = [}`: "`!is_value_terminator(*cp)'");
    /// - a date, a space and one digit (`at = 1979-05-27 7`: the same, in the date-time scan);
    /// - a date, a `T` and no digit (`at = 1979-05-27T)`: "`is_decimal_digit(*cp)'" in parse_time);
    /// - a number followed at once by a non-ASCII character (`ct = 8` then U+5C2DE: the first
    ///   again, found later by the `schedule` target: this check had taken any non-ASCII byte
    ///   for the end of a value, and toml++ does not).
    /// The last two live in toml++'s number and date scanner, so rather than chase its shapes one
    /// by one, every bare value (what is neither a string, an array nor an inline table) must be
    /// TOML 1.0's boolean, integer, float, date or time syntax before toml++ reads it. Everything
    /// refused here is invalid TOML anyway; valid documents reach toml++ unchanged.
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

    /// The first place where toml++ 3.4.0 could reach a failing assertion, nil when there is none:
    /// a table header (a `[` or `[[` where a statement starts) whose name does not start with a
    /// bare-key character, a quote or `]`, as `parse_table_header` reads it; an array's value
    /// (right after `[` or `,`) starting with `}`; a bare value that is not a TOML boolean,
    /// number, date or time; a Unicode line separator (U+0085, U+2028, U+2029) outside strings
    /// and comments, where TOML allows none. Strings, comments, keys, arrays and inline tables
    /// are followed so that a `[` inside a value is not taken for a header and a key is not taken
    /// for a value. What follows another syntax error does not matter: toml++ stops at the first.
    static func assertionTrigger(in bytes: [UInt8]) -> TOMLSyntaxError? {
        let quote = UInt8(ascii: "\""), apostrophe = UInt8(ascii: "'"), backslash = UInt8(ascii: "\\")
        let newline = UInt8(ascii: "\n"), space = UInt8(ascii: " "), tab = UInt8(ascii: "\t")
        // toml++ skips a byte-order mark at the start.
        let start = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        var i = start, line = 1, lineStart = start
        /// What a bare token here would be: a key (statement start, in an inline table after `{`
        /// or `,`), a value (after `=`, in an array after `[` or `,`), or neither (after a value).
        enum Expect { case key, value, other }
        var expect = Expect.key
        var statementStart = true
        /// Arrays (true) and inline tables (false) open in the current value, innermost last.
        var open: [Bool] = []
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
        /// Whether `c` ends a value (whitespace, `]`, `}`, `,`, `#`). A non-ASCII byte does not:
        /// TOML 1.0 has no other whitespace, so a bare value running into one is refused whole
        /// (toml++ may take some Unicode spaces for whitespace, but asserts on other characters).
        func endsValue(_ c: UInt8) -> Bool {
            c == space || c == tab || (c >= 0x0A && c <= 0x0D) || c == UInt8(ascii: "]") || c == UInt8(ascii: "}")
                || c == UInt8(ascii: ",") || c == UInt8(ascii: "#")
        }
        /// Length of a U+0085, U+2028 or U+2029 at `j` (UTF-8), 0 for anything else.
        func lineSeparator(at j: Int) -> Int {
            if bytes[j] == 0xC2 && at(j + 1) == 0x85 { return 2 }
            if bytes[j] == 0xE2 && at(j + 1) == 0x80 && (at(j + 2) == 0xA8 || at(j + 2) == 0xA9) { return 3 }
            return 0
        }
        /// A value ended: what may follow it.
        func valueDone() { expect = .other }
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
                if open.isEmpty { (statementStart, expect) = (true, .key) }
                i += 1
            case space, tab, UInt8(ascii: "\r"):
                i += 1
            case UInt8(ascii: "#"):
                while i < bytes.count && bytes[i] != newline { i += 1 }
            case quote, apostrophe:
                statementStart = false
                if expect == .value { valueDone() }  // a quoted key stays a key
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
                (statementStart, expect) = (false, .other)  // the name, then a new line
                i = j
            case UInt8(ascii: "["), UInt8(ascii: "{"):
                statementStart = false
                open.append(c == UInt8(ascii: "["))
                expect = c == UInt8(ascii: "[") ? .value : .key
                i += 1
            case UInt8(ascii: "}") where open.last == true && expect == .value:
                return problem(at: i, "expected a value or ']' in the array, saw '}'")
            case UInt8(ascii: "]"), UInt8(ascii: "}"):
                if !open.isEmpty { open.removeLast() }
                valueDone()
                i += 1
            case UInt8(ascii: ","):
                if let array = open.last { expect = array ? .value : .key }
                i += 1
            case UInt8(ascii: "="):
                if expect == .key { expect = .value }
                i += 1
            default:
                if lineSeparator(at: i) > 0 {
                    return problem(at: i, "a Unicode line separator outside a string (TOML breaks lines with \\n or \\r\\n only)")
                }
                statementStart = false
                guard expect == .value else {
                    i += 1
                    continue
                }
                // A bare value: up to the next whitespace, ']', '}', ',' or '#', as toml++ scans
                // it; a date followed by a space and a digit takes the time after the space.
                var end = i
                while let d = at(end), !endsValue(d) { end += 1 }
                if isDate(bytes[i..<end]), at(end) == space, let d = at(end + 1), isDigit(d) {
                    end += 1
                    while let d = at(end), !endsValue(d) { end += 1 }
                }
                let token = bytes[i..<end]
                guard isBareValue(token) else {
                    let shown = String(decoding: token.prefix(40), as: UTF8.self)
                    return problem(at: i, "\"\(shown)\" is not a TOML value (a string needs quotes; numbers, booleans, dates and times are written as in 1200, 0.5, true, 1979-05-27 07:32:00)")
                }
                valueDone()
                i = end
            }
        }
        return nil
    }

    // MARK: TOML 1.0's bare values

    static func isDigit(_ c: UInt8) -> Bool { c >= 0x30 && c <= 0x39 }

    /// Digits of one kind, underscores only between two of them.
    static func isDigitRun(_ s: ArraySlice<UInt8>, _ digit: (UInt8) -> Bool) -> Bool {
        guard let first = s.first, let last = s.last, digit(first), digit(last) else { return false }
        var previousUnderscore = false
        for c in s {
            if c == UInt8(ascii: "_") {
                if previousUnderscore { return false }
                previousUnderscore = true
            } else if digit(c) {
                previousUnderscore = false
            } else {
                return false
            }
        }
        return true
    }

    /// `true`, `false`, an integer (decimal, 0x, 0o, 0b), a float (with `inf` and `nan`), an
    /// offset or local date-time, a local date or a local time, exactly as TOML 1.0 writes them.
    static func isBareValue(_ s: ArraySlice<UInt8>) -> Bool {
        if s.elementsEqual("true".utf8) || s.elementsEqual("false".utf8) { return true }
        var body = s
        let signed = body.first == UInt8(ascii: "+") || body.first == UInt8(ascii: "-")
        if signed { body = body.dropFirst() }
        if body.elementsEqual("inf".utf8) || body.elementsEqual("nan".utf8) { return true }
        if !signed, body.count > 2, body.first == UInt8(ascii: "0") {
            let rest = body.dropFirst(2)
            switch body[body.startIndex + 1] {
            case UInt8(ascii: "x"):
                return isDigitRun(rest) { isDigit($0) || ($0 >= 0x61 && $0 <= 0x66) || ($0 >= 0x41 && $0 <= 0x46) }
            case UInt8(ascii: "o"): return isDigitRun(rest) { $0 >= 0x30 && $0 <= 0x37 }
            case UInt8(ascii: "b"): return isDigitRun(rest) { $0 == 0x30 || $0 == 0x31 }
            default: break
            }
        }
        if isDecimal(body) { return true }
        return !signed && isDateTime(s)
    }

    /// An integer or float: int part (no leading zero) then optionally `.digits`, then optionally
    /// `e`/`E`, a sign and digits.
    static func isDecimal(_ s: ArraySlice<UInt8>) -> Bool {
        let dot = s.firstIndex(of: UInt8(ascii: "."))
        let e = s.firstIndex { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
        let intEnd = dot ?? e ?? s.endIndex
        let intPart = s[..<intEnd]
        guard isDigitRun(intPart, isDigit), intPart.count == 1 || intPart.first != UInt8(ascii: "0") else { return false }
        if let dot {
            guard e.map({ $0 > dot }) ?? true else { return false }
            guard isDigitRun(s[(dot + 1)..<(e ?? s.endIndex)], isDigit) else { return false }
        }
        if let e {
            var exponent = s[(e + 1)...]
            if exponent.first == UInt8(ascii: "+") || exponent.first == UInt8(ascii: "-") { exponent = exponent.dropFirst() }
            guard isDigitRun(exponent, isDigit) else { return false }
        }
        return true
    }

    /// Exactly `count` digits.
    static func isDigits(_ s: ArraySlice<UInt8>, _ count: Int) -> Bool { s.count == count && s.allSatisfy(isDigit) }

    /// YYYY-MM-DD.
    static func isDate(_ s: ArraySlice<UInt8>) -> Bool {
        let b = s.startIndex
        return s.count == 10 && isDigits(s[b..<b + 4], 4) && s[b + 4] == UInt8(ascii: "-") && isDigits(s[(b + 5)..<(b + 7)], 2)
            && s[b + 7] == UInt8(ascii: "-") && isDigits(s[(b + 8)..<(b + 10)], 2)
    }

    /// HH:MM:SS with an optional fraction, then, if `offset`, an optional Z or ±HH:MM.
    static func isTime(_ s: ArraySlice<UInt8>, offset: Bool) -> Bool {
        let b = s.startIndex
        guard s.count >= 8, isDigits(s[b..<b + 2], 2), s[b + 2] == UInt8(ascii: ":"), isDigits(s[(b + 3)..<(b + 5)], 2),
              s[b + 5] == UInt8(ascii: ":"), isDigits(s[(b + 6)..<(b + 8)], 2) else { return false }
        var rest = s[(b + 8)...]
        if rest.first == UInt8(ascii: ".") {
            let digits = rest.dropFirst().prefix(while: isDigit)
            guard !digits.isEmpty else { return false }
            rest = rest[digits.endIndex...]
        }
        if rest.isEmpty { return true }
        guard offset else { return false }
        if rest.elementsEqual([UInt8(ascii: "Z")]) || rest.elementsEqual([UInt8(ascii: "z")]) { return true }
        let r = rest.startIndex
        return rest.count == 6 && (rest[r] == UInt8(ascii: "+") || rest[r] == UInt8(ascii: "-")) && isDigits(rest[(r + 1)..<(r + 3)], 2)
            && rest[r + 3] == UInt8(ascii: ":") && isDigits(rest[(r + 4)..<(r + 6)], 2)
    }

    /// A local date, a local time, or a date, `T`, `t` or a space, and a time with an optional offset.
    static func isDateTime(_ s: ArraySlice<UInt8>) -> Bool {
        let b = s.startIndex
        if s.count >= 10, isDate(s[b..<b + 10]) {
            if s.count == 10 { return true }
            let separator = s[b + 10]
            guard separator == UInt8(ascii: "T") || separator == UInt8(ascii: "t") || separator == UInt8(ascii: " ") else { return false }
            return isTime(s[(b + 11)...], offset: true)
        }
        return isTime(s, offset: false)
    }
}
