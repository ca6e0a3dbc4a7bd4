// The simulated network: how a peer's datagrams travel (`transmit`: loss, latency, duplication,
// reordering, bandwidth), slot addresses, who reaches whom across a partition (`Partitions`),
// which peers' traffic is outside membership's envelope, and the loss and delay faults a schedule
// sets (`NetworkFaults`). The link model itself is `LinkModel` (SimulationOptions.swift).

import ChorusCore
import ChorusRuns
import Foundation

extension PeerSimulation {
    // MARK: Transmitting

    /// Sends one directive's datagrams. Without a bandwidth limit, duplication or reordering they
    /// travel as one burst: each may be lost, the rest share one latency and arrive in order (one
    /// event instead of one per datagram: a quarter of a training simulation's time was spent
    /// queueing, delivering and scheduling datagrams one by one).
    func transmit(_ datagrams: [[UInt8]], from index: Int, to address: PeerAddress, channel: UInt8?) {
        let link = self.link
        guard link.bandwidth == nil, link.duplication == 0, link.reorder == 0 else {
            for bytes in datagrams { transmitOne(bytes, from: index, to: address, channel: channel) }
            return
        }
        guard let target = slot(at: address), reachable(index, target) else { dropped += datagrams.count; return }
        var burst = datagrams  // shared, not copied, unless one is lost
        let loss = lossProbability(from: index, to: target, channel: channel)
        if loss > 0 {
            var kept = 0
            for (i, bytes) in datagrams.enumerated() where Double.random(in: 0..<1, using: &networkRNG) >= loss {
                if kept != i { burst[kept] = bytes }
                kept += 1
            }
            dropped += burst.count - kept
            if kept == 0 { return }
            burst.removeLast(burst.count - kept)
        }
        queue.push(.deliver(to: target, datagrams: burst, from: addresses[index]),
                   at: now + latency(link) + faults.extraDelay(from: index, to: target))
    }

    private func lossProbability(from: Int, to: Int, channel: UInt8?) -> Double {
        if let only = link.lossChannels, !(channel.map(only.contains) ?? false) { return 0 }
        return faults.lossProbability(from: from, to: to)
    }

    /// One datagram on its own: its departure behind the sender's earlier ones (bandwidth), and
    /// its own loss, duplication, latency and reordering.
    private func transmitOne(_ bytes: [UInt8], from index: Int, to address: PeerAddress, channel: UInt8?) {
        var departure = now
        if let bandwidth = link.bandwidth {
            departure = max(now, slots[index].linkFreeAt) + Double(bytes.count) / bandwidth
            slots[index].linkFreeAt = departure
            // A queue this long delays probes and acks as much as a slow link: outside
            // membership's envelope until it drains (fuzz seed 32 of version 3: parameters
            // filled a 245 kB/s link).
            if departure - now >= options.settings.membership.probeTimeout / 4 {
                slots[index].degradedUntil = max(slots[index].degradedUntil, departure)
            }
        }
        guard let target = slot(at: address), reachable(index, target) else { dropped += 1; return }
        let loss = lossProbability(from: index, to: target, channel: channel)
        if loss > 0 && Double.random(in: 0..<1, using: &networkRNG) < loss { dropped += 1; return }
        let link = self.link
        let copies = link.duplication > 0 && Double.random(in: 0..<1, using: &networkRNG) < link.duplication ? 2 : 1
        let from = addresses[index]
        for _ in 0..<copies {
            var delay = latency(link) + faults.extraDelay(from: index, to: target)
            if link.reorder > 0 && Double.random(in: 0..<1, using: &networkRNG) < link.reorder { delay += link.reorderDelay }
            queue.push(.deliver(to: target, datagrams: [bytes], from: from), at: departure + delay)
        }
    }

    private func latency(_ link: LinkModel) -> Double {
        link.jitter > 0 ? link.base - link.jitter * log(1 - Double.random(in: 0..<1, using: &networkRNG)) : link.base
    }

    // MARK: Addresses

    /// Slot i listens at 10.x.y.z:7000 where x·4096 + y·64 + z = i (y, z below 64): the address
    /// is read back into the slot (every datagram sent needs it) instead of hashing it into a
    /// dictionary, and up to 40 960 slots it is at most 15 bytes, which Swift keeps inside the
    /// string value. (With bytes up to 255, a quarter of 4096 peers' addresses took 16 bytes: a
    /// heap object retained, released and fetched from memory wherever the address went.)
    static func address(ofSlot index: Int) -> PeerAddress {
        "10.\(index / 4096 % 256).\(index / 64 % 64).\(index % 64):7000"
    }

    /// The slot listening at `address`, if any: read back from the text, which must be exactly
    /// what `address(ofSlot:)` hands out (no leading zeros, port 7000). Every datagram sent asks,
    /// so the slot table (a cache miss at thousands of peers) is not consulted.
    private func slot(at address: PeerAddress) -> Int? { Self.slot(at: address, below: slots.count) }

    static func slot(at address: PeerAddress, below slotCount: Int) -> Int? {
        let zero = UInt8(ascii: "0"), nine = UInt8(ascii: "9")
        var index = 0, value = 0, digits = 0, field = 0  // fields: 10 . x . y . z : port
        for byte in address.utf8 {
            if byte >= zero && byte <= nine {
                guard digits == 0 || value > 0, digits < 4 else { return nil }  // a leading zero, or too long
                value = value * 10 + Int(byte - zero)
                digits += 1
                continue
            }
            guard digits > 0, byte == UInt8(ascii: field < 3 ? "." : ":") else { return nil }
            switch field {
            case 0: guard value == 10 else { return nil }
            case 1: guard value < 256 else { return nil }
            default: guard value < 64 else { return nil }
            }
            if field > 0 { index = index * 64 + value }
            (field, value, digits) = (field + 1, 0, 0)
        }
        guard field == 4, value == 7000, index < slotCount else { return nil }
        return index
    }

    // MARK: Partitions and membership's envelope

    /// Whether what `a` sends reaches `b` across the partition, if any.
    func reachable(_ a: Int, _ b: Int) -> Bool { partitions.reachable(a, b) }

    /// Whether `a` and `b` were cut apart by a partition that ended within the longest suspicion
    /// timeout (Lifeguard's maximum, stretched by the worst local health).
    /// A pause of either within that window excuses a verdict the same way: a stopped process
    /// does not answer, and one that wakes up finds its probes timed out.
    func separatedRecently(_ a: Int, _ b: Int) -> Bool {
        let m = options.settings.membership
        let n = Double(max(live.count, 1))
        let window = m.suspicionMaxMultiplier * m.suspicionMultiplier * max(1, log10(n)) * m.probeInterval * Double(1 + m.maxLocalHealth)
        for s in [a, b] where now - slots[s].pausedUntil <= window || now - slots[s].degradedUntil <= window { return true }
        return partitions.separated(a, b, endedWithin: window, of: now)
    }

    /// Marks which slots' traffic is outside membership's envelope now (`envelopeLoss`, a delay
    /// of a quarter of the probe timeout), and when those that left it did.
    func markDegraded() {
        let limit = options.envelopeLoss
        let slowDelay = options.settings.membership.probeTimeout / 4
        var degraded = Set<Int>()
        if faults.loss > limit {
            degraded = Set(order)
        } else {
            func combined(_ p: Double) -> Double { 1 - (1 - faults.loss) * (1 - p) }
            for (slot, p) in faults.lossIn.merging(faults.lossOut, uniquingKeysWith: max) where combined(p) > limit { degraded.insert(slot) }
            for (l, p) in faults.linkLoss where combined(p) > limit { degraded.formUnion([l.from, l.to]) }
            for (slot, d) in faults.delayIn.merging(faults.delayOut, uniquingKeysWith: max) where d >= slowDelay { degraded.insert(slot) }
            for (l, d) in faults.linkDelay where d >= slowDelay { degraded.formUnion([l.from, l.to]) }
        }
        noteHeavyLoss()
        for slot in order {
            if degraded.contains(slot) {
                slots[slot].degradedUntil = .infinity
            } else if slots[slot].degradedUntil == .infinity {
                slots[slot].degradedUntil = now
            }
        }
    }
}

/// Who reaches whom: the partition in force, if any, and the partitions that ended (whose
/// suspicions may still run out after the heal).
struct Partitions {
    /// Slot → partition side (absent: side 0); empty when healed.
    private(set) var sides: [Int: Int] = [:]
    /// Which way the partition cuts: both, or only what side 1 sends (out) or receives (in).
    private(set) var direction = Schedule.Direction.both
    /// The sides of the partitions that ended, and when: suspicions raised across one may still
    /// run out (and be declared) a while after the heal, which is no false failure. Every one
    /// counts, not only the last: a partition replaced by another one left its own suspicions
    /// running (found by `chorus simulate fuzz --seeds 67`).
    private(set) var healed: [(sides: [Int: Int], at: Double)] = []

    /// Whether a partition is in force.
    var inForce: Bool { !sides.isEmpty }

    /// Whether what `a` sends reaches `b` across the partition, if any.
    func reachable(_ a: Int, _ b: Int) -> Bool {
        guard !sides.isEmpty else { return true }
        let (sa, sb) = (sides[a] ?? 0, sides[b] ?? 0)
        if sa == sb { return true }
        switch direction {
        case .both: return false
        case .out: return sa == 0  // side 1 (the targets) cannot send to side 0
        case .in: return sb == 0  // side 1 cannot receive from side 0
        }
    }

    /// Cuts `side` (side 1) off from the other slots (side 0) in `direction`, ending the
    /// partition in force, if any.
    mutating func begin(side: Set<Int>, of slots: Range<Int>, direction: Schedule.Direction, at now: Double) {
        end(at: now)
        for i in slots { sides[i] = side.contains(i) ? 1 : 0 }
        self.direction = direction
    }

    /// Ends the partition in force, if any, remembering its sides.
    mutating func end(at now: Double) {
        guard !sides.isEmpty else { return }
        healed.removeAll { now - $0.at > 3600 }  // far longer than any suspicion
        healed.append((sides, now))
        sides = [:]
    }

    /// Whether `a` and `b` were on different sides of a partition that ended at most `window`
    /// seconds before `now`.
    func separated(_ a: Int, _ b: Int, endedWithin window: Double, of now: Double) -> Bool {
        healed.contains { now - $0.at <= window && ($0.sides[a] ?? 0) != ($0.sides[b] ?? 0) }
    }
}

/// Loss and extra delay as a run's schedule sets them: on every datagram, on what given peers
/// send or receive, or on one link (slot to slot). Probabilities combine as independent drops.
struct NetworkFaults {
    var loss: Double
    var lossIn: [Int: Double] = [:], lossOut: [Int: Double] = [:]
    var delayIn: [Int: Double] = [:], delayOut: [Int: Double] = [:]
    var linkLoss: [Link: Double] = [:], linkDelay: [Link: Double] = [:]

    struct Link: Hashable { var from: Int, to: Int }

    init(loss: Double) { self.loss = loss }

    func lossProbability(from: Int, to: Int) -> Double {
        guard !(loss == 0 && lossIn.isEmpty && lossOut.isEmpty && linkLoss.isEmpty) else { return 0 }
        var kept = 1 - loss
        kept *= 1 - (lossOut[from] ?? 0)
        kept *= 1 - (lossIn[to] ?? 0)
        kept *= 1 - (linkLoss[Link(from: from, to: to)] ?? 0)
        return 1 - kept
    }

    /// Seconds added to a datagram's latency.
    func extraDelay(from: Int, to: Int) -> Double {
        guard !(delayIn.isEmpty && delayOut.isEmpty && linkDelay.isEmpty) else { return 0 }
        return (delayOut[from] ?? 0) + (delayIn[to] ?? 0) + (linkDelay[Link(from: from, to: to)] ?? 0)
    }

    /// A loss or delay action on one peer's traffic.
    mutating func set(_ action: Schedule.Action, peer: Int) {
        let value = action.kind == .loss ? action.probability : action.delayMs / 1000
        if action.direction != .out { action.kind == .loss ? (lossIn[peer] = value) : (delayIn[peer] = value) }
        if action.direction != .in { action.kind == .loss ? (lossOut[peer] = value) : (delayOut[peer] = value) }
    }

    /// A loss or delay action on one link (both ways with direction both).
    mutating func set(_ action: Schedule.Action, link: (Int, Int)) {
        let value = action.kind == .loss ? action.probability : action.delayMs / 1000
        var links = [Link(from: link.0, to: link.1)]
        if action.direction == .both { links.append(Link(from: link.1, to: link.0)) }
        for l in links { action.kind == .loss ? (linkLoss[l] = value) : (linkDelay[l] = value) }
    }
}
