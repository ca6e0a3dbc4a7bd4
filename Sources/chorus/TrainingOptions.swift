import ArgumentParser
import ChorusAveraging
import ChorusLearning

/// How peers average: the graph, the mixing and the weights. Shared by `chorus simulate`,
/// `chorus experiment` and `chorus demo` (docs/averaging.md).
struct AveragingOptions: ParsableArguments {
    @Option(help: ArgumentHelp("How neighbours are drawn from the live view: \(Topology.help).", valueName: "topology"))
    var topology = "exponential"

    @Option(help: ArgumentHelp("Mixing: \(MixingMode.help) (docs/averaging.md).", valueName: "mixing"))
    var mixing = AveragingSettings().mixing.rawValue

    @Option(help: ArgumentHelp("Weights: \(WeightRule.help).", valueName: "rule"))
    var weights = AveragingSettings().weights.rawValue

    @Option(parsing: .unconditional, help: ArgumentHelp("Plain mixing: clip each neighbour's contribution to this many times the lower median of the round's distances (self-centred clipping against poisoned parameters; 0: off). Default: 1.5 when training, 0 when only averaging (--task average measures the averaging theory exactly). docs/security.md.", valueName: "factor"))
    var clip: Double?

    func validate() throws {
        guard let parsedTopology = Topology(parsing: topology) else { throw ValidationError("--topology: expected \(Topology.help), got \"\(topology)\"") }
        guard MixingMode(rawValue: mixing) != nil else { throw ValidationError("--mixing: expected \(MixingMode.help), got \"\(mixing)\"") }
        guard let rule = WeightRule(parsing: weights) else { throw ValidationError("--weights: expected \(WeightRule.help), got \"\(weights)\"") }
        if let problem = rule.problem(with: parsedTopology) { throw ValidationError("--weights: \(problem)") }
        if let clip, !(clip == 0 || (1...1000).contains(clip)) { throw ValidationError("--clip: expected 0 (off) or a factor from 1 to 1000, got \(clip)") }
    }

    /// The parsed topology (`validate` has checked it).
    var parsedTopology: Topology { Topology(parsing: topology)! }

    /// The averaging settings the options name (`validate` has checked them).
    var settings: AveragingSettings {
        AveragingSettings(mixing: MixingMode(rawValue: mixing)!, weights: WeightRule(parsing: weights)!, clipFactor: clip)
    }
}

/// What the peers of a local network learn and with whom they average: shared by `chorus demo`
/// and `chorus experiment`.
struct TrainingOptions: ParsableArguments {
    @Option(help: "Model: softmax | mlp | mlp:HIDDEN | mlp:HIDDEN:tanh (ReLU unless :tanh).")
    var model = "softmax"

    @Option(help: "Data partition across peers: iid | dirichlet:ALPHA.")
    var partition = "iid"

    @OptionGroup var averagingOptions: AveragingOptions

    @Option(help: "Seed for the data split, the initial parameters (and an experiment's choice of peers).")
    var seed: UInt64 = 1

    func validate() throws {
        guard (try? ModelSpec(parsing: model)) != nil else { throw ValidationError("--model: expected softmax, mlp or mlp:HIDDEN, got \"\(model)\"") }
        guard (try? PartitionScheme(parsing: partition)) != nil else { throw ValidationError("--partition: expected iid or dirichlet:ALPHA, got \"\(partition)\"") }
    }

    var averaging: AveragingSettings { averagingOptions.settings }

    /// The parsed values (`validate` has checked them).
    var parsed: (model: ModelSpec, partition: PartitionScheme, topology: Topology) {
        (try! ModelSpec(parsing: model), try! PartitionScheme(parsing: partition), averagingOptions.parsedTopology)
    }
}
