import ChorusCore
import NIOCore
import NIOPosix

/// Turns the "HOST:PORT" texts of members into socket addresses without blocking the event loop.
///
/// A host name needs `getaddrinfo`, which can block for seconds (a slow or unreachable DNS
/// server); on the event loop that would delay every ack and make the peer look dead. Names are
/// therefore looked up on threads of their own, and the answer comes back to the loop through
/// `onLookup`. IP literals are parsed at once. Answers are cached: successes for `resolvedFor`
/// seconds (then served while a refresh runs, so a changed DNS record is picked up; a failed
/// refresh keeps the old address), failures for `failedFor` seconds (so a bad name costs one
/// lookup per period, not one per datagram).
///
/// Confined to its event loop, like the `PeerNode` that owns it.
final class AddressResolver {
    enum Answer: Equatable {
        case address(SocketAddress)
        /// Looking it up; `onLookup` reports the outcome.
        case pending
        /// The name did not resolve (recently); the datagram is dropped.
        case failed
    }

    private enum Entry {
        case resolved(SocketAddress, until: Double, refreshing: Bool)
        case failed(until: Double)
        case pending
    }

    typealias Lookup = @Sendable (HostPort) throws -> SocketAddress

    let resolvedFor: Double
    let failedFor: Double
    let maxEntries: Int
    /// Runs on the loop when a lookup started by `resolve` ends: the address, or the error.
    var onLookup: ((PeerAddress, Result<SocketAddress, Error>) -> Void)?
    /// Lookups started (refreshes included).
    private(set) var lookups = 0
    private var cache: [PeerAddress: Entry] = [:]
    private let loop: EventLoop
    private let clock: () -> Double
    private let pool: NIOThreadPool
    private let lookup: Lookup

    /// `clock`: the owner's seconds, for expiry.
    init(loop: EventLoop, clock: @escaping () -> Double, threads: Int = 2, resolvedFor: Double = 60, failedFor: Double = 5,
         maxEntries: Int = 4096, lookup: @escaping Lookup = AddressResolver.systemLookup) {
        self.loop = loop
        self.clock = clock
        self.resolvedFor = resolvedFor
        self.failedFor = failedFor
        self.maxEntries = maxEntries
        self.lookup = lookup
        pool = NIOThreadPool(numberOfThreads: threads)
        pool.start()
    }

    /// `getaddrinfo` through NIO (blocking: only ever called on the resolver's threads).
    static let systemLookup: Lookup = { try SocketAddress.makeAddressResolvingHost($0.host, port: $0.port) }

    /// The address of `text` now, never waiting for DNS.
    func resolve(_ text: PeerAddress) -> Answer {
        loop.preconditionInEventLoop()
        let now = clock()
        switch cache[text] {
        case let .resolved(address, until, refreshing):
            if now >= until && !refreshing {
                cache[text] = .resolved(address, until: until, refreshing: true)
                start(text)
            }
            return .address(address)
        case let .failed(until) where now < until:
            return .failed
        case .pending:
            return .pending
        case .failed, nil:
            break
        }
        guard let hostPort = HostPort(parsing: text) else {
            store(text, .failed(until: now + failedFor))
            return .failed
        }
        if let literal = try? SocketAddress(ipAddress: hostPort.host, port: hostPort.port) {
            store(text, .resolved(literal, until: .infinity, refreshing: false))
            return .address(literal)
        }
        store(text, .pending)
        start(text)
        return .pending
    }

    func shutdown() {
        pool.shutdownGracefully { _ in }
    }

    private func start(_ text: PeerAddress) {
        guard let hostPort = HostPort(parsing: text) else { return }
        lookups += 1
        let lookup = lookup
        let resolver = NIOLoopBound(self, eventLoop: loop)
        pool.runIfActive(eventLoop: loop) { try lookup(hostPort) }.whenComplete { result in
            resolver.value.finish(text, result)
        }
    }

    private func finish(_ text: PeerAddress, _ result: Result<SocketAddress, Error>) {
        let now = clock()
        switch (result, cache[text]) {
        case let (.success(address), _):
            store(text, .resolved(address, until: now + resolvedFor, refreshing: false))
        case let (.failure, .resolved(old, _, _)?):
            store(text, .resolved(old, until: now + failedFor, refreshing: false))  // a failed refresh: keep the old address
            return
        case (.failure, _):
            store(text, .failed(until: now + failedFor))
        }
        onLookup?(text, result)
    }

    /// A full cache forgets everything but what is being looked up: addresses come from
    /// gossip, so their number is bounded only by the membership.
    private func store(_ text: PeerAddress, _ entry: Entry) {
        if cache[text] == nil && cache.count >= maxEntries {
            cache = cache.filter { if case .pending = $0.value { true } else { false } }
        }
        cache[text] = entry
    }
}
