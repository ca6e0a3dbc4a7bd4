import ChorusRuns
import Foundation
import TOMLKit

extension LocalNetwork {
    /// A machine (or a network namespace standing for one) that runs some of the peers, and how
    /// to reach it: `chorus experiment --hosts FILE` (format: docs/multi-machine.md) or
    /// `--netns NAME@ADDRESS`.
    public struct Host: Sendable, Equatable {
        /// Put for `{host}` in `shell` and `directory` (an ssh destination, a namespace).
        public var name: String
        /// The address its peers bind and advertise, and where their admin endpoints are polled.
        public var address: String
        /// The command line that runs a shell command there: `{host}` is replaced by `name` and
        /// `{command}` by the command, as one argument (appended when the template has none):
        /// "ssh {host}" (the default), "ip netns exec {host} sh -c {command}".
        public var shell: String
        /// Where the run's files go on it (a subdirectory per run, removed at the end), `{host}`
        /// replaced. Nil: this machine's files are its files (a namespace here), nothing is
        /// copied and the shell must exec its arguments (`ip netns exec {host}`).
        public var directory: String?
        /// The chorus binary on it; nil: this binary is copied into the run's directory.
        public var binary: String?

        public init(name: String, address: String, shell: String = Host.defaultShell, directory: String? = Host.defaultDirectory,
                    binary: String? = nil) {
            self.name = name
            self.address = address
            self.shell = shell
            self.directory = directory
            self.binary = binary
        }

        public static let defaultShell = "ssh {host}"
        public static let defaultDirectory = "/tmp"

        /// `--netns NAME@ADDRESS`: a namespace on this machine, sharing its files.
        public init?(parsing text: String) {
            let parts = text.split(separator: "@", omittingEmptySubsequences: false)
            guard parts.count == 2, !parts[0].isEmpty, !parts[1].isEmpty else { return nil }
            self.init(name: String(parts[0]), address: String(parts[1]), shell: "ip netns exec {host}", directory: nil, binary: nil)
        }

        /// Files are copied to it (a machine of its own) rather than shared with this one.
        public var isRemote: Bool { directory != nil }

        /// The argument vector that runs `command` there.
        public func argv(_ command: String) -> [String] {
            var words = shell.split(separator: " ").map { $0 == "{host}" ? name : String($0).replacingOccurrences(of: "{host}", with: name) }
            if let slot = words.firstIndex(of: "{command}") { words[slot] = command } else { words.append(command) }
            return words
        }

        /// The argument vector that execs `arguments` there directly (hosts sharing this machine's files).
        func execArgv(_ arguments: [String]) -> [String] {
            shell.split(separator: " ").filter { $0 != "{command}" }.map { String($0).replacingOccurrences(of: "{host}", with: name) } + arguments
        }

        /// Its directory for the run named `run`, nil for a host sharing this machine's files.
        func runDirectory(_ run: String) -> String? {
            directory.map { $0.replacingOccurrences(of: "{host}", with: name) + "/" + run }
        }

        /// Runs `command` there and waits (at most `timeout` seconds); `input` goes to its standard input.
        @discardableResult
        public func run(_ command: String, input: Data? = nil, timeout: Double = 30) throws -> (status: Int32, output: String) {
            try Self.execute(argv(command), input: input, timeout: timeout)
        }

        static func execute(_ argv: [String], input: Data? = nil, timeout: Double) throws -> (status: Int32, output: String) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            process.arguments = argv
            // Output into a file, not a pipe: a pipe nobody reads while the command runs fills up.
            let outputPath = NSTemporaryDirectory() + "chorus-host-\(getpid())-\(UInt64.random(in: 0...UInt64.max))"
            guard FileManager.default.createFile(atPath: outputPath, contents: nil), let output = FileHandle(forWritingAtPath: outputPath) else {
                throw StartupError("cannot create \(outputPath)")
            }
            defer { try? FileManager.default.removeItem(atPath: outputPath) }
            process.standardOutput = output
            process.standardError = output
            let pipe = Pipe()
            process.standardInput = input == nil ? FileHandle.nullDevice : pipe
            try process.run()
            try? output.close()
            if let input {
                pipe.fileHandleForWriting.write(input)
                try? pipe.fileHandleForWriting.close()
            }
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning && Date() < deadline { usleep(10_000) }
            if process.isRunning {
                process.terminate()
                process.waitUntilExit()
                throw StartupError("`\(argv.joined(separator: " ").prefix(200))` did not finish within \(Int(timeout)) s")
            }
            let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
            return (process.terminationStatus, text.trimmingCharacters(in: .whitespacesAndNewlines))
        }

        /// Reads a hosts file: defaults for `shell`, `directory` and `binary` at the top, then one
        /// `[[host]]` per machine with its `name` and `address` (and any default overridden).
        public static func load(path: String) throws(ConfigError) -> [Host] {
            guard let data = FileManager.default.contents(atPath: path), data.count <= PeerConfig.maxFileBytes,
                  let text = String(data: data, encoding: .utf8) else {
                throw ConfigError(file: path, field: nil, FileManager.default.fileExists(atPath: path) ? "cannot read the file (or it is over \(PeerConfig.maxFileBytes) bytes of UTF-8)" : "no such file")
            }
            let root: TOMLTable
            do { root = try TOMLText.parse(text) } catch { throw ConfigError(file: path, field: nil, error.description) }
            var top = TableReader(file: path, table: root, prefix: "")
            func settings(_ t: inout TableReader, _ inherited: (shell: String, directory: String?, binary: String?)) throws(ConfigError)
                -> (shell: String, directory: String?, binary: String?) {
                let shell = try t.optionalString("shell") ?? inherited.shell
                guard shell.split(separator: " ").first.map({ !$0.contains("{") }) == true else {
                    throw ConfigError(file: path, field: t.prefix + "shell", "expected a command line such as \"ssh {host}\" or \"ip netns exec {host} sh -c {command}\", got \"\(shell)\"")
                }
                var directory = inherited.directory
                if let d = try t.optionalString("directory") {
                    guard d.hasPrefix("/") else { throw ConfigError(file: path, field: t.prefix + "directory", "expected an absolute path on the hosts, got \"\(d)\"") }
                    directory = d
                }
                var binary = inherited.binary
                if let b = try t.optionalString("binary") { binary = b == "copy" ? nil : b }
                return (shell, directory, binary)
            }
            let defaults = try settings(&top, (defaultShell, defaultDirectory, nil))
            var hosts: [Host] = []
            for var entry in try top.arrayOfTables("host") {
                let name = try entry.string("name")
                let address = try entry.string("address")
                guard !name.isEmpty, !name.contains(where: { $0.isWhitespace || $0 == "'" }) else {
                    throw ConfigError(file: path, field: entry.prefix + "name", "expected a host name without spaces or quotes, got \"\(name)\"")
                }
                guard HostPort(parsing: address + ":1") != nil, !address.contains(":") || address.hasPrefix("[") else {
                    throw ConfigError(file: path, field: entry.prefix + "address", "expected an IP address or host name (no port), got \"\(address)\"")
                }
                let s = try settings(&entry, defaults)
                try entry.finish()
                hosts.append(Host(name: name, address: address, shell: s.shell, directory: s.directory, binary: s.binary))
            }
            try top.finish()
            guard !hosts.isEmpty else { throw ConfigError(file: path, field: "host", "no [[host]] entries: give at least one, with name and address") }
            if let twice = Dictionary(grouping: hosts, by: \.name).first(where: { $0.value.count > 1 })?.key {
                throw ConfigError(file: path, field: "host", "the name \"\(twice)\" is given twice")
            }
            return hosts
        }
    }

    /// What was found on a host before the run: the binary's version and the clock's offset.
    public struct HostReport: Sendable, Codable, Equatable {
        public var name: String
        public var address: String
        /// Its clock minus this machine's, in seconds, measured as NTP does (the midpoint of the
        /// round trip); rounds are aligned to the wall clock, so peers whose clocks differ by a
        /// good part of the gossip interval mix late.
        public var clockOffset: Double
        public var roundTrip: Double
    }
}

/// A string as one word for `sh`.
func shellQuoted(_ text: String) -> String {
    "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
}
