/// Timing and sizes of the membership protocol. Every field has a unit and a reason.
public struct MembershipSettings: Sendable, Equatable {
    /// Seconds between probes of one member (before Lifeguard stretches it).
    public var probeInterval: Double
    /// Seconds to wait for a direct ack before asking others to probe (must be < probeInterval).
    public var probeTimeout: Double
    /// Members asked to probe indirectly when the direct probe times out (SWIM's k).
    public var indirectChecks: Int
    /// Minimum suspicion timeout = suspicionMultiplier · max(1, log10 n) · probeInterval.
    public var suspicionMultiplier: Double
    /// Maximum suspicion timeout = suspicionMaxMultiplier · minimum; a lone accusation waits this long.
    public var suspicionMaxMultiplier: Double
    /// Independent accusations after which the suspicion timeout reaches its minimum.
    public var expectedConfirmations: Int
    /// Each claim is sent retransmitMultiplier · ⌈log10(n + 1)⌉ times, least-sent first.
    public var retransmitMultiplier: Int
    /// Seconds between pushes of pending claims to `gossipFanout` random members.
    public var gossipInterval: Double
    public var gossipFanout: Int
    /// Seconds between full-state exchanges with a random member (anti-entropy).
    public var syncInterval: Double
    /// Lifeguard local-health ceiling: intervals and timeouts stretch up to (1 + this)×.
    public var maxLocalHealth: Int
    /// Seconds a failed or left member is remembered (so stale claims cannot resurrect it).
    public var tombstoneTimeout: Double
    /// Members told directly of this peer's own news (a graceful leave, a refutation), besides gossip.
    public var announceFanout: Int
    /// Largest message payload (bytes) for probes and gossip; claims that do not fit wait.
    public var maxMessageBytes: Int
    /// Seconds an incarnation may lead the wall clock (incarnation = boot epoch · 2¹⁶ + refutations).
    public var maxIncarnationLeadSeconds: Double
    /// Seconds between join syncs to the seeds until one answers: a sync round trip on a LAN
    /// takes milliseconds, so a second is a lost datagram, not a slow seed.
    public var joinRetryInterval = 1.0
    /// Seconds between two syncs answering one unknown sender: it gets our view at once (gossip
    /// about it missed us), but a flood of strangers cannot make us send views without bound.
    public var strangerSyncInterval = 5.0
    /// Unknown senders remembered for that rate limit; the memory is cleared beyond this.
    public var strangersRemembered = 4096
    /// Syncs answering unknown senders per second in all, with bursts of twice as many: a view
    /// is many times the message that asked for it, so many fresh identities (Sybils) must not
    /// each get one (issue 21). Joins go through entry points and are not counted here.
    public var strangerSyncsPerSecond = 20.0
    /// Seeds a joining peer calls at once (`join(seed:)`); more are ignored until one answers.
    public var maxJoinSeeds = 16
    /// Fraction of anti-entropy syncs sent to a failed member rather than a live one, so that
    /// two sides of a healed partition, each holding the other failed, find each other again.
    public var failedSyncFraction = 0.25
    /// A relay nacks after this fraction of the probe timeout: the asker sent its request at its
    /// own probe timeout and closes the period at the probe interval, so a full timeout here
    /// would always arrive too late to count (memberlist has the same trap).
    public var relayNackFraction = 0.8
    /// Direct pings sent again while a probe is unanswered: the first alongside the indirect
    /// requests at `probeTimeout`, the others spread evenly over the rest of the period (at 0.5,
    /// 0.67 and 0.83 s with the `.lan` timings). The UDP counterpart of memberlist's TCP fallback
    /// probe. A direct round trip is 2 datagrams against an indirect one's 4, so at 5 % loss
    /// each retry makes a false suspicion about 10× rarer; that matters at scale, because every
    /// suspicion and its refutation are gossiped to all n members (n·log n datagrams each) and
    /// suspicions arise in proportion to n, so their traffic grows as n² log n: at 2048 members
    /// and 5 % loss, one retry left 8 suspicions a minute (a third of all datagrams), two left
    /// 1, three none in two minutes, with bytes per member back to what 256 members send. A
    /// retry is sent only while no ack has come, so it costs about one ping in the ~10 % of
    /// periods whose first ping went unanswered, and almost nothing for the later ones; spread
    /// in time, retries also outlast short bursts of loss.
    public var directRetries = 3
    /// Seconds between attempts, per member, to reach one random failed member (a view digest):
    /// this is how a healed partition is noticed, since gossip and probes go to live members
    /// only. Stretched to n/8 s in large groups, so the whole network sends about 8 such
    /// datagrams per second (most failed members really are gone), not n/2.
    public var reconnectInterval = 2.0
    /// Members expected to probe a new suspect as soon as they hear the accusation (each with
    /// probability this / (n − 2)), instead of when their round-robin order reaches it. Their
    /// failed probes confirm a crash within about two probe periods, so the suspicion timeout
    /// falls to its minimum early; a live suspect gets this many extra pings. 0 turns it off.
    public var suspicionProbes = 6
    /// Accusations have a cost: a member whose accusations about one subject were proved false
    /// (the subject came back alive in the same boot) this many times within
    /// `falseAccusationWindow` seconds has all its accusations ignored for `distrustSeconds`
    /// (counted as `claims.distrustedAccuser`). An honest member is proved wrong about one
    /// subject now and then (a lossy link, a paused peer, a partition that heals: once per
    /// subject); an insider accusing one peer again and again is proved wrong at every
    /// refutation. The accused still refutes every accusation (another member may not
    /// distrust the accuser yet).
    public var falseAccusationLimit = 3
    public var falseAccusationWindow = 60.0
    public var distrustSeconds = 300.0

    /// Close to hashicorp/memberlist's LAN profile (1 s probes, 500 ms timeout, k = 3, gossip
    /// 200 ms × 3, retransmit ×4, 30 s sync) but with a lower suspicion floor (multiplier 1
    /// instead of 4): Lifeguard's confirmations, refutations announced directly and verification
    /// before declaring, not a long fixed floor, guard against false positives, which is how a
    /// crash is declared in ~5 s rather than ~12 s at 256 members (docs/membership.md).
    public static let lan = MembershipSettings(
        probeInterval: 1, probeTimeout: 0.5, indirectChecks: 3, suspicionMultiplier: 1, suspicionMaxMultiplier: 6,
        expectedConfirmations: 2, retransmitMultiplier: 4, gossipInterval: 0.2, gossipFanout: 3, syncInterval: 30,
        maxLocalHealth: 8, tombstoneTimeout: 120, announceFanout: 8, maxMessageBytes: 1057, maxIncarnationLeadSeconds: 86_400)

    /// hashicorp/memberlist's DefaultLANConfig, for comparison runs only.
    public static let memberlistLAN: MembershipSettings = {
        var s = lan
        s.suspicionMultiplier = 4  // memberlist keeps k = SuspicionMult − 2 = 2, as .lan does
        return s
    }()

    /// Fast timers for tests and small local networks on one machine.
    public static let fast = MembershipSettings(
        probeInterval: 0.2, probeTimeout: 0.1, indirectChecks: 2, suspicionMultiplier: 2, suspicionMaxMultiplier: 5,
        expectedConfirmations: 2, retransmitMultiplier: 3, gossipInterval: 0.05, gossipFanout: 3, syncInterval: 5,
        maxLocalHealth: 8, tombstoneTimeout: 30, announceFanout: 8, maxMessageBytes: 1057, maxIncarnationLeadSeconds: 86_400)

    /// The smallest message payload that still carries a ping and two claims.
    public static let minimumMessageBytes = 400

    /// Problems with the settings, each naming the field; empty when valid.
    public func problems() -> [String] {
        var out: [String] = []
        if !(probeInterval > 0) { out.append("probeInterval must be positive seconds, got \(probeInterval)") }
        if !(probeTimeout > 0) { out.append("probeTimeout must be positive seconds, got \(probeTimeout)") }
        if probeTimeout >= probeInterval {
            out.append("probeTimeout (\(probeTimeout) s) must be shorter than probeInterval (\(probeInterval) s): the indirect probe needs the rest of the period")
        }
        if indirectChecks < 0 { out.append("indirectChecks must be 0 or more, got \(indirectChecks)") }
        if !(suspicionMultiplier > 0) { out.append("suspicionMultiplier must be positive, got \(suspicionMultiplier)") }
        if !(suspicionMaxMultiplier >= 1) { out.append("suspicionMaxMultiplier must be at least 1, got \(suspicionMaxMultiplier)") }
        if expectedConfirmations < 0 { out.append("expectedConfirmations must be 0 or more, got \(expectedConfirmations)") }
        if retransmitMultiplier < 1 { out.append("retransmitMultiplier must be at least 1, got \(retransmitMultiplier)") }
        if !(gossipInterval > 0) { out.append("gossipInterval must be positive seconds, got \(gossipInterval)") }
        if gossipFanout < 1 { out.append("gossipFanout must be at least 1, got \(gossipFanout)") }
        if !(syncInterval > 0) { out.append("syncInterval must be positive seconds, got \(syncInterval)") }
        if maxLocalHealth < 0 { out.append("maxLocalHealth must be 0 or more, got \(maxLocalHealth)") }
        if !(tombstoneTimeout > 0) { out.append("tombstoneTimeout must be positive seconds, got \(tombstoneTimeout)") }
        if maxMessageBytes < Self.minimumMessageBytes {
            out.append("maxMessageBytes must be at least \(Self.minimumMessageBytes) (room for a ping and two claims), got \(maxMessageBytes)")
        }
        if !(maxIncarnationLeadSeconds > 0) { out.append("maxIncarnationLeadSeconds must be positive, got \(maxIncarnationLeadSeconds)") }
        if !(reconnectInterval > 0) { out.append("reconnectInterval must be positive seconds, got \(reconnectInterval)") }
        if !(joinRetryInterval > 0) { out.append("joinRetryInterval must be positive seconds, got \(joinRetryInterval)") }
        if !(strangerSyncInterval >= 0) { out.append("strangerSyncInterval must be 0 or more seconds, got \(strangerSyncInterval)") }
        if strangersRemembered < 1 { out.append("strangersRemembered must be at least 1, got \(strangersRemembered)") }
        if !(strangerSyncsPerSecond >= 1 && strangerSyncsPerSecond.isFinite) {
            out.append("strangerSyncsPerSecond must be at least 1, got \(strangerSyncsPerSecond)")
        }
        if maxJoinSeeds < 1 { out.append("maxJoinSeeds must be at least 1, got \(maxJoinSeeds)") }
        if !(failedSyncFraction >= 0 && failedSyncFraction <= 1) { out.append("failedSyncFraction must be between 0 and 1, got \(failedSyncFraction)") }
        if suspicionProbes < 0 { out.append("suspicionProbes must be 0 or more, got \(suspicionProbes)") }
        if directRetries < 0 { out.append("directRetries must be 0 or more, got \(directRetries)") }
        if !(relayNackFraction > 0 && relayNackFraction <= 1) { out.append("relayNackFraction must be in (0, 1], got \(relayNackFraction)") }
        return out
    }
}
