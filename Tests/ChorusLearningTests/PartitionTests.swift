import Foundation
import Testing
import ChorusLearning

@Test("an IID partition gives every row to exactly one peer in near-equal shares")
func iidCoverage() throws {
    let (train, _) = try digitsSplit()
    let partition = Partition.iid(peers: 10, seed: 3)
    let shards = try partition.assignments(labels: train.labels, classCount: train.classCount)
    #expect(shards.count == 10)
    #expect(shards.flatMap { $0 }.sorted() == Array(0..<train.count))
    let sizes = shards.map(\.count)
    #expect(sizes.max()! - sizes.min()! <= 1)
    let datasets = try train.partition(partition)
    #expect(datasets.map(\.count) == sizes)
    #expect(datasets[4] == train.subset(shards[4]))
    #expect(try train.shard(index: 4, of: partition) == datasets[4])
}

@Test("a partition is deterministic for a seed")
func partitionDeterminism() throws {
    let (train, _) = try digitsSplit()
    for scheme in [PartitionScheme.iid, .dirichlet(alpha: 0.5)] {
        let a = try Partition(scheme: scheme, peers: 8, seed: 1).assignments(labels: train.labels, classCount: 10)
        let b = try Partition(scheme: scheme, peers: 8, seed: 1).assignments(labels: train.labels, classCount: 10)
        let c = try Partition(scheme: scheme, peers: 8, seed: 2).assignments(labels: train.labels, classCount: 10)
        #expect(a == b)
        #expect(a != c)
    }
}

@Test("a small-alpha Dirichlet partition is label-skewed and still covers every row once")
func dirichletSkew() throws {
    let (train, _) = try digitsSplit()
    let skewed = try train.partition(.dirichlet(alpha: 0.1, peers: 10, seed: 3))
    let even = try train.partition(.iid(peers: 10, seed: 3))
    let indices = try Partition.dirichlet(alpha: 0.1, peers: 10, seed: 3).assignments(labels: train.labels, classCount: 10)
    #expect(indices.flatMap { $0 }.sorted() == Array(0..<train.count))
    #expect(skewed.allSatisfy { $0.count > 0 })
    #expect(skewed.allSatisfy { $0.classCount == 10 })
    let skewedMax = skewed.map(maxClassFraction).reduce(0, +) / 10
    let evenMax = even.map(maxClassFraction).reduce(0, +) / 10
    #expect(evenMax < 0.2)
    #expect(skewedMax > evenMax + 0.3)
    // And a large alpha is close to IID.
    let mild = try train.partition(.dirichlet(alpha: 1000, peers: 10, seed: 3))
    #expect(mild.map(maxClassFraction).reduce(0, +) / 10 < 0.2)
}

@Test("every peer gets a row even when alpha is tiny and peers are many")
func dirichletNoEmptyPeer() throws {
    let (train, _) = try digitsSplit()
    for seed: UInt64 in 1...5 {
        let shards = try Partition.dirichlet(alpha: 0.001, peers: 100, seed: seed)
            .assignments(labels: train.labels, classCount: 10)
        #expect(shards.allSatisfy { !$0.isEmpty })
        #expect(shards.flatMap { $0 }.sorted() == Array(0..<train.count))
    }
    // Exactly as many rows as peers: one each.
    let tiny = try Dataset(featureCount: 1, classCount: 2, features: [0, 1, 2], labels: [0, 0, 1])
    let shards = try tiny.partition(.dirichlet(alpha: 0.01, peers: 3, seed: 1))
    #expect(shards.map(\.count) == [1, 1, 1])
}

@Test("partitions that cannot be made are refused")
func partitionErrors() throws {
    let tiny = try Dataset(featureCount: 1, classCount: 2, features: [0, 1], labels: [0, 1])
    #expect(throws: DatasetError.tooFewRows(rows: 2, peers: 3)) { try tiny.partition(.iid(peers: 3, seed: 1)) }
    #expect(throws: DatasetError.self) { try tiny.partition(.iid(peers: 0, seed: 1)) }
    #expect(throws: DatasetError.self) { try tiny.partition(.dirichlet(alpha: -1, peers: 2, seed: 1)) }
    #expect(throws: DatasetError.self) { try tiny.shard(index: 2, of: .iid(peers: 2, seed: 1)) }
}

@Test("partition strings parse", arguments: [
    ("iid", PartitionScheme.iid), ("IID", .iid), (" iid ", .iid),
    ("dirichlet:0.5", .dirichlet(alpha: 0.5)), ("Dirichlet:1e-2", .dirichlet(alpha: 0.01)), ("dirichlet:100", .dirichlet(alpha: 100)),
])
func partitionParsing(text: String, expected: PartitionScheme) throws {
    let scheme = try PartitionScheme(parsing: text)
    #expect(scheme == expected)
    #expect(try PartitionScheme(parsing: scheme.description) == scheme)
}

@Test("bad partition strings give a message that quotes the input and says what is accepted", arguments: [
    ("", "empty"), ("random", "unknown scheme"), ("iid:3", "takes no parameter"), ("dirichlet", "needs a concentration"),
    ("dirichlet:", "needs a concentration"), ("dirichlet:abc", "not a number"), ("dirichlet:0", "positive"),
    ("dirichlet:-1", "positive"), ("dirichlet:inf", "positive"), ("dirichlet:nan", "positive"),
])
func partitionParsingErrors(text: String, problem: String) {
    do throws(SpecParseError) {
        _ = try PartitionScheme(parsing: text)
        Issue.record("parsed \"\(text)\"")
    } catch {
        #expect(error.description.contains("\"\(text)\""))
        #expect(error.description.contains(problem))
        #expect(error.description.contains("dirichlet:0.5"))
    }
}

@Test("a partition scheme is Codable as its string")
func partitionCodable() throws {
    let json = try JSONEncoder().encode(["partition": PartitionScheme.dirichlet(alpha: 0.5)])
    #expect(String(decoding: json, as: UTF8.self) == #"{"partition":"dirichlet:0.5"}"#)
    #expect(try JSONDecoder().decode([String: PartitionScheme].self, from: json)["partition"] == .dirichlet(alpha: 0.5))
    #expect(throws: DecodingError.self) {
        try JSONDecoder().decode([String: PartitionScheme].self, from: Data(#"{"partition":"dirichlet:x"}"#.utf8))
    }
}
