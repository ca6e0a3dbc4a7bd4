import ChorusCrypto
@testable import ChorusWire

/// Fixed test identities and keys (never used outside tests).
enum Fixture {
    static let aliceSeed = [UInt8](repeating: 0x0a, count: 32)
    static let bobSeed = [UInt8](repeating: 0x0b, count: 32)
    static let networkKeyBytes = (0..<32).map { UInt8($0) }

    static let alice = try! SigningKey(seed: aliceSeed)
    static let bob = try! SigningKey(seed: bobSeed)
    static let network = try! NetworkKey(bytes: networkKeyBytes)
    static let otherNetwork = try! NetworkKey(bytes: [UInt8](repeating: 0xee, count: 32))

    /// Settings for the format under the network key, signed (`session_keys = false`; every hello
    /// travels so too). The tests that take these are about that format; `SessionKeyTests` about
    /// the paired one, the default.
    static var networkSealed: WireSettings {
        var settings = WireSettings()
        settings.sessionKeys = false
        return settings
    }

    static func endpoint(_ key: SigningKey, epoch: UInt64, network: NetworkKey = Fixture.network, settings: WireSettings = networkSealed) -> WireEndpoint {
        WireEndpoint(identity: key, keyring: NetworkKeyring([network]), epoch: epoch, settings: settings)
    }

    /// Alice and Bob after a completed hello exchange.
    static func connectedPair(settings: WireSettings = networkSealed) -> (WireEndpoint, WireEndpoint) {
        var a = endpoint(alice, epoch: 100, settings: settings)
        var b = endpoint(bob, epoch: 200, settings: settings)
        let hello = a.send(.message(channel: 0, payload: []), to: b.localID, now: 0)
        exchange(hello, from: &a, to: &b, now: 0)
        return (a, b)
    }

    /// Carries `datagrams` from `a` to `b`, and every answer and flushed item back and forth,
    /// until neither side has anything more to send (the hellos of the return-address handshake
    /// among them). `b` sees `a`'s datagrams come from `aAddress`, and `a` sees `b`'s from
    /// `bAddress`. Returns what each side delivered.
    @discardableResult
    static func exchange(_ datagrams: [[UInt8]], from a: inout WireEndpoint, to b: inout WireEndpoint, now: Double,
                         aAddress: String = "", bAddress: String = "") -> (atA: [Delivery], atB: [Delivery]) {
        var toB = datagrams, toA: [[UInt8]] = []
        var delivered: (atA: [Delivery], atB: [Delivery]) = ([], [])
        for _ in 0..<16 where !toB.isEmpty || !toA.isEmpty {
            for d in toB {
                let r = b.receive(d, from: aAddress, now: now)
                delivered.atB += r.deliveries
                toA += r.replies + r.flushed
            }
            toB = []
            for d in toA {
                let r = a.receive(d, from: bAddress, now: now)
                delivered.atA += r.deliveries
                toB += r.replies + r.flushed
            }
            toA = []
        }
        precondition(toA.isEmpty && toB.isEmpty, "the exchange did not end")
        return delivered
    }
}
