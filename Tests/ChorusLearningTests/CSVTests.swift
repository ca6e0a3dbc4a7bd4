import Testing
import ChorusLearning

@Test("a CSV with a header, CRLF endings and blank lines loads")
func csvLoads() throws {
    try withTemporaryFile("a,b,label\r\n1,2,0\r\n\r\n3.5, -4e-1 ,2\r\n") { path in
        let d = try Dataset.loadCSV(path: path)
        #expect(d.count == 2 && d.featureCount == 2)
        #expect(d.classCount == 3)  // inferred: largest label + 1
        #expect(d.features == [1, 2, 3.5, -0.4])
        #expect(d.labels == [0, 2])
        #expect(try Dataset.loadCSV(path: path, classCount: 10).classCount == 10)
    }
}

@Test("a CSV without a header keeps its first row")
func csvNoHeader() throws {
    let d = try Dataset.parseCSV("0,1,1\n2,3,0\n")
    #expect(d.count == 2 && d.labels == [1, 0])
}

/// Each case: file contents, then the line and column the error must name and its reason.
struct CSVErrorCase: Sendable, CustomTestStringConvertible {
    let name: String
    let contents: String
    let classCount: Int?
    let line: Int?
    let column: Int?
    let reason: CSVError.Reason
    var testDescription: String { name }
}

let csvErrorCases: [CSVErrorCase] = [
    .init(name: "too many columns", contents: "1,2,0\n3,4,5,1\n", classCount: nil, line: 2, column: 4,
          reason: .wrongColumnCount(expected: 3, got: 4)),
    .init(name: "too few columns", contents: "x,y,label\n1,2,0\n\n3,1\n", classCount: nil, line: 4, column: 3,
          reason: .wrongColumnCount(expected: 3, got: 2)),
    .init(name: "non-numeric feature", contents: "1,2,0\n3,abc,1\n", classCount: nil, line: 2, column: 2,
          reason: .notNumeric("abc")),
    .init(name: "empty feature", contents: "1,2,0\n,4,1\n", classCount: nil, line: 2, column: 1,
          reason: .notNumeric("")),
    .init(name: "NaN feature", contents: "1,2,0\nnan,4,1\n", classCount: nil, line: 2, column: 1,
          reason: .notFinite("nan")),
    .init(name: "infinite feature", contents: "1,2,0\n1,2,0\n5,-inf,1\n", classCount: nil, line: 3, column: 2,
          reason: .notFinite("-inf")),
    .init(name: "overflowing feature", contents: "1,1e39,0\n", classCount: nil, line: 1, column: 2,
          reason: .notFinite("1e39")),
    .init(name: "negative label", contents: "1,2,0\n3,4,-1\n", classCount: nil, line: 2, column: 3,
          reason: .invalidLabel("-1")),
    .init(name: "fractional label", contents: "1,2,0.5\n", classCount: nil, line: 1, column: 3,
          reason: .invalidLabel("0.5")),
    .init(name: "non-numeric label", contents: "h1,h2,h3\n1,2,cat\n", classCount: nil, line: 2, column: 3,
          reason: .notNumeric("cat")),
    .init(name: "label beyond the class count", contents: "1,2,0\n3,4,10\n", classCount: 10, line: 2, column: 3,
          reason: .labelOutOfRange(label: 10, classCount: 10)),
    .init(name: "only a label column", contents: "1\n2\n", classCount: nil, line: 1, column: nil,
          reason: .tooFewColumns(1)),
    .init(name: "only a header", contents: "a,b,label\n\n", classCount: nil, line: nil, column: nil,
          reason: .noRows),
    .init(name: "empty file", contents: "", classCount: nil, line: nil, column: nil, reason: .noRows),
]

@Test("CSV errors name the file, line and column", arguments: csvErrorCases)
func csvErrors(_ c: CSVErrorCase) throws {
    try withTemporaryFile(c.contents) { path in
        do throws(CSVError) {
            _ = try Dataset.loadCSV(path: path, classCount: c.classCount)
            Issue.record("loaded a bad file")
        } catch {
            #expect(error.file == path)
            #expect(error.line == c.line)
            #expect(error.column == c.column)
            #expect(error.reason == c.reason)
            #expect(error.description.hasPrefix(path))
            if let line = c.line { #expect(error.description.contains("line \(line)")) }
            if let column = c.column { #expect(error.description.contains("column \(column)")) }
        }
    }
}

@Test("a missing file is reported by name")
func csvMissingFile() {
    do throws(CSVError) {
        _ = try Dataset.loadCSV(path: "/nonexistent/chorus/data.csv")
        Issue.record("loaded a missing file")
    } catch {
        #expect(error.line == nil)
        #expect(error.description.contains("/nonexistent/chorus/data.csv"))
        #expect(error.description.contains("no such file"))
    }
}

@Test("the error message reads as file:line:column")
func csvErrorMessage() {
    let e = CSVError(file: "d.csv", line: 7, column: 3, reason: .notNumeric("x"))
    #expect(e.description == "d.csv:7:3: line 7, column 3: \"x\" is not a number")
}
