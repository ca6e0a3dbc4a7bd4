import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Progress on standard error for long work. On a terminal, transient lines ("412 of 2000
/// seeds…") overwrite each other in place. In a log file or a pipe there is no `\r`: a
/// transient line is written in full, at most one every `logInterval` seconds, so a log shows a
/// readable trace of the run instead of one line per update or a single line of carriage returns.
enum Progress {
    static let logInterval: Double = 10
    private nonisolated(unsafe) static var pendingNewline = false
    private nonisolated(unsafe) static var lastLogged = -Double.infinity

    /// Standard error is a terminal (checked each time: tests redirect it).
    static var onTerminal: Bool { isatty(STDERR_FILENO) != 0 }

    static func line(_ text: String, transient: Bool) {
        let tty = onTerminal
        if transient && !tty {
            let now = Date().timeIntervalSinceReferenceDate
            guard now - lastLogged >= logInterval else { return }
            lastLogged = now
        }
        var out = ""
        if tty && pendingNewline && !transient { out += "\r\u{1B}[K" }
        if text.isEmpty {
            if tty && pendingNewline { out += "\n" }
            pendingNewline = false
        } else if transient && tty {
            out += "\r\u{1B}[K" + text
            pendingNewline = true
        } else {
            out += text + "\n"
            pendingNewline = false
        }
        FileHandle.standardError.write(Data(out.utf8))
    }

    /// Ends a run of transient lines: the next output starts on a line of its own.
    static func finish() { line("", transient: false) }
}
