/// A classifier whose whole state is one flat `[Float]` parameter vector. Gossip averaging
/// works on that vector directly (`Σ wⱼ·θⱼ`), so models keep no other state and every model of
/// a given spec and shape has the same layout on every peer.
///
/// Models are immutable descriptions (shape and L2 coefficient); the parameters are passed in.
public protocol Model: Sendable {
    var featureCount: Int { get }
    var classCount: Int { get }
    /// Length of the parameter vector.
    var parameterCount: Int { get }
    /// The string spec this model was built from (what peers must agree on).
    var spec: ModelSpec { get }
    /// L2 weight decay coefficient λ: the loss includes `λ/2·‖W‖²` over the weight matrices
    /// (biases are not decayed).
    var l2: Float { get }

    /// Fresh parameters. Peers that must start from the same point use the same seed.
    func initialParameters(seed: UInt64) -> [Float]

    /// Mean cross-entropy over the batch (plus the L2 term), with its gradient written into
    /// `gradient` (overwritten, not accumulated). `features` is `labels.count × featureCount`,
    /// row-major. The caller owns every buffer so that training allocates nothing per sample.
    func lossAndGradient(parameters: UnsafeBufferPointer<Float>, features: UnsafeBufferPointer<Float>,
                         labels: UnsafeBufferPointer<Int>, gradient: UnsafeMutableBufferPointer<Float>) -> Float

    /// Class scores before softmax for `rowCount` rows, written row-major into `logits`
    /// (`rowCount × classCount`).
    func logits(parameters: UnsafeBufferPointer<Float>, features: UnsafeBufferPointer<Float>,
                rowCount: Int, into logits: UnsafeMutableBufferPointer<Float>)
}

extension Model {
    /// `lossAndGradient` on arrays; `gradient` must already have `parameterCount` elements.
    public func lossAndGradient(parameters: [Float], features: [Float], labels: [Int], gradient: inout [Float]) -> Float {
        parameters.withUnsafeBufferPointer { p in
            features.withUnsafeBufferPointer { x in
                labels.withUnsafeBufferPointer { y in
                    gradient.withUnsafeMutableBufferPointer { g in
                        lossAndGradient(parameters: p, features: x, labels: y, gradient: g)
                    }
                }
            }
        }
    }

    func checkShapes(parameters: Int, features: Int, rows: Int, gradient: Int? = nil) {
        precondition(parameters == parameterCount, "\(spec): expected \(parameterCount) parameters, got \(parameters)")
        precondition(features == rows * featureCount, "\(spec): expected \(rows) × \(featureCount) features, got \(features)")
        if let gradient {
            precondition(gradient == parameterCount, "\(spec): gradient buffer has \(gradient) elements, expected \(parameterCount)")
        }
    }
}

/// Hidden-layer non-linearity of the MLP.
public enum Activation: String, Sendable, Hashable, Codable, CaseIterable {
    /// max(0, x); He-initialised. The default: cheap, and its zeros let the kernels skip work.
    case relu
    /// tanh(x); Xavier-initialised.
    case tanh
}

/// Which model to build, as agreed among peers and written in configs: "softmax", "mlp",
/// "mlp:128" or "mlp:128:tanh". Codable as that string.
public enum ModelSpec: Sendable, Hashable, Codable, CustomStringConvertible {
    /// Multinomial logistic regression.
    case softmax
    /// One hidden layer of `hidden` units.
    case mlp(hidden: Int, activation: Activation = .relu)

    /// Hidden width of a bare "mlp".
    public static let defaultHidden = 64
    /// Largest hidden width accepted from a string: beyond this a typo ("mlp:6400000") would
    /// allocate gigabytes rather than fail.
    public static let maxHidden = 1 << 20

    static let accepted = "\"softmax\", \"mlp\" (hidden width \(defaultHidden)) or \"mlp:<hidden>[:relu|tanh]\", e.g. \"mlp:128\""

    /// Parses a model string (case-insensitive, surrounding spaces ignored).
    public init(parsing text: String) throws(SpecParseError) {
        func fail(_ problem: String) -> SpecParseError {
            SpecParseError(kind: "model", input: text, problem: problem, expected: Self.accepted)
        }
        let s = text.trimmingSpaces.lowercased()
        let parts = s.split(separator: ":", omittingEmptySubsequences: false)
        switch parts[0] {
        case "softmax":
            guard parts.count == 1 else { throw fail("softmax takes no parameter") }
            self = .softmax
        case "mlp":
            guard parts.count <= 3 else { throw fail("too many \":\"-separated fields") }
            var hidden = Self.defaultHidden
            if parts.count >= 2 {
                guard !parts[1].isEmpty else { throw fail("the hidden width after \"mlp:\" is missing") }
                guard let h = Int(parts[1]), h > 0 else { throw fail("hidden width \"\(parts[1])\" is not a positive integer") }
                guard h <= Self.maxHidden else { throw fail("hidden width \(h) is larger than \(Self.maxHidden)") }
                hidden = h
            }
            var activation = Activation.relu
            if parts.count == 3 {
                guard let a = Activation(rawValue: String(parts[2])) else {
                    throw fail("unknown activation \"\(parts[2])\" (relu or tanh)")
                }
                activation = a
            }
            self = .mlp(hidden: hidden, activation: activation)
        default:
            throw fail(s.isEmpty ? "empty" : "unknown model \"\(parts[0])\"")
        }
    }

    /// The canonical string, which `init(parsing:)` reads back ("mlp:64", "mlp:64:tanh").
    public var description: String {
        switch self {
        case .softmax: "softmax"
        case .mlp(let hidden, .relu): "mlp:\(hidden)"
        case .mlp(let hidden, let activation): "mlp:\(hidden):\(activation.rawValue)"
        }
    }

    public init(from decoder: any Decoder) throws {
        self = try decodeSpec(from: decoder) { (s) throws(SpecParseError) in try ModelSpec(parsing: s) }
    }

    public func encode(to encoder: any Encoder) throws { try encodeSpec(description, to: encoder) }

    /// The model for data of this shape. `l2` is the weight-decay coefficient in the loss.
    /// Shapes must be positive (every `Dataset` is) and `l2` finite and non-negative; a hidden
    /// width from `init(parsing:)` is always valid.
    public func makeModel(featureCount: Int, classCount: Int, l2: Float = 0) -> any Model {
        switch self {
        case .softmax:
            SoftmaxRegression(featureCount: featureCount, classCount: classCount, l2: l2)
        case .mlp(let hidden, let activation):
            MLP(featureCount: featureCount, hidden: hidden, classCount: classCount, activation: activation, l2: l2)
        }
    }

    /// Length of the parameter vector for data of this shape (e.g. to size buffers before
    /// building a model).
    public func parameterCount(featureCount: Int, classCount: Int) -> Int {
        switch self {
        case .softmax: featureCount * classCount + classCount
        case .mlp(let hidden, _): featureCount * hidden + hidden + hidden * classCount + classCount
        }
    }
}
