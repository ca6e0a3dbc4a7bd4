/// Training throughput of one trainer on one thread, for `chorus bench` and docs/learning.md.
public struct TrainingBenchmark: Sendable, CustomStringConvertible {
    public let spec: ModelSpec
    public let batchSize: Int
    public let stepsPerRepeat: Int
    public let repeats: Int
    /// Median samples per second of thread CPU time: what one core sustains, unaffected by other
    /// processes on a shared machine. Equal to `wallSamplesPerSecond` where CPU time is unavailable.
    public let samplesPerSecond: Double
    /// Median samples per second of wall-clock time.
    public let wallSamplesPerSecond: Double

    public var description: String {
        "\(spec), batch \(batchSize): \(Int(samplesPerSecond.rounded())) samples/s CPU (\(Int(wallSamplesPerSecond.rounded())) wall), median of \(repeats) × \(stepsPerRepeat) steps"
    }
}

/// Times `steps` training steps (after a short warm-up) `repeats` times on `dataset` and reports
/// medians. Build in release mode for meaningful figures.
public func benchmarkTraining(spec: ModelSpec, dataset: Dataset, batchSize: Int = 32, steps: Int = 2000,
                              repeats: Int = 5, seed: UInt64 = 1) throws(TrainerError) -> TrainingBenchmark {
    let model = spec.makeModel(featureCount: dataset.featureCount, classCount: dataset.classCount)
    var trainer = try Trainer(model: model, shard: dataset, optimizer: SGD(learningRate: 0.01, momentum: 0.9),
                              batchSize: batchSize, seed: seed)
    for _ in 0..<min(steps, 100) { trainer.step() }
    let clock = ContinuousClock()
    var cpuRates: [Double] = [], wallRates: [Double] = []
    for _ in 0..<max(repeats, 1) {
        let samplesBefore = trainer.samplesSeen
        let cpuStart = threadCPUSeconds()
        let wallStart = clock.now
        for _ in 0..<max(steps, 1) { trainer.step() }
        let wall = clock.now - wallStart
        let wallSeconds = Double(wall.components.seconds) + Double(wall.components.attoseconds) * 1e-18
        let rows = Double(trainer.samplesSeen - samplesBefore)
        wallRates.append(rows / wallSeconds)
        if let cpuStart, let cpuEnd = threadCPUSeconds(), cpuEnd > cpuStart {
            cpuRates.append(rows / (cpuEnd - cpuStart))
        }
    }
    func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
    let wallRate = median(wallRates)
    return TrainingBenchmark(spec: spec, batchSize: batchSize, stepsPerRepeat: max(steps, 1), repeats: max(repeats, 1),
                             samplesPerSecond: cpuRates.isEmpty ? wallRate : median(cpuRates),
                             wallSamplesPerSecond: wallRate)
}
