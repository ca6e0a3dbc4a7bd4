import Foundation
import ChorusLearning

/// Runs `body` with the path of a fresh file holding `contents`, then deletes the file.
func withTemporaryFile<T>(_ contents: String, _ body: (String) throws -> T) throws -> T {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("chorus-learning-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let url = dir.appendingPathComponent("data.csv")
    try contents.write(to: url, atomically: true, encoding: .utf8)
    return try body(url.path)
}

/// The digits with the 80/20 split every test and figure in docs/learning.md uses.
func digitsSplit() throws -> (train: Dataset, test: Dataset) {
    try Dataset.digits().split(testFraction: 0.2, seed: 1)
}

/// Fraction of a shard taken by its most common class (1 = a single class; 1/classCount = even).
func maxClassFraction(_ shard: Dataset) -> Double {
    Double(shard.classCounts.max()!) / Double(shard.count)
}
