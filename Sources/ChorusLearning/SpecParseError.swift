/// A model or partition string (from the command line or a config file) that could not be parsed.
/// The description quotes the input, says what was wrong and lists what is accepted, so that the
/// CLI and the config loader can print it as is.
public struct SpecParseError: Error, Equatable, CustomStringConvertible {
    /// What was being parsed: "model" or "partition".
    public let kind: String
    public let input: String
    public let problem: String
    public let expected: String

    public var description: String {
        "invalid \(kind) \"\(input)\": \(problem); expected \(expected)"
    }
}

/// Codable as the same string the parser accepts, so a TOML/JSON config reads `model = "mlp:128"`.
func decodeSpec<T>(from decoder: any Decoder, _ parse: (String) throws(SpecParseError) -> T) throws -> T {
    let container = try decoder.singleValueContainer()
    let text = try container.decode(String.self)
    do {
        return try parse(text)
    } catch {
        throw DecodingError.dataCorruptedError(in: container, debugDescription: error.description)
    }
}

func encodeSpec(_ text: String, to encoder: any Encoder) throws {
    var container = encoder.singleValueContainer()
    try container.encode(text)
}
