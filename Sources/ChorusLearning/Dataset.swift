import Foundation  // only for Bundle.module (the bundled digits file)

/// A labelled classification dataset held as one contiguous row-major feature matrix, so that
/// models can read a row (or a whole mini-batch) as a single run of memory.
public struct Dataset: Sendable, Equatable {
    /// Features per row.
    public let featureCount: Int
    /// Labels are 0..<classCount. Kept explicitly (not inferred from the labels) because a peer's
    /// shard may lack some classes while its model still needs every output.
    public let classCount: Int
    /// Row-major `count × featureCount` matrix.
    public let features: [Float]
    /// One label per row.
    public let labels: [Int]

    /// Rows.
    public var count: Int { labels.count }

    /// A dataset from raw arrays, checked: every label in range, every feature finite, and the
    /// feature matrix exactly `labels.count × featureCount`.
    public init(featureCount: Int, classCount: Int, features: [Float], labels: [Int]) throws(DatasetError) {
        guard featureCount > 0 else { throw .invalidArgument("featureCount must be positive, got \(featureCount)") }
        guard classCount > 0 else { throw .invalidArgument("classCount must be positive, got \(classCount)") }
        guard features.count == labels.count * featureCount else {
            throw .invalidArgument("features has \(features.count) values; \(labels.count) rows × \(featureCount) features needs \(labels.count * featureCount)")
        }
        for (row, label) in labels.enumerated() where label < 0 || label >= classCount {
            throw .labelOutOfRange(row: row, label: label, classCount: classCount)
        }
        if let bad = features.firstIndex(where: { !$0.isFinite }) {
            throw .nonFiniteFeature(row: bad / featureCount, column: bad % featureCount)
        }
        self.init(unchecked: featureCount, classCount: classCount, features: features, labels: labels)
    }

    init(unchecked featureCount: Int, classCount: Int, features: [Float], labels: [Int]) {
        self.featureCount = featureCount
        self.classCount = classCount
        self.features = features
        self.labels = labels
    }

    /// The features of one row.
    public func features(ofRow row: Int) -> ArraySlice<Float> {
        features[row * featureCount ..< (row + 1) * featureCount]
    }

    /// The rows at `rows`, in that order (repeats allowed).
    public func subset(_ rows: some Sequence<Int>) -> Dataset {
        var f: [Float] = []
        var l: [Int] = []
        f.reserveCapacity(rows.underestimatedCount * featureCount)
        l.reserveCapacity(rows.underestimatedCount)
        features.withUnsafeBufferPointer { all in
            for r in rows {
                precondition(r >= 0 && r < count, "row \(r) out of range 0..<\(count)")
                f.append(contentsOf: all[r * featureCount ..< (r + 1) * featureCount])
                l.append(labels[r])
            }
        }
        return Dataset(unchecked: featureCount, classCount: classCount, features: f, labels: l)
    }

    /// Rows per class.
    public var classCounts: [Int] {
        var counts = [Int](repeating: 0, count: classCount)
        for label in labels { counts[label] += 1 }
        return counts
    }

    /// Every feature multiplied by `factor` (e.g. 1/16 to bring digit pixels into [0, 1]).
    public func scaled(by factor: Float) -> Dataset {
        Dataset(unchecked: featureCount, classCount: classCount, features: features.map { $0 * factor }, labels: labels)
    }
}

/// Why a dataset operation was refused.
public enum DatasetError: Error, Equatable, CustomStringConvertible {
    case invalidArgument(String)
    case labelOutOfRange(row: Int, label: Int, classCount: Int)
    case nonFiniteFeature(row: Int, column: Int)
    /// Partitioning needs at least one row per peer.
    case tooFewRows(rows: Int, peers: Int)

    public var description: String {
        switch self {
        case .invalidArgument(let message): message
        case .labelOutOfRange(let row, let label, let classCount):
            "row \(row): label \(label) is outside 0..<\(classCount)"
        case .nonFiniteFeature(let row, let column): "row \(row), feature \(column): not a finite number"
        case .tooFewRows(let rows, let peers): "cannot give each of \(peers) peers a row: the dataset has \(rows) rows"
        }
    }
}

// MARK: - The bundled digits

extension Dataset {
    /// The UCI optical handwritten digits (1797 rows of 8×8 images, 10 classes), pixels scaled
    /// from 0…16 to [0, 1]. Parsed once per process and cached.
    public static func digits() throws(CSVError) -> Dataset { try digitsCache.get() }
}

private let digitsCache: Result<Dataset, CSVError> = {
    guard let url = Bundle.module.url(forResource: "digits", withExtension: "csv") else {
        return .failure(CSVError(file: "digits.csv", line: nil, column: nil, reason: .unreadable("not found in the ChorusLearning resource bundle")))
    }
    do throws(CSVError) {
        return .success(try Dataset.loadCSV(path: url.path, classCount: 10).scaled(by: 1.0 / 16.0))
    } catch {
        return .failure(error)
    }
}()

// MARK: - Synthetic data

extension Dataset {
    /// Gaussian class clusters, for tests and benchmarks that need sizes the digits cannot give
    /// (many features, many rows). Class centres are drawn with per-coordinate standard deviation
    /// `separation/√featureCount`, so the typical distance between two centres is about
    /// `separation·√2` whatever the dimension, and every row is its centre plus unit Gaussian noise:
    /// the difficulty does not change with `featureCount`. Labels are balanced (row i has class
    /// i mod classCount before shuffling) and the rows are in random order.
    public static func synthetic(count: Int, featureCount: Int, classCount: Int, seed: UInt64,
                                 separation: Float = 4) throws(DatasetError) -> Dataset {
        guard count > 0 else { throw .invalidArgument("count must be positive, got \(count)") }
        guard featureCount > 0 else { throw .invalidArgument("featureCount must be positive, got \(featureCount)") }
        guard classCount > 1 else { throw .invalidArgument("classCount must be at least 2, got \(classCount)") }
        guard separation.isFinite, separation >= 0 else { throw .invalidArgument("separation must be finite and non-negative, got \(separation)") }
        var rng = Xoshiro256(seed: seed)
        let scale = Double(separation) / Double(featureCount).squareRoot()
        var centres = [Float](repeating: 0, count: classCount * featureCount)
        for i in centres.indices { centres[i] = Float(Sampling.standardNormal(using: &rng) * scale) }
        var labels = (0..<count).map { $0 % classCount }
        Sampling.shuffle(&labels, using: &rng)
        var features = [Float](repeating: 0, count: count * featureCount)
        for row in 0..<count {
            let centre = labels[row] * featureCount
            for j in 0..<featureCount {
                features[row * featureCount + j] = centres[centre + j] + Float(Sampling.standardNormal(using: &rng))
            }
        }
        return Dataset(unchecked: featureCount, classCount: classCount, features: features, labels: labels)
    }
}

// MARK: - Train/test split

extension Dataset {
    /// Row indices of a deterministic, stratified train/test split: each class contributes its
    /// share of the test set (largest-remainder rounding, so the test set has exactly
    /// `round(testFraction · count)` rows), chosen by a shuffle seeded with `seed`.
    /// Both lists are ascending.
    public func splitIndices(testFraction: Double, seed: UInt64) throws(DatasetError) -> (train: [Int], test: [Int]) {
        guard testFraction.isFinite, testFraction >= 0, testFraction <= 1 else {
            throw .invalidArgument("testFraction must be between 0 and 1, got \(testFraction)")
        }
        var byClass = [[Int]](repeating: [], count: classCount)
        for (row, label) in labels.enumerated() { byClass[label].append(row) }
        // Largest remainder: floor every class's quota, then hand the remaining test rows to the
        // classes with the largest fractional parts (ties to the lower class).
        let quotas = byClass.map { Double($0.count) * testFraction }
        var take = quotas.map { Int($0.rounded(.down)) }
        let target = Int((Double(count) * testFraction).rounded())
        let order = quotas.indices.sorted { a, b in
            let fa = quotas[a] - quotas[a].rounded(.down), fb = quotas[b] - quotas[b].rounded(.down)
            return fa != fb ? fa > fb : a < b
        }
        var missing = target - take.reduce(0, +)
        for c in order where missing > 0 && take[c] < byClass[c].count {
            take[c] += 1
            missing -= 1
        }
        var rng = Xoshiro256(seed: seed)
        var train: [Int] = [], test: [Int] = []
        for c in 0..<classCount {
            var rows = byClass[c]
            Sampling.shuffle(&rows, using: &rng)
            test += rows[..<take[c]]
            train += rows[take[c]...]
        }
        return (train.sorted(), test.sorted())
    }

    /// A deterministic stratified split (see `splitIndices`); e.g. `split(testFraction: 0.2, seed: 1)`.
    public func split(testFraction: Double, seed: UInt64) throws(DatasetError) -> (train: Dataset, test: Dataset) {
        let (train, test) = try splitIndices(testFraction: testFraction, seed: seed)
        return (subset(train), subset(test))
    }
}
