/// A rate limit on a virtual clock: `rate` tokens a second, at most `2 × rate` saved up. Pure
/// (time comes in), so a simulator replays it exactly.
public struct TokenBucket: Sendable {
    public let rate: Double
    private var tokens: Double
    private var filledAt = -Double.infinity

    public init(rate: Double) {
        self.rate = rate
        tokens = 2 * rate
    }

    /// Takes one token at `now`, or says there is none.
    public mutating func take(now: Double) -> Bool {
        if now > filledAt {
            tokens = min(2 * rate, tokens + (now - filledAt) * rate)
            filledAt = now
        }
        guard tokens >= 1 else { return false }
        tokens -= 1
        return true
    }
}
