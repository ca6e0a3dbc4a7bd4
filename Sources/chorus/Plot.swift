import Foundation

/// Draws `DIR/convergence.png` with `scripts/plot.py` at the end of a run, when the script and
/// matplotlib are there; otherwise says how to draw it later. Never fails the run.
enum Plot {
    static func draw(_ directory: String) {
        if ProcessInfo.processInfo.environment["CHORUS_PLOT"] == "off" { return }  // benchmarks time the run alone
        guard let script = locateScript() else {
            return note("no plot: scripts/plot.py not found next to this chorus (run it from the repository: scripts/plot.py \(directory))")
        }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", script, directory]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = output
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { return note("no plot: cannot run python3 (\(error)); draw it later with scripts/plot.py \(directory)") }
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        switch process.terminationStatus {
        case 0: print("drew \(directory)/convergence.png")
        case 3: note("no plot: matplotlib is missing (\(text.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: "\n").last ?? "")); then scripts/plot.py \(directory)")
        default: note("no plot: scripts/plot.py \(directory) failed:\n\(text)")
        }
    }

    /// `CHORUS_PLOT` if set (a path, or "off" for no plot), else scripts/plot.py in the current directory or above the executable
    /// (.build/…/chorus inside a clone of the repository).
    static func locateScript() -> String? {
        if let path = ProcessInfo.processInfo.environment["CHORUS_PLOT"] {
            return FileManager.default.fileExists(atPath: path) ? path : nil
        }
        var candidates = [FileManager.default.currentDirectoryPath + "/scripts/plot.py"]
        var dir = URL(fileURLWithPath: (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0])
        for _ in 0..<6 {
            dir.deleteLastPathComponent()
            candidates.append(dir.path + "/scripts/plot.py")
        }
        return candidates.first { FileManager.default.fileExists(atPath: $0) }
    }

    private static func note(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
