import Foundation
import Testing
import ChorusLearning

/// Measurements for docs/learning.md, not checks: they take tens of seconds in release mode and
/// would take minutes in debug, so they run only when asked:
///
///     CHORUS_BENCH=1 swift test -c release --filter Measurements
@Suite("Measurements", .serialized, .enabled(if: ProcessInfo.processInfo.environment["CHORUS_BENCH"] == "1"))
struct Measurements {
    @Test("training throughput on digits, one thread, batch 32")
    func throughput() throws {
        let digits = try Dataset.digits()
        let (train, _) = try digits.split(testFraction: 0.2, seed: 1)
        for spec in [ModelSpec.softmax, .mlp(hidden: 64), .mlp(hidden: 64, activation: .tanh)] {
            let result = try benchmarkTraining(spec: spec, dataset: train, batchSize: 32, steps: 3000, repeats: 5)
            print("bench: \(result)")
        }
        // A larger, MNIST-shaped problem: 784 features, 100 000+ parameters.
        let wide = try Dataset.synthetic(count: 5000, featureCount: 784, classCount: 10, seed: 1)
        for spec in [ModelSpec.softmax, .mlp(hidden: 128)] {
            let result = try benchmarkTraining(spec: spec, dataset: wide, batchSize: 32, steps: 500, repeats: 5)
            print("bench (synthetic 784 features): \(result)")
        }
    }

    @Test("test accuracy on the 80/20 digits split against steps")
    func accuracyCurves() throws {
        let digits = try Dataset.digits()
        let (train, test) = try digits.split(testFraction: 0.2, seed: 1)
        let checkpoints = [250, 500, 1000, 2000, 3000, 5000, 8000]
        for spec in [ModelSpec.softmax, .mlp(hidden: 64), .mlp(hidden: 64, activation: .tanh)] {
            let model = spec.makeModel(featureCount: train.featureCount, classCount: train.classCount)
            for seed: UInt64 in 1...3 {
                var trainer = try Trainer(model: model, shard: train, optimizer: SGD(learningRate: 0.1, momentum: 0.9),
                                          batchSize: 32, seed: seed)
                var line = "accuracy: \(spec) seed \(seed):"
                for target in checkpoints {
                    while trainer.steps < target { trainer.step() }
                    let (loss, accuracy) = trainer.evaluate(on: test)
                    line += " \(target)→\(String(format: "%.2f%% (%.3f)", accuracy * 100, loss))"
                }
                print(line)
            }
        }
    }
}
