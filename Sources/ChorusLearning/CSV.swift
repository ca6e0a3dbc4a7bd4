import Foundation  // only to read the file's bytes

/// A CSV file that could not be loaded, naming the file and, where there is one, the 1-based line
/// and column, so that a user can go straight to the bad cell.
public struct CSVError: Error, Equatable, CustomStringConvertible {
    public enum Reason: Equatable, Sendable {
        case unreadable(String)
        /// No data rows (blank, or only a header).
        case noRows
        /// A row needs at least one feature and the label.
        case tooFewColumns(Int)
        case wrongColumnCount(expected: Int, got: Int)
        case notNumeric(String)
        case notFinite(String)
        /// The label must be a non-negative integer.
        case invalidLabel(String)
        case labelOutOfRange(label: Int, classCount: Int)
        /// The caller's classCount was not positive.
        case invalidClassCount(Int)
    }

    public let file: String
    public let line: Int?
    public let column: Int?
    public let reason: Reason

    public init(file: String, line: Int?, column: Int?, reason: Reason) {
        self.file = file
        self.line = line
        self.column = column
        self.reason = reason
    }

    public var description: String {
        var place = file
        if let line { place += ":\(line)" }
        if let column { place += ":\(column)" }
        let where_ = (line.map { "line \($0)" } ?? "") + (column.map { ", column \($0)" } ?? "")
        let message: String = switch reason {
        case .unreadable(let why): "cannot read the file: \(why)"
        case .noRows: "no data rows"
        case .tooFewColumns(let n): "a row needs at least one feature and a label, found \(n) column\(n == 1 ? "" : "s")"
        case .wrongColumnCount(let expected, let got): "expected \(expected) columns, found \(got)"
        case .notNumeric(let text): "\"\(text)\" is not a number"
        case .notFinite(let text): "\"\(text)\" is not a finite number"
        case .invalidLabel(let text): "label \"\(text)\" is not a non-negative integer"
        case .labelOutOfRange(let label, let classCount): "label \(label) is outside 0..<\(classCount)"
        case .invalidClassCount(let n): "classCount must be positive, got \(n)"
        }
        return where_.isEmpty ? "\(place): \(message)" : "\(place): \(where_): \(message)"
    }
}

extension Dataset {
    /// Largest label accepted when the class count is inferred: a stray "1e9" label must not make
    /// every model allocate a billion outputs.
    public static let maxInferredClassCount = 100_000

    /// Loads rows of `feature,…,feature,label`. The first line is taken as a header and skipped if
    /// any of its fields is not a number; blank lines are skipped; `\r\n` endings are accepted.
    /// Every row must have the same number of columns, every feature must be a finite number and
    /// every label a non-negative integer below `classCount` (inferred as largest label + 1 when nil).
    /// Features are not rescaled.
    public static func loadCSV(path: String, classCount: Int? = nil) throws(CSVError) -> Dataset {
        let name = path
        guard FileManager.default.fileExists(atPath: path) else {
            throw CSVError(file: name, line: nil, column: nil, reason: .unreadable("no such file"))
        }
        guard let data = FileManager.default.contents(atPath: path) else {
            throw CSVError(file: name, line: nil, column: nil, reason: .unreadable("permission denied or not a regular file"))
        }
        return try parseCSV(bytes: [UInt8](data), name: name, classCount: classCount)
    }

    /// `loadCSV` for text already in memory; `name` is used in error messages.
    public static func parseCSV(_ text: String, name: String = "<text>", classCount: Int? = nil) throws(CSVError) -> Dataset {
        try parseCSV(bytes: Array(text.utf8), name: name, classCount: classCount)
    }

    static func parseCSV(bytes: [UInt8], name: String, classCount: Int?) throws(CSVError) -> Dataset {
        if let classCount, classCount <= 0 {
            throw CSVError(file: name, line: nil, column: nil, reason: .invalidClassCount(classCount))
        }
        var columns: Int? = nil
        var features: [Float] = []
        var labels: [Int] = []
        var fields: [ArraySlice<UInt8>] = []
        var lineNumber = 0
        var sawFirstLine = false
        // A UTF-8 byte-order mark would otherwise make the first row look like a header.
        var lineStart = bytes.starts(with: [0xEF, 0xBB, 0xBF]) ? 3 : 0
        while lineStart < bytes.count {
            var lineEnd = lineStart
            while lineEnd < bytes.count && bytes[lineEnd] != UInt8(ascii: "\n") { lineEnd += 1 }
            defer { lineStart = lineEnd + 1 }
            lineNumber += 1
            let line = trim(bytes[lineStart..<lineEnd])
            if line.isEmpty { continue }
            fields.removeAll(keepingCapacity: true)
            var fieldStart = line.startIndex
            for i in line.indices where line[i] == UInt8(ascii: ",") {
                fields.append(trim(line[fieldStart..<i]))
                fieldStart = i + 1
            }
            fields.append(trim(line[fieldStart..<line.endIndex]))

            if !sawFirstLine {
                sawFirstLine = true
                guard fields.count >= 2 else {
                    throw CSVError(file: name, line: lineNumber, column: nil, reason: .tooFewColumns(fields.count))
                }
                columns = fields.count
                if fields.contains(where: { Double(text($0)) == nil }) { continue }  // a header
            }
            guard fields.count == columns else {
                // The column named is the first one missing or the first one too many.
                throw CSVError(file: name, line: lineNumber, column: min(columns!, fields.count) + 1,
                               reason: .wrongColumnCount(expected: columns!, got: fields.count))
            }
            for (j, field) in fields.dropLast().enumerated() {
                let s = text(field)
                guard let value = Float(s) else {
                    throw CSVError(file: name, line: lineNumber, column: j + 1, reason: .notNumeric(s))
                }
                guard value.isFinite else {
                    throw CSVError(file: name, line: lineNumber, column: j + 1, reason: .notFinite(s))
                }
                features.append(value)
            }
            let s = text(fields[fields.count - 1])
            let labelColumn = fields.count
            guard let value = Double(s) else {
                throw CSVError(file: name, line: lineNumber, column: labelColumn, reason: .notNumeric(s))
            }
            guard value.isFinite else {
                throw CSVError(file: name, line: lineNumber, column: labelColumn, reason: .notFinite(s))
            }
            guard value >= 0, value == value.rounded(), value < Double(maxInferredClassCount) else {
                throw CSVError(file: name, line: lineNumber, column: labelColumn, reason: .invalidLabel(s))
            }
            let label = Int(value)
            if let classCount, label >= classCount {
                throw CSVError(file: name, line: lineNumber, column: labelColumn, reason: .labelOutOfRange(label: label, classCount: classCount))
            }
            labels.append(label)
        }
        guard let columns, !labels.isEmpty else {
            throw CSVError(file: name, line: nil, column: nil, reason: .noRows)
        }
        let classes = classCount ?? (labels.max()! + 1)
        return Dataset(unchecked: columns - 1, classCount: classes, features: features, labels: labels)
    }

    private static func trim(_ s: ArraySlice<UInt8>) -> ArraySlice<UInt8> {
        var a = s.startIndex, b = s.endIndex
        func isSpace(_ c: UInt8) -> Bool { c == 0x20 || c == 0x09 || c == 0x0D }
        while a < b && isSpace(s[a]) { a += 1 }
        while b > a && isSpace(s[b - 1]) { b -= 1 }
        return s[a..<b]
    }

    private static func text(_ s: ArraySlice<UInt8>) -> String { String(decoding: s, as: UTF8.self) }
}
