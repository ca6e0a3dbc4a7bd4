import ChorusCrypto
import HashTreeCollections

/// An object ready to send: hashed once, however many peers it goes to.
public struct PreparedObject: Sendable {
    public let channel: UInt8
    public let bytes: [UInt8]
    public let hash: [UInt8]
    public let objectID: UInt64

    /// `mode` must be the network key's (`.simulated` only in simulations; see `CryptoMode`).
    public init(channel: UInt8, bytes: [UInt8], objectID: UInt64 = secureRandomUInt64(), mode: CryptoMode = .real) {
        self.channel = channel
        self.bytes = bytes
        self.hash = mode.objectHash(bytes)
        self.objectID = objectID
    }
}

/// What the application hands to the datagram layer.
public enum Outgoing: Sendable {
    case message(channel: UInt8, payload: [UInt8])
    case object(PreparedObject)

    public var channel: UInt8 {
        switch self {
        case let .message(channel, _): return channel
        case let .object(object): return object.channel
        }
    }

    /// Payload bytes (a message's payload, an object's bytes), without the datagram layer's.
    public var byteCount: Int {
        switch self {
        case let .message(_, payload): return payload.count
        case let .object(object): return object.bytes.count
        }
    }
}

/// What the datagram layer hands back to the application.
public enum Delivery: Sendable, Equatable {
    /// The peer announced itself (its address is the datagram's source).
    case hello(PeerID)
    case message(from: PeerID, channel: UInt8, payload: [UInt8])
    case object(CompletedObject)
}

/// The result of one incoming datagram.
public struct Reception: Sendable {
    public var deliveries: [Delivery] = []
    /// Datagrams for the source address of the incoming one (hello replies; never larger than it).
    public var replies: [[UInt8]] = []
    /// Datagrams that were waiting for the sender's epoch (with session keys, for it to prove
    /// that it receives at the incoming datagram's source); send them to that source.
    public var flushed: [[UInt8]] = []
    /// The authenticated sender, when the datagram was accepted.
    public var sender: PeerID?
    public var rejection: WireRejection?
    /// The sender and epoch of a datagram dropped because it came from an earlier boot of a
    /// peer we know at a later one (`staleSenderEpoch`): a stale process may still be running.
    public var earlierBoot: (peer: PeerID, epoch: UInt64)?
}

/// The datagram layer of one peer: a pure state machine (no sockets, no clock).
///
/// It seals outgoing messages and objects into authenticated datagrams and opens incoming ones:
/// tag check with the network key, strict decoding, epochs that defeat replays across restarts of
/// either side, a replay window per peer, Ed25519 signatures on hellos, messages and manifests,
/// and bounded reassembly of chunked objects. See docs/protocol.md.
public struct WireEndpoint: Sendable {
    /// What this peer keeps of every peer it talks to (48 bytes: a simulation holds n² of them).
    struct Session {
        var epoch: UInt64 = 0  // 0: not yet known
        var lastHeard: Double
        var lastHelloSent = -Double.infinity
        var window = ReplayWindow()
        /// With session keys: in the low 32 bits the fingerprint of the peer's boot key our
        /// pair's keys are for (`PairCipher.fingerprint`; 0 while we have none); in the high 32,
        /// once the peer has echoed the cookie of one of our hellos, the tag of the address the
        /// echo came from (`WireEndpoint.proofTag`; 0 before).
        var pair: UInt64 = 0

        var boot: UInt64 { pair & 0xffff_ffff }
        var proof: UInt64 { pair >> 32 }
        /// The peer has echoed a cookie of this boot: it holds our boot key (every hello carries
        /// it, with the cookie) and receives at an address. Only then does anything go to it
        /// paired. As in WireGuard, where the responder waits for the initiator's first message,
        /// a paired datagram can then never overtake the hello that carries our key; and as in
        /// QUIC's address validation, nobody gets more than a hello from us before it has shown
        /// that it receives where it says it is (an insider knows every boot key from the hellos
        /// it sees, so the keys alone prove nothing about its address).
        var confirmed: Bool { pair >> 32 != 0 }
    }

    /// Items for a peer whose epoch is not known yet, sent when it answers (bounded).
    struct Queue {
        var items: [(item: Outgoing, queuedAt: Double)] = []
        var bytes = 0
    }

    public let identity: SigningKey
    public private(set) var keyring: NetworkKeyring
    /// This boot's epoch: must be larger than every earlier boot's (see `EpochStore`).
    public let epoch: UInt64
    public let settings: WireSettings
    public var localID: PeerID { identity.peerID }
    /// Real libsodium, or the simulator's stand-ins (from the network key).
    public var cryptoMode: CryptoMode { keyring.primary.mode }

    private var nextCounter: UInt64 = 1
    private var sessions: [PeerID: Session] = [:]
    /// Peers with items waiting for their epoch, kept beside the sessions (few peers ever have
    /// any): `tick` visits only these.
    private var waiting: [PeerID: Queue] = [:]
    private var reassembler: Reassembler
    /// `WireSettings.newSessionsPerSecond`.
    private var newSessions: TokenBucket
    /// `WireSettings.newSessionsPerSourcePerSecond`: the sources that opened sessions lately
    /// (a source idle long enough to have its whole burst back is dropped: the same as none).
    private var sourceBudgets: [String: (bucket: TokenBucket, lastTaken: Double)] = [:]
    private var pruneSourcesAt = 64
    /// With session keys: what came paired from peers that hold our pair's keys but have not yet
    /// proved where they receive, kept until they do (then acted on, if from the source they
    /// proved) or for `2 × helloInterval`. A peer sends its echo just before its first paired
    /// datagrams, and the two may arrive in either order; dropping those cost a joiner's sync or
    /// model request a retry a second later. At most `heldPerPeer` bodies for `heldPeers` peers.
    private var heldForProof: [PeerID: [(body: DatagramBody, source: String, at: Double)]] = [:]
    static let heldPerPeer = 16, heldPeers = 256
    public private(set) var rejections: [WireRejection: Int] = [:]
    public private(set) var acceptedDatagrams = 0
    public private(set) var sentDatagrams = 0
    /// The authority and our certificate, when this network admits only certified identities.
    public let admission: Admission?
    /// Identities whose certificate this peer has checked (admission only; forgotten with their
    /// session). A set beside the sessions, not a field in each: without admission it stays empty.
    private var admitted: Set<PeerID> = []
    /// Identities the network authority revoked: their datagrams are dropped before any other work.
    public private(set) var revoked: Set<PeerID> = []
    /// With `WireSettings.sessionKeys`: this boot's key-exchange key; the keys of each pair whose
    /// hello brought the other boot's key (real cryptography only: a simulated pair is rebuilt
    /// from the session's `boot`); and whose each short id (`PairedDatagram`) is, in a hash tree
    /// that simulated peers share (`shareShortIDs`). Without session keys all stay empty.
    private let bootKey: BootKey?
    private var realPairs: [PeerID: PairCipher] = [:]
    private var byShortID: TreeDictionary<UInt64, PeerID> = [:]

    /// - bootKeySeed: with session keys, the seed of this boot's key-exchange key (a seeded
    ///   simulation or test repeats); a fresh random key by default.
    public init(identity: SigningKey, keyring: NetworkKeyring, epoch: UInt64, settings: WireSettings = .init(),
                admission: Admission? = nil, bootKeySeed: [UInt8]? = nil) {
        precondition(epoch > 0, "epoch 0 means 'unknown' on the wire")
        precondition(settings.problems().isEmpty, "invalid WireSettings: \(settings.problems())")
        self.identity = identity
        self.keyring = keyring
        self.epoch = epoch
        self.settings = settings
        self.reassembler = Reassembler(settings: settings.reassembly(mode: keyring.primary.mode))
        self.newSessions = TokenBucket(rate: settings.newSessionsPerSecond)
        self.admission = admission
        self.bootKey = settings.sessionKeys ? BootKey(seed: bootKeySeed, mode: keyring.primary.mode) : nil
    }

    /// This boot's key-exchange public key (with session keys), which its hellos carry.
    public var bootPublicKey: [UInt8]? { bootKey?.publicKey }

    /// Whether we hold keys for our pair of boots with `peer` (datagrams to it go sealed with them
    /// once it has confirmed that it holds them too).
    public func isPaired(with peer: PeerID) -> Bool { (sessions[peer]?.boot ?? 0) != 0 }

    /// Whether `peer` has shown that it receives at `address`: it echoed the cookie of a hello we
    /// sent there, and holds our pair's keys. A shell sends nothing larger than a hello in answer
    /// to a datagram from an address that is not proven (an insider could name a third party's
    /// address as the source). Always true without session keys, which have no handshake.
    public func isProven(_ peer: PeerID, at address: String) -> Bool {
        guard let bootKey else { return true }
        guard let index = sessions.index(forKey: peer) else { return false }
        return sessions.values[index].proof == Self.proofTag(bootKey.cookie(for: address))
    }

    /// Whether `peer` has proved that it receives at some address (with session keys; without,
    /// whether its epoch is known): only then does anything but a hello go to it.
    public func isConfirmed(_ peer: PeerID) -> Bool {
        guard let index = sessions.index(forKey: peer) else { return false }
        return bootKey == nil ? sessions.values[index].epoch != 0 : sessions.values[index].confirmed
    }

    /// The 32 bits of an address's cookie a session keeps once the peer proved it receives there.
    static func proofTag(_ cookie: UInt64) -> UInt64 { max(1, cookie & 0xffff_ffff) }

    public var totalRejected: Int { rejections.values.reduce(0, +) }
    public var reassemblyBytesInUse: Int { reassembler.bytesInUse }
    public func knowsEpoch(of peer: PeerID) -> Bool { (sessions[peer]?.epoch ?? 0) != 0 }
    /// The boot epoch `peer`'s datagrams name (nil or 0 while unknown).
    public func epoch(of peer: PeerID) -> UInt64? { sessions[peer]?.epoch }

    // MARK: Sending

    /// A hello for `address`, whose peer we may not know yet (joining through a seed).
    public mutating func hello(at address: String? = nil, now: Double) -> [UInt8] {
        sealHello(recipientEpoch: 0, unanswered: address)
    }

    /// Seals `item` for `peer` at `address`. When the peer's epoch is unknown (with session keys:
    /// until it has echoed one of our cookies) the item waits (bounded) and a hello goes to
    /// `address` instead; the item is sent when the peer answers (see `Reception.flushed`).
    public mutating func send(_ item: Outgoing, to peer: PeerID, at address: String? = nil, now: Double) -> [[UInt8]] {
        if case let .message(_, payload) = item {
            precondition(payload.count <= settings.maxMessagePayload, "message payload over maxMessagePayload")
        }
        // The epoch read in place: binding the session would copy it (and retain its arrays).
        if let index = sessions.index(forKey: peer), case let (known, confirmed) = withSession(at: index, { ($0.epoch, $0.confirmed) }), known != 0,
           bootKey == nil || confirmed {
            return seal(item, to: peer, recipientEpoch: known)
        }
        var session = sessions[peer] ?? Session(lastHeard: now)
        var queue = waiting[peer] ?? Queue()
        if queue.bytes + item.byteCount <= settings.pendingBytesPerPeer {
            queue.items.append((item, now))
            queue.bytes += item.byteCount
            waiting[peer] = queue
        } else {
            rejections[.pendingOverflow, default: 0] += 1
        }
        var out: [[UInt8]] = []
        if now - session.lastHelloSent >= settings.helloInterval {
            session.lastHelloSent = now
            out.append(sealHello(recipientEpoch: 0, unanswered: address))
        }
        store(session, for: peer)
        return out
    }

    /// A message for an earlier boot of `peer` (its datagrams were `staleSenderEpoch`), or for a
    /// peer about to be revoked: sealed for that epoch, so that a process still running it can
    /// read it. Sessions are untouched.
    public mutating func sendToEarlierBoot(_ item: Outgoing, of peer: PeerID, epoch: UInt64) -> [[UInt8]] {
        // Signed, under the network key: a message must leave room for the signature (these are
        // one claim, far below; an object would take the paired format's chunk size).
        guard case let .message(_, payload) = item,
              payload.count < settings.maxDatagramSize - WireSettings.signedFramingBytes else { return [] }
        return seal(item, to: peer, recipientEpoch: epoch, paired: false)
    }

    /// `item` in datagrams for `peer`: sealed with our pair's keys when we have them (and
    /// `paired`; `PairedDatagram`: no signature, no epochs), else under the network key and signed.
    private mutating func seal(_ item: Outgoing, to peer: PeerID, recipientEpoch: UInt64, paired: Bool = true) -> [[UInt8]] {
        let cipher = paired ? pairCipher(for: peer) : nil
        switch item {
        case let .message(channel, payload):
            if let cipher { return [sealPaired(.message(channel: channel, payload: payload), cipher: cipher)] }
            return [seal(.message(channel: channel, payload: payload), to: peer, recipientEpoch: recipientEpoch)]
        case let .object(object):
            let chunkSize = settings.chunkDataSize
            let first = min(chunkSize, object.bytes.count)
            let manifest = ObjectManifest(
                objectID: object.objectID, channel: object.channel, totalLength: UInt32(object.bytes.count),
                chunkSize: UInt16(chunkSize), hash: object.hash, firstChunk: object.bytes[..<first])
            var out = [cipher.map { sealPaired(.manifest(manifest), cipher: $0) } ?? seal(.manifest(manifest), to: peer, recipientEpoch: recipientEpoch)]
            out.reserveCapacity(manifest.chunkCount)
            var index: UInt32 = 1
            var start = first
            while start < object.bytes.count {
                let end = min(start + chunkSize, object.bytes.count)
                if let cipher {
                    out.append(sealPaired(.chunk(ObjectChunk(objectID: object.objectID, totalLength: manifest.totalLength, chunkSize: manifest.chunkSize,
                                                             index: index, bytes: object.bytes[start..<end])), cipher: cipher))
                } else {
                    out.append(DatagramCodec.sealChunk(
                        header: nextHeader(.chunk, recipientEpoch: recipientEpoch), objectID: object.objectID, totalLength: manifest.totalLength,
                        chunkSize: manifest.chunkSize, index: index, data: object.bytes[start..<end], key: keyring.primary))
                }
                index += 1
                start = end
            }
            return out
        }
    }

    /// The keys of our pair with `peer` (its session at `index`, if known), if we have them.
    private mutating func pairCipher(for peer: PeerID, at index: Dictionary<PeerID, Session>.Index? = nil) -> PairCipher? {
        guard let bootKey, let index = index ?? sessions.index(forKey: peer) else { return nil }
        let boot = withSession(at: index) { $0.boot }
        guard boot != 0 else { return nil }
        switch cryptoMode {
        case .real: return realPairs[peer]
        case .simulated: return PairCipher(simulated: bootKey, ownID: localID, theirFingerprint: boot, theirID: peer)
        }
    }

    /// The keys this endpoint derives with `peer` whose boot key is `theirs` (with session keys):
    /// a fuzz harness re-tags a simulated peer's paired datagrams with them.
    @_spi(Simulation) public func pairCipher(for peer: PeerID, bootKey theirs: [UInt8]) -> PairCipher? {
        bootKey.flatMap { try? PairCipher(own: $0, ownID: localID, theirs: theirs, theirID: peer) }
    }

    /// Records the keys of our pair with `peer` (whose session exists) for its boot key `boot`,
    /// with `proof` the tag of the address it proved it receives at (0: none yet).
    private mutating func storePair(_ cipher: PairCipher, boot: UInt64, proof: UInt64, for peer: PeerID,
                                    at index: Dictionary<PeerID, Session>.Index) {
        withSession(at: index) { $0.pair = boot | proof << 32 }
        if !heldForProof.isEmpty { heldForProof[peer] = nil }  // sealed with the keys this pair replaces
        if cryptoMode == .real { realPairs[peer] = cipher }
        if byShortID[peer.leadingWord] == nil { byShortID[peer.leadingWord] = peer }  // no write (no copy) when shared
    }

    /// One paired datagram (`PairedDatagram`) with `body`.
    private mutating func sealPaired(_ body: DatagramBody, cipher: PairCipher) -> [UInt8] {
        let kind: DatagramKind
        let capacity: Int
        switch body {
        case let .message(_, payload): (kind, capacity) = (.message, 1 + payload.count)
        case let .manifest(m): (kind, capacity) = (.manifest, ObjectManifest.byteCount + m.firstChunk.count)
        case let .chunk(c): (kind, capacity) = (.chunk, ObjectChunk.headerByteCount + c.bytes.count)
        case .hello, .helloWith: preconditionFailure("hellos are sealed under the network key")
        }
        return PairedDatagram.seal(kind: kind, sender: localID, counter: takeCounter(), cipher: cipher, capacity: capacity) {
            DatagramCodec.writeBody(body, to: &$0)
        }
    }

    /// The next datagram's counter (one sequence per boot across all recipients and both formats).
    private mutating func takeCounter() -> UInt64 {
        defer { nextCounter += 1; sentDatagrams += 1 }
        return nextCounter
    }

    private mutating func seal(_ body: DatagramBody, to peer: PeerID?, recipientEpoch: UInt64) -> [UInt8] {
        let kind: DatagramKind
        switch body {
        case .hello, .helloWith: preconditionFailure("hellos are sealed by sealHello")
        case .message: kind = .message
        case .manifest: kind = .manifest
        case .chunk: kind = .chunk
        }
        return DatagramCodec.seal(header: nextHeader(kind, recipientEpoch: recipientEpoch), body: body, identity: identity, key: keyring.primary)
    }

    /// A hello naming `recipientEpoch`. Every hello shows this boot's key and the certificate,
    /// when there are any. With session keys, one that answers a datagram from `source` carries
    /// our cookie for it, `echo` (the cookie of the hello it answers) and `proven` (the recipient
    /// has already echoed one of ours from `source`); one that answers nothing carries our
    /// cookie for the address it goes to (`unanswered`), marked as such (`KeyedHello.cookie`).
    private mutating func sealHello(recipientEpoch: UInt64, answering source: String? = nil, unanswered address: String? = nil,
                                    echo: UInt64 = 0, proven: Bool = false) -> [UInt8] {
        var body = DatagramBody.hello
        if bootKey != nil || admission != nil {
            let keyed = bootKey.map { key in
                let cookie = source.map(key.cookie(for:)) ?? address.map { key.cookie(for: $0) | KeyedHello.unansweredBit } ?? 0
                return KeyedHello(bootKey: key.publicKey, cookie: cookie, echo: echo, proven: proven)
            }
            body = .helloWith(keyed: keyed, certificate: admission?.certificate)
        }
        return DatagramCodec.seal(header: nextHeader(.hello, recipientEpoch: recipientEpoch), body: body, identity: identity, key: keyring.primary)
    }

    /// The header of the next datagram sent (it takes the next counter).
    private mutating func nextHeader(_ kind: DatagramKind, recipientEpoch: UInt64) -> DatagramHeader {
        DatagramHeader(kind: kind, keyID: keyring.primary.keyID, sender: localID,
                       senderEpoch: epoch, recipientEpoch: recipientEpoch, counter: takeCounter())
    }

    // MARK: Receiving

    /// Opens a datagram that came from `source` (the address replies go to, and with session keys
    /// the one a cookie's echo is checked against: the transport's text for it, always the same
    /// for one address).
    public mutating func receive(_ bytes: [UInt8], from source: String = "", now: Double) -> Reception {
        // Paired datagrams only with session keys: without them such a kind byte is unknown, and
        // the checks below (length first) say so.
        if bootKey != nil && bytes.count >= 2 && bytes[1] & PairedDatagram.flag != 0 { return receivePaired(bytes, from: source, now: now) }
        var reception = Reception()
        let opened: OpenedDatagram
        switch DatagramCodec.open(bytes, keyring: keyring, maxDatagramSize: settings.maxDatagramSize, maxObjectBytes: settings.maxObjectBytes) {
        case let .failure(reason): return reject(reason, reception)
        case let .success(value): opened = value
        }
        let header = opened.header
        let sender = header.sender
        guard sender != localID else { return reject(.reflected, reception) }
        if !revoked.isEmpty && revoked.contains(sender) { return reject(.revoked, reception) }

        if header.kind != .hello && header.recipientEpoch != epoch {
            // Sent to an earlier boot of ours (or a replay of such a datagram). Tell the sender our
            // epoch, rate-limited and only if the hello is no larger than what we received.
            if bytes.count >= helloSize, var session = sessions[sender], now - session.lastHelloSent >= settings.helloInterval {
                session.lastHelloSent = now
                store(session, for: sender)
                reception.replies.append(sealHello(recipientEpoch: header.senderEpoch, answering: source))
            }
            return reject(.staleRecipientEpoch, reception)
        }

        // One lookup: the session is then read and changed in place through its index (a copy
        // would also copy the replay window's bitmap). The index stays valid while no session
        // is added or removed, and nothing below adds or removes one but `store`.
        var slot = sessions.index(forKey: sender)
        let knownEpoch = slot.map { withSession(at: $0) { $0.epoch } } ?? 0
        if header.senderEpoch < knownEpoch {
            reception.earlierBoot = (sender, header.senderEpoch)
            return reject(.staleSenderEpoch, reception)
        }
        let newEpoch = header.senderEpoch > knownEpoch
        if newEpoch && !header.kind.isSigned { return reject(.noSession, reception) }  // only signed kinds start an epoch
        guard newEpoch || slot != nil else { return reject(.noSession, reception) }  // epoch 0 from a stranger
        if newEpoch {
            // The source's share first, so that one source cannot spend everyone's budget.
            guard takeSourceBudget(source, now: now) else { return reject(.sourceRateLimited, reception) }
            guard newSessions.take(now: now) else { return reject(.sessionsRateLimited, reception) }
        }
        // Only signed datagrams are checked against the replay window and move it. A chunk is
        // not signed (the manifest's hash binds it), so anyone holding the network key could
        // forge one in another peer's name: with a counter of 2^62 it moved the window past
        // every genuine counter, and 56 such chunks cut every link of an 8-peer network until
        // restart (issue 21). The reassembler drops duplicate pieces, and a forged piece can at
        // worst spoil the object it names (its hash then fails).
        let windowed = header.kind.isSigned
        if windowed {
            let verdict = newEpoch ? ReplayWindow().check(header.counter) : withSession(at: slot!) { $0.window.check(header.counter) }
            switch verdict {
            case .fresh: break
            case .duplicate: return reject(.replayed, reception)
            case .tooOld: return reject(.tooOld, reception)
            case .invalid: return reject(.counterInvalid, reception)
            }
        }
        if header.kind.isSigned && !opened.signatureVerifies() { return reject(.badSignature, reception) }
        var admitsNow = false
        if let admission, !admitted.contains(sender) {
            // Authentic (its signature verified), but from an identity whose certificate we have
            // not seen. A certified hello admits it; anything else is dropped and answered with
            // our hello naming no epoch of theirs, which a certified peer answers with its own
            // (a peer that restarted, or forgot it, is admitted again that way). The answer is
            // at most twice what came in, and budgeted with the new sessions.
            guard case let .helloWith(_, certificate?) = opened.body, certificate.subject == sender,
                  certificate.isValid(authority: admission.authority, mode: cryptoMode) else {
                if header.kind != .hello && 2 * bytes.count >= helloSize && newSessions.take(now: now) {
                    reception.replies.append(sealHello(recipientEpoch: 0, answering: source))
                }
                return reject(.notAdmitted, reception)
            }
            admitsNow = true
        }
        // Session keys: a hello brings the boot's key (new pair, or a restart's new key) and
        // perhaps the echo of our cookie for this source; a chunk under the network key is
        // refused (unsigned, anyone holding it could forge one).
        var newPair: (cipher: PairCipher, boot: UInt64)?
        var keyed: KeyedHello?
        var sourceCookie: UInt64 = 0
        if let bootKey {
            if header.kind == .chunk { return reject(.noSession, reception) }
            if case let .helloWith(theirs?, _) = opened.body {
                keyed = theirs
                sourceCookie = bootKey.cookie(for: source)
                let boot = PairCipher.fingerprint(theirs.bootKey)
                if newEpoch || boot != slot.map({ withSession(at: $0) { $0.boot } }) {
                    if let holder = byShortID[sender.leadingWord], holder != sender { return reject(.shortIDTaken, reception) }
                    guard let cipher = try? PairCipher(own: bootKey, ownID: localID, theirs: theirs.bootKey, theirID: sender) else {
                        return reject(.malformedBody, reception)  // a low-order key
                    }
                    newPair = (cipher, boot)
                }
            }
        }

        // Accepted: only now does any state move.
        if admitsNow { admitted.insert(sender) }
        if slot == nil {
            store(Session(lastHeard: now), for: sender)
            slot = sessions.index(forKey: sender)
        }
        let index = slot!
        // The echo of our cookie for this source: the sender received one of our hellos there
        // (each carries our boot key, so it holds the pair's keys too).
        let echoed = keyed.map { $0.echo & ~KeyedHello.unansweredBit == sourceCookie } ?? false
        let sourceTag = echoed ? Self.proofTag(sourceCookie) : 0
        if let newPair {
            storePair(newPair.cipher, boot: newPair.boot, proof: sourceTag, for: sender, at: index)
        } else if echoed {
            withSession(at: index) { if $0.boot != 0 { $0.pair = $0.boot | sourceTag << 32 } }
        }
        if newEpoch && knownEpoch != 0 { reassembler.dropAll(from: sender) }
        withSession(at: index) { session in
            if newEpoch {
                session.epoch = header.senderEpoch
                session.window = ReplayWindow()
            }
            if windowed { session.window.commit(header.counter) }
            session.lastHeard = now
        }
        acceptedDatagrams += 1
        reception.sender = sender

        switch opened.body {
        case .hello, .helloWith:
            reception.deliveries.append(.hello(sender))
            // A hello not naming our epoch is answered (then the answer names it: no ping-pong).
            // With session keys, so is one while either side has not proved the other at this
            // source (docs/protocol.md, "Session keys"): at once when it carries no echo (our
            // answer brings it a cookie), just echoed ours (the other side may still need our
            // echo of its cookie), or echoed a cookie of ours for another address's text (a host
            // name: our answer brings a cookie for this source); else once per helloInterval (an
            // echo that fails otherwise, as from an earlier boot of ours: no ping-pong).
            var answer = header.recipientEpoch != epoch
            var proven = false
            if let keyed {
                proven = withSession(at: index) { $0.proof } == Self.proofTag(sourceCookie)
                if !answer && (!keyed.proven || !proven) {
                    answer = keyed.echo == 0 || echoed || keyed.echo & KeyedHello.unansweredBit != 0
                        || now - withSession(at: index, { $0.lastHelloSent }) >= settings.helloInterval
                }
            }
            if answer {
                withSession(at: index) { $0.lastHelloSent = now }
                reception.replies.append(sealHello(recipientEpoch: header.senderEpoch, answering: source, echo: keyed?.cookie ?? 0, proven: proven))
            }
        default:
            deliver(opened.body, from: sender, now: now, into: &reception)
        }
        // With session keys items wait until the peer has proved that it receives here (sealed
        // after the answer, so that counters go out in order), and so does what it sent paired.
        if bootKey == nil || echoed {
            flush(to: sender, into: &reception)
            releaseHeld(from: sender, source: source, now: now, into: &reception)
        }
        return reception
    }

    /// One of `source`'s new sessions this second (`WireSettings.newSessionsPerSourcePerSecond`).
    private mutating func takeSourceBudget(_ source: String, now: Double) -> Bool {
        let rate = settings.newSessionsPerSourcePerSecond
        if sourceBudgets.count >= pruneSourcesAt {
            // A bucket left alone for 2 s is full again: forget it (memory stays with the sources
            // of the last two seconds; a simulation's peers each see only a few).
            sourceBudgets = sourceBudgets.filter { now - $0.value.lastTaken < 2 }
            pruneSourcesAt = max(64, 2 * sourceBudgets.count)
        }
        var entry = sourceBudgets[source] ?? (TokenBucket(rate: rate), now)
        let taken = entry.bucket.take(now: now)
        entry.lastTaken = now
        sourceBudgets[source] = entry
        return taken
    }

    /// Where the session table starts: the first heap memory a datagram reads (a simulator
    /// prefetches it; `PeerInstance.memoryHints`).
    @_spi(Simulation) public func memoryHints(_ body: (UnsafeRawPointer, Int) -> Void) {
        Swift.withUnsafeBytes(of: sessions) { $0.load(as: UnsafeRawPointer?.self).map { body($0, 192) } }
    }

    /// Whether `tick` has anything to do: objects being reassembled (which may expire) or
    /// items waiting for a peer's epoch (hellos to retry). A shell need not tick an idle endpoint.
    public var needsTick: Bool { !waiting.isEmpty || reassembler.objectsInProgress > 0 || !heldForProof.isEmpty }

    /// Periodic housekeeping: drops timed-out objects and stale queued items, and repeats hellos
    /// to peers we still wait for, at the address `address` names (none: no hello). Returns the
    /// hellos with their peers and addresses.
    public mutating func tick(now: Double, address: (PeerID) -> String? = { _ in "" }) -> [(peer: PeerID, address: String, hello: [UInt8])] {
        let expired = reassembler.expire(now: now)
        if expired > 0 { rejections[.objectTimedOut, default: 0] += expired }
        if !heldForProof.isEmpty {
            let before = heldForProof.values.reduce(0) { $0 + $1.count }
            heldForProof = heldForProof.compactMapValues { held in
                let kept = held.filter { now - $0.at < 2 * settings.helloInterval }
                return kept.isEmpty ? nil : kept
            }
            let dropped = before - heldForProof.values.reduce(0) { $0 + $1.count }
            if dropped > 0 { rejections[.unproven, default: 0] += dropped }
        }
        var out: [(peer: PeerID, address: String, hello: [UInt8])] = []
        // Sorted: a simulator replaying a seed must see the hellos in the same order.
        for peer in waiting.keys.sorted() {
            guard var queue = waiting.removeValue(forKey: peer), var session = sessions[peer] else { continue }
            let before = queue.items.count
            queue.items.removeAll { now - $0.queuedAt > settings.pendingTimeout }
            if queue.items.count < before {
                rejections[.pendingOverflow, default: 0] += before - queue.items.count
                queue.bytes = queue.items.reduce(0) { $0 + $1.item.byteCount }
            }
            guard !queue.items.isEmpty else { continue }
            waiting[peer] = queue
            if now - session.lastHelloSent >= settings.helloInterval, let address = address(peer) {
                session.lastHelloSent = now
                out.append((peer, address, sealHello(recipientEpoch: 0, unanswered: address)))
            }
            sessions[peer] = session
        }
        return out
    }

    /// Starts a session with `peer` as if hellos had been exchanged: for a simulation that begins
    /// in steady state (without n² hellos). A real peer always learns epochs from signed hellos.
    /// With session keys, `bootKey` gives each peer's boot public key (a simulator knows them all),
    /// and the peer counts as proved at `address` (the source its datagrams will come from).
    @_spi(Simulation) public mutating func assumeSession(with peer: PeerID, epoch: UInt64, at address: String = "", now: Double,
                                                         bootKey: (PeerID) -> [UInt8]? = { _ in nil }) {
        precondition(epoch > 0, "epoch 0 means 'unknown' on the wire")
        var session = Session(lastHeard: now)
        session.epoch = epoch
        store(session, for: peer)
        if let own = self.bootKey {
            guard let theirs = bootKey(peer), let cipher = try? PairCipher(own: own, ownID: localID, theirs: theirs, theirID: peer) else {
                preconditionFailure("a steady-state session with session keys needs the peer's boot key")
            }
            storePair(cipher, boot: PairCipher.fingerprint(theirs), proof: Self.proofTag(own.cookie(for: address)), for: peer,
                      at: sessions.index(forKey: peer)!)
        }
        if admission != nil { admitted.insert(peer) }  // as if its certified hello had come
    }

    /// Starts from `other`'s table of short ids (a simulation, before `assumeSession`): the
    /// tables of n peers then share one hash tree until they differ, instead of n² entries.
    @_spi(Simulation) public mutating func shareShortIDs(with other: WireEndpoint) {
        precondition(byShortID.isEmpty, "share the short ids before any session")
        byShortID = other.byShortID
    }

    /// Replaces the network keys (a rotation step): datagrams are sealed with the new primary
    /// from now on and opened with any of them. Sessions, epochs and windows are untouched.
    public mutating func setKeyring(_ new: NetworkKeyring) {
        precondition(new.primary.mode == keyring.primary.mode, "a keyring of another crypto mode")
        keyring = new
    }

    /// Forgets a peer's session (it left or was declared failed).
    /// `peer` runs a later boot, of epoch `epoch`, as its signed alive claim shows (membership
    /// learnt it by gossip): what is sent to it from now on names that epoch, and datagrams of
    /// its earlier boot are refused as stale. The later boot keeps no session with us, so it drops
    /// datagrams naming its earlier epoch without an answer (no reflection of recorded traffic):
    /// a peer that learnt of a restart by gossip kept sealing to the earlier boot, and its probes
    /// of the restarted member failed until that member was declared failed (fuzz seed 1062).
    public mutating func peerRebooted(_ peer: PeerID, epoch: UInt64) {
        guard let index = sessions.index(forKey: peer), withSession(at: index, { $0.epoch }) < epoch else { return }
        withSession(at: index) { session in
            session.epoch = epoch
            session.window = ReplayWindow()
        }
        reassembler.dropAll(from: peer)
        dropPair(peer)  // the later boot has another key: its hello brings it
    }

    public mutating func forget(_ peer: PeerID) {
        dropPair(peer)
        if byShortID[peer.leadingWord] == peer { byShortID[peer.leadingWord] = nil }
        sessions[peer] = nil
        if !admitted.isEmpty { admitted.remove(peer) }
        waiting[peer] = nil
        reassembler.dropAll(from: peer)
    }

    /// Peers this endpoint keeps a session with (tests, status).
    public var sessionCount: Int { sessions.count }

    /// With session keys: sessions whose pair is keyed, and of those the confirmed ones (status;
    /// a scan of the sessions). Nil without session keys.
    public var pairCounts: (keyed: Int, confirmed: Int)? {
        guard bootKey != nil else { return nil }
        var keyed = 0, confirmed = 0
        for session in sessions.values where session.boot != 0 {
            keyed += 1
            if session.confirmed { confirmed += 1 }
        }
        return (keyed, confirmed)
    }

    /// Forgets the sessions not heard from for `WireSettings.idleSessionTimeout` whose peer
    /// `keep` does not name (the caller keeps its members), and gives their memory back: after
    /// a flood of fresh identities the table shrinks to what it was. Returns how many went.
    public mutating func forgetIdleSessions(now: Double, keep: (PeerID) -> Bool) -> Int {
        let cutoff = now - settings.idleSessionTimeout
        let idle = sessions.compactMap { $0.value.lastHeard < cutoff && waiting[$0.key] == nil && !keep($0.key) ? $0.key : nil }
        for peer in idle { forget(peer) }
        // A dictionary keeps its capacity when emptied: rebuild it once it is mostly empty.
        if !idle.isEmpty && sessions.count * 4 < sessions.capacity { sessions = Dictionary(uniqueKeysWithValues: sessions.map { ($0.key, $0.value) }) }
        return idle.count
    }

    /// Forgets the keys of our pair with `peer` (its short id stays while its session does).
    private mutating func dropPair(_ peer: PeerID) {
        guard bootKey != nil, let index = sessions.index(forKey: peer) else { return }
        withSession(at: index) { $0.pair = 0 }
        if !realPairs.isEmpty { realPairs[peer] = nil }
        if !heldForProof.isEmpty { heldForProof[peer] = nil }
    }

    /// A datagram sealed with a pair's keys (`PairedDatagram`): the short id names the pair, its
    /// keys authenticate the sender (no signature) and its boot (no epochs); then the replay
    /// window, as for any datagram. One the receiver cannot open for want of keys (it forgot
    /// the sender, or restarted) is answered with a hello naming no epoch, at most twice its
    /// size and within the new-session budget: the sender answers with its own, which re-keys.
    /// One that our pair's keys refuse may come from an earlier boot of the sender, still running
    /// with the keys of its pair with us: it too is answered with a hello (once per hello
    /// interval), whose answer shows that boot's epoch (`Reception.earlierBoot`). Opening one
    /// proves nothing about `source` (an insider can derive any pair's keys with a member from
    /// the boot keys in hellos): only a hello's echo does.
    private mutating func receivePaired(_ sealed: [UInt8], from source: String, now: Double) -> Reception {
        let reception = Reception()
        guard sealed.count <= settings.maxDatagramSize else { return reject(.tooLong, reception) }
        let (kind, shortID, counter): (DatagramKind, UInt64, UInt64)
        switch PairedDatagram.header(of: sealed) {
        case let .failure(reason): return reject(reason, reception)
        case let .success(fields): (kind, shortID, counter) = fields
        }
        let holder = byShortID[shortID]
        if let holder, !revoked.isEmpty, revoked.contains(holder) { return reject(.revoked, reception) }
        guard let sender = holder, let slot = sessions.index(forKey: sender), let cipher = pairCipher(for: sender, at: slot) else {
            var reception = reception
            if 2 * sealed.count >= helloSize && newSessions.take(now: now) {
                reception.replies.append(sealHello(recipientEpoch: 0, answering: source))
            }
            return reject(.noSession, reception)
        }
        func refuse(_ reason: WireRejection) -> Reception {
            var reception = reception
            reception.replies += askingHello(at: slot, answering: sealed.count, from: source, now: now)
            return reject(reason, reception)
        }
        switch withSession(at: slot, { $0.window.check(counter) }) {
        case .fresh: break
        case .duplicate: return refuse(.replayed)
        case .tooOld: return refuse(.tooOld)
        case .invalid: return refuse(.counterInvalid)
        }
        var bytes = sealed
        let body: DatagramBody
        switch PairedDatagram.open(&bytes, kind: kind, counter: counter, cipher: cipher, maxObjectBytes: settings.maxObjectBytes) {
        case let .failure(reason): return refuse(reason)
        case let .success(value): body = value
        }
        withSession(at: slot) { session in
            session.window.commit(counter)
            session.lastHeard = now
        }
        acceptedDatagrams += 1
        var accepted = reception
        guard withSession(at: slot, { $0.confirmed }) else {
            // Its keys hold, but it has not shown where it receives: keep the body until it does,
            // and ask (a hello with our cookie for this source, once per helloInterval, at most
            // twice the size of what came in) in case its echo was lost.
            hold(body, from: sender, source: source, now: now)
            accepted.replies += askingHello(at: slot, answering: sealed.count, from: source, now: now)
            return accepted
        }
        accepted.sender = sender
        deliver(body, from: sender, now: now, into: &accepted)
        return accepted
    }

    /// A hello with our cookie for `source`, answering a paired datagram of `size` bytes from the
    /// peer whose session is at `slot`: at most once per helloInterval, and only when the hello
    /// is at most twice that size. Empty otherwise.
    private mutating func askingHello(at slot: Dictionary<PeerID, Session>.Index, answering size: Int, from source: String,
                                      now: Double) -> [[UInt8]] {
        let interval = settings.helloInterval
        guard 2 * size >= helloSize, withSession(at: slot, { session in
            guard now - session.lastHelloSent >= interval else { return false }
            session.lastHelloSent = now
            return true
        }) else { return [] }
        return [sealHello(recipientEpoch: 0, answering: source)]
    }

    /// Keeps `body`, paired from `peer` at `source`, until `peer` proves an address (`heldForProof`).
    private mutating func hold(_ body: DatagramBody, from peer: PeerID, source: String, now: Double) {
        guard heldForProof[peer, default: []].count < Self.heldPerPeer,
              heldForProof[peer] != nil || heldForProof.count < Self.heldPeers else {
            rejections[.unproven, default: 0] += 1
            return
        }
        heldForProof[peer, default: []].append((body, source, now))
    }

    /// Acts on what `peer` sent paired before it proved `source`, now that it has (what came from
    /// elsewhere is dropped).
    private mutating func releaseHeld(from peer: PeerID, source: String, now: Double, into reception: inout Reception) {
        guard !heldForProof.isEmpty, let held = heldForProof.removeValue(forKey: peer) else { return }
        for item in held {
            if item.source == source { deliver(item.body, from: peer, now: now, into: &reception) }
            else { rejections[.unproven, default: 0] += 1 }
        }
    }

    /// Seals the items waiting for `peer` (its epoch known, and with session keys the peer proved
    /// at the source they then go to).
    private mutating func flush(to peer: PeerID, into reception: inout Reception) {
        guard !waiting.isEmpty, let queue = waiting.removeValue(forKey: peer), let known = epoch(of: peer) else { return }
        for (item, _) in queue.items {
            reception.flushed += seal(item, to: peer, recipientEpoch: known)
        }
    }

    /// Hands an accepted datagram's message or object piece on (hellos are the caller's).
    private mutating func deliver(_ body: DatagramBody, from sender: PeerID, now: Double, into reception: inout Reception) {
        switch body {
        case .hello, .helloWith: break
        case let .message(channel, payload):
            reception.deliveries.append(.message(from: sender, channel: channel, payload: payload))
        case let .manifest(manifest):
            handle(reassembler.add(manifest: manifest, from: sender, now: now), into: &reception)
        case let .chunk(chunk):
            handle(reassembler.add(chunk: chunk, from: sender, now: now), into: &reception)
        }
    }

    /// The network authority revoked `peer` (membership verified the revocation): its session
    /// goes, and from now on its datagrams are dropped before any signature work.
    public mutating func revoke(_ peer: PeerID) {
        revoked.insert(peer)
        forget(peer)
        if bootKey != nil { byShortID[peer.leadingWord] = peer }  // its paired datagrams too are `revoked`
    }

    /// Bytes of the hellos this endpoint sends (with the certificate under admission).
    var helloSize: Int {
        DatagramHeader.byteCount + (bootKey == nil ? 0 : KeyedHello.byteCount) + (admission == nil ? 0 : Certificate.byteCount)
            + DatagramCodec.signatureByteCount + DatagramCodec.tagByteCount
    }

    private mutating func handle(_ outcome: Reassembler.Outcome, into reception: inout Reception) {
        switch outcome {
        case .pending: break
        case let .complete(object): reception.deliveries.append(.object(object))
        case let .rejected(reason): rejections[reason, default: 0] += 1
        }
    }

    private mutating func reject(_ reason: WireRejection, _ reception: Reception) -> Reception {
        rejections[reason, default: 0] += 1
        var reception = reception
        reception.rejection = reason
        return reception
    }

    /// Reads or changes a session in place. `sessions.values[index]` would copy the whole
    /// session for a read (retaining its window): a cost on every datagram.
    private mutating func withSession<R>(at index: Dictionary<PeerID, Session>.Index, _ body: (inout Session) -> R) -> R {
        body(&sessions.values[index])
    }

    private mutating func store(_ session: Session, for peer: PeerID) {
        if sessions[peer] == nil && sessions.count >= settings.maxSessions {
            // Full: forget the least recently heard eighth at once, so a stream of new peers
            // costs one sort per eighth of the table rather than a scan per peer.
            let victims = sessions.sorted { $0.value.lastHeard < $1.value.lastHeard }.prefix(max(1, sessions.count / 8)).map(\.key)
            for victim in victims { forget(victim) }
        }
        sessions[peer] = session
    }
}
