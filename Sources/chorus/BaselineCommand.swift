import ArgumentParser
import ChorusLearning
import ChorusRuns
import Foundation

struct BaselineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "baseline",
        abstract: "Train the peers' data without a network: one centralised learner and an exactly averaged data-parallel run.",
        discussion: """
            The references a gossip run is measured against, from the same data and the same \
            budget as the peers: the digits split 80/20 and dealt into --peers shards with \
            --partition and --seed exactly as `chorus demo` and `chorus experiment` deal them \
            (`chorus simulate` deals them with seed 1 whatever its --seed), and --steps \
            optimiser steps of --batch-size rows per peer.

              centralised    one learner on the union of the shards (the same
                             rows): peers × steps steps, the cosine schedule
                             stretched over peers × its length.
              data-parallel  one learner per shard, all from the same initial
                             parameters; every --steps-per-round steps, each
                             learner's parameters become the exact average of
                             all of them (a parameter server; momentum stays
                             with each learner). Gossip on a complete graph
                             without delay: what the peers can hope to reach.

            Both report test accuracy and loss (the test set has 359 rows, so one model's \
            accuracy moves in steps of 0.28 %) and the samples seen, which are fewer than \
            peers × steps × batch when a shard's size is not a multiple of the batch (the \
            last batch of each pass over a shard is short, as on a peer). The same settings \
            give the same figures.

            A 40 s `chorus demo` (10 rounds a second, 5 steps a round) gives each peer 2000 \
            steps with the cosine over the first 85 %:
              chorus baseline                                   # chorus demo's defaults
              chorus baseline --model mlp --partition dirichlet:0.1 --peers 16
              chorus baseline --peers 16 --seed 2 --json
            For `chorus simulate --duration D` (10 rounds a second; a constant rate unless \
            --cosine-decay) use --steps D×50 and --cosine-decay 0 or the simulation's fraction.

            Progress goes to standard error; --json prints one object whose "testAccuracy" \
            is the centralised figure, with "centralised" and "dataParallel" in full and the \
            settings used.
            """
    )

    @Option(help: "Model: softmax | mlp | mlp:HIDDEN[:relu|tanh].")
    var model = "softmax"

    @Option(help: "Data partition across peers: iid | dirichlet:ALPHA.")
    var partition = "iid"

    @Option(help: "Peers whose shards and budget are used (as chorus demo --peers).")
    var peers = 8

    @Option(help: "Optimiser steps per peer (a 40 s chorus demo gives 2000).")
    var steps = 2000

    @Option(help: "Local steps between two averages (data-parallel), and between two learning-rate updates.")
    var stepsPerRound = 5

    @Option(help: "Base learning rate.")
    var learningRate = 0.05

    @Option(help: "Heavy-ball momentum in [0, 1).")
    var momentum = 0.9

    @Option(help: "Weight decay of the optimiser (0: none, as the peers by default).")
    var weightDecay = 0.0

    @Option(help: "Rows per optimiser step.")
    var batchSize = 32

    @Option(help: ArgumentHelp("Decay the learning rate to zero by a cosine over this fraction of the steps (0.85 as chorus demo; 0: constant).", valueName: "fraction"))
    var cosineDecay = 0.85

    @Option(help: "Seed of the data split, the partition, the initial parameters and the batch order.")
    var seed: UInt64 = 1

    @Flag(help: "Print the results as one JSON object (progress still goes to standard error).")
    var json = false

    func validate() throws {
        guard (try? ModelSpec(parsing: model)) != nil else { throw ValidationError("--model: expected softmax, mlp or mlp:HIDDEN[:relu|tanh], got \"\(model)\"") }
        guard (try? PartitionScheme(parsing: partition)) != nil else { throw ValidationError("--partition: expected iid or dirichlet:ALPHA, got \"\(partition)\"") }
        guard (1...100_000).contains(peers) else { throw ValidationError("--peers must be between 1 and 100000, got \(peers)") }
        guard (1...1_000_000_000).contains(steps) else { throw ValidationError("--steps must be between 1 and 10⁹, got \(steps)") }
        guard stepsPerRound >= 1 else { throw ValidationError("--steps-per-round must be at least 1, got \(stepsPerRound)") }
        guard learningRate.isFinite && learningRate > 0 else { throw ValidationError("--learning-rate must be positive, got \(learningRate)") }
        guard momentum >= 0 && momentum < 1 else { throw ValidationError("--momentum must be in [0, 1), got \(momentum)") }
        guard weightDecay.isFinite && weightDecay >= 0 else { throw ValidationError("--weight-decay must be 0 or more, got \(weightDecay)") }
        guard (1...65_536).contains(batchSize) else { throw ValidationError("--batch-size must be between 1 and 65536, got \(batchSize)") }
        guard (0...1).contains(cosineDecay) else { throw ValidationError("--cosine-decay must be a fraction in [0, 1], got \(cosineDecay)") }
    }

    /// What `run` trains (`validate` has checked the strings).
    var settings: BaselineSettings {
        let learning = LearningSettings(model: try! ModelSpec(parsing: model), learningRate: learningRate, momentum: momentum,
                                        weightDecay: weightDecay, batchSize: batchSize,
                                        cosineSteps: Int(Double(steps) * cosineDecay), seed: seed, initialSeed: seed)
        return BaselineSettings(source: .digits, testFraction: 0.2, dataSeed: seed, partition: try! PartitionScheme(parsing: partition),
                                peers: peers, learning: learning, stepsPerPeer: steps, stepsPerRound: stepsPerRound)
    }

    func run() throws {
        let settings = self.settings
        let learning = settings.learning
        let schedule = learning.cosineSteps > 0 ? "cosine over \(learning.cosineSteps) steps a peer" : "constant rate"
        Progress.line("chorus baseline: \(peers) peers × \(steps) steps, \(learning.model), \(settings.partition), batch \(batchSize), "
                      + "learning rate \(learningRate) (\(schedule)), momentum \(momentum), seed \(seed)", transient: false)
        // A terminal gets a line that rewrites itself twice a second; a log, one line every 10 s.
        let interval = isatty(STDERR_FILENO) != 0 ? 0.5 : 10
        var started = Date(), lastShown = Date()
        var current = Baseline.Kind.centralised, currentTotal = 0
        func finished() {
            Progress.line(String(format: "%@: %d steps in %.1f s", current.description, currentTotal, Date().timeIntervalSince(started)),
                          transient: false)
        }
        let report: Baseline.Report
        do {
            report = try Baseline.run(settings) { kind, done, total in
                if kind != current {
                    finished()
                    current = kind
                    started = Date()
                }
                currentTotal = total
                let now = Date()
                if now.timeIntervalSince(lastShown) >= interval {
                    lastShown = now
                    Progress.line(String(format: "%@: %d of %d steps (%.0f %%), %.0f s", kind.description, done, total,
                                         100 * Double(done) / Double(total), now.timeIntervalSince(started)), transient: true)
                }
            }
        } catch {
            Progress.line("", transient: false)
            throw UserError("baseline: \(error)")
        }
        finished()
        if json {
            print(Self.json(report, settings: settings, cosineDecay: cosineDecay))
        } else {
            let c = report.centralised, d = report.dataParallel
            print(String(format: "centralised:    %6.2f %% test accuracy, loss %.4f, %d samples seen, %d steps of one learner",
                         c.testAccuracy * 100, c.testLoss, c.samplesSeen, c.steps))
            print(String(format: "data-parallel:  %6.2f %% test accuracy, loss %.4f, %d samples seen, %d learners × %d steps, averaged every %d (%d rounds)",
                         d.testAccuracy * 100, d.testLoss, d.samplesSeen, d.learners, steps, stepsPerRound, d.rounds))
        }
    }

    static func json(_ report: Baseline.Report, settings: BaselineSettings, cosineDecay: Double) -> String {
        func result(_ r: Baseline.Result) -> [String: Any] {
            ["testAccuracy": r.testAccuracy, "testLoss": r.testLoss.isFinite ? r.testLoss : NSNull(),
             "samplesSeen": r.samplesSeen, "steps": r.steps, "learners": r.learners, "rounds": r.rounds]
        }
        let l = settings.learning
        let object: [String: Any] = [
            "testAccuracy": report.centralised.testAccuracy,
            "centralised": result(report.centralised),
            "dataParallel": result(report.dataParallel),
            "data": "digits", "testFraction": settings.testFraction, "trainRows": report.trainRows, "testRows": report.testRows,
            "model": l.model.description, "partition": settings.partition.description, "peers": settings.peers,
            "stepsPerPeer": settings.stepsPerPeer, "stepsPerRound": settings.stepsPerRound, "batchSize": l.batchSize,
            "learningRate": l.learningRate, "momentum": l.momentum, "weightDecay": l.weightDecay,
            "cosineDecay": cosineDecay, "cosineStepsPerPeer": l.cosineSteps, "seed": l.seed,
        ]
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self)
    }
}

/// `--baseline` of simulate, experiment and demo: the same model, data split, peers, steps and
/// learning-rate schedule trained by `chorus baseline`, printed beside the run's own accuracy.
enum BaselineComparison {
    static func run(model: ModelSpec, partition: PartitionScheme, peers: Int, stepsPerPeer: Int, stepsPerRound: Int,
                    learning: LearningSettings, dataSeed: UInt64) throws -> RunOutput.Summary.BaselineAccuracy {
        var settings = learning
        settings.model = model
        settings.seed = dataSeed
        settings.initialSeed = dataSeed
        Progress.line("baseline: \(peers) peers × \(stepsPerPeer) steps of \(model), \(partition), data seed \(dataSeed) in one process…", transient: false)
        let report: Baseline.Report
        do {
            report = try Baseline.run(BaselineSettings(source: .digits, testFraction: 0.2, dataSeed: dataSeed, partition: partition, peers: peers,
                                                      learning: settings, stepsPerPeer: max(1, stepsPerPeer), stepsPerRound: max(1, stepsPerRound)))
        } catch {
            throw UserError("--baseline: \(error)")
        }
        return .init(centralised: report.centralised.testAccuracy, dataParallel: report.dataParallel.testAccuracy, stepsPerPeer: stepsPerPeer)
    }

    /// "baseline (chorus baseline …): centralised 96.94 %, data-parallel 96.10 %; this run's minimum 96.66 % (−0.28 / +0.56 points)".
    static func line(_ b: RunOutput.Summary.BaselineAccuracy, runMinimum: Double?, command: String) -> String {
        var text = String(format: "baseline (%@): centralised %.2f %%, data-parallel %.2f %%", command, b.centralised * 100, b.dataParallel * 100)
        if let m = runMinimum {
            text += String(format: "; this run's minimum %.2f %% (%+.2f points against centralised, %+.2f against data-parallel)",
                           m * 100, (m - b.centralised) * 100, (m - b.dataParallel) * 100)
        }
        return text
    }
}
