import ChorusCore
import ChorusWire

/// The release and the wire formats it speaks (docs/protocol.md), for `chorus --version` and
/// `chorus_build_info`. A release changes its minor number whenever either format changes;
/// CHANGELOG.md lists both per release.
public enum ChorusVersion {
    public static let release = "0.7.0"  // 0.7: parameters message 2 (same-round mixing, push-sum streams); a 0.6 peer cannot mix with it
    public static var wireProtocol: UInt8 { DatagramHeader.version }
    public static var parametersMessage: UInt8 { ParametersMessage.version }
    public static var description: String {
        "chorus \(release) (wire protocol \(wireProtocol), parameters message \(parametersMessage))"
    }
}
