/// Application channels carried by the datagram layer (docs/protocol.md).
public enum ChorusChannel {
    /// A peer's parameter vector for gossip averaging (object).
    public static let parameters: UInt8 = 1
    /// A membership message: ping, ack, ping request, nack, gossip (message).
    public static let membership: UInt8 = 2
    /// A membership sync: a whole view (object).
    public static let membershipSync: UInt8 = 3
    /// "Send me your model" from a joining peer (message, empty).
    public static let modelRequest: UInt8 = 4
    /// The answer: a `ParametersMessage` (object).
    public static let model: UInt8 = 5

    /// A name for metrics and status: "parameters", "membership", … ("channel-N" for others).
    public static func name(_ channel: UInt8) -> String {
        switch channel {
        case parameters: "parameters"
        case membership: "membership"
        case membershipSync: "membership_sync"
        case modelRequest: "model_request"
        case model: "model"
        default: "channel-\(channel)"
        }
    }
}
