import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing
@testable import ChorusPeer

/// DNS lookups run off the event loop, and their answers (failures too) are cached.
@Suite("address resolution")
struct AddressResolverTests {
    struct NoSuchHost: Error {}

    /// A resolver on its own loop with a clock the test moves and a lookup the test scripts.
    final class Bench: Sendable {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let clock = NIOLockedValueBox(0.0)
        let finished = NIOLockedValueBox<[(String, Bool)]>([])
        let resolver: NIOLoopBound<AddressResolver>
        var loop: EventLoop { resolver.eventLoop }

        init(lookup: @escaping AddressResolver.Lookup) throws {
            let loop = group.next()
            let (clock, finished) = (clock, finished)
            resolver = try loop.submit {
                let r = AddressResolver(loop: loop, clock: { clock.withLockedValue { $0 } }, resolvedFor: 60, failedFor: 5, lookup: lookup)
                r.onLookup = { text, result in finished.withLockedValue { $0.append((text, (try? result.get()) != nil)) } }
                return NIOLoopBound(r, eventLoop: loop)
            }.wait()
        }

        func resolve(_ text: String) throws -> AddressResolver.Answer {
            let resolver = resolver
            return try loop.submit { resolver.value.resolve(text) }.wait()
        }

        var lookups: Int {
            get throws {
                let resolver = resolver
                return try loop.submit { resolver.value.lookups }.wait()
            }
        }

        func waitForLookups(_ count: Int) {
            let deadline = Date().addingTimeInterval(5)
            while finished.withLockedValue({ $0.count }) < count && Date() < deadline { usleep(5_000) }
        }

        deinit {
            let resolver = resolver
            try? loop.submit { resolver.value.shutdown() }.wait()
            try? group.syncShutdownGracefully()
        }
    }

    @Test("a slow lookup does not hold up the event loop, and its answer is then served from the cache")
    func slowLookupOffTheLoop() throws {
        let bench = try Bench { hostPort in
            Thread.sleep(forTimeInterval: 0.5)  // a slow DNS server
            return try SocketAddress(ipAddress: "127.0.0.7", port: hostPort.port)
        }
        let started = Date()
        #expect(try bench.resolve("peer.example:7000") == .pending)
        #expect(Date().timeIntervalSince(started) < 0.2, "resolve waited for DNS")
        // The loop keeps running its timers while the lookup sleeps.
        let tick = Date()
        try bench.loop.scheduleTask(in: .milliseconds(20)) {}.futureResult.wait()
        #expect(Date().timeIntervalSince(tick) < 0.3, "the event loop was blocked")
        #expect(try bench.resolve("peer.example:7000") == .pending, "a second datagram must not start a second lookup")
        bench.waitForLookups(1)
        #expect(bench.finished.withLockedValue { $0.map(\.1) } == [true])
        #expect(try bench.resolve("peer.example:7000") == .address(try SocketAddress(ipAddress: "127.0.0.7", port: 7000)))
        #expect(try bench.lookups == 1)
    }

    @Test("a failed lookup is cached for failedFor seconds, then tried again")
    func failuresAreCached() throws {
        let bench = try Bench { _ in throw NoSuchHost() }
        #expect(try bench.resolve("NEW-HOST:7000") == .pending)
        bench.waitForLookups(1)
        for _ in 0..<100 { #expect(try bench.resolve("NEW-HOST:7000") == .failed) }
        #expect(try bench.lookups == 1, "every datagram looked the name up again")
        bench.clock.withLockedValue { $0 += 5 }
        #expect(try bench.resolve("NEW-HOST:7000") == .pending)
        bench.waitForLookups(2)
        #expect(try bench.lookups == 2)
    }

    @Test("IP literals need no lookup; an expired name is served while it refreshes, and a failed refresh keeps it")
    func literalsAndRefresh() throws {
        let answers = NIOLockedValueBox([true, false])
        let bench = try Bench { hostPort in
            guard answers.withLockedValue({ $0.removeFirst() }) else { throw NoSuchHost() }
            return try SocketAddress(ipAddress: "10.0.0.1", port: hostPort.port)
        }
        #expect(try bench.resolve("127.0.0.1:7001") == .address(try SocketAddress(ipAddress: "127.0.0.1", port: 7001)))
        #expect(try bench.resolve("[::1]:7001") == .address(try SocketAddress(ipAddress: "::1", port: 7001)))
        #expect(try bench.resolve("not an address") == .failed)
        #expect(try bench.lookups == 0)
        let known = try SocketAddress(ipAddress: "10.0.0.1", port: 7002)
        #expect(try bench.resolve("db.example:7002") == .pending)
        bench.waitForLookups(1)
        bench.clock.withLockedValue { $0 += 61 }
        #expect(try bench.resolve("db.example:7002") == .address(known), "an expired answer is still served")
        #expect(try bench.lookups == 2)
        usleep(100_000)  // the refresh fails
        #expect(try bench.resolve("db.example:7002") == .address(known), "a failed refresh forgot the address")
        #expect(try bench.lookups == 2)
    }
}
