import NIOCore
import NIOPosix

/// Receives datagrams and hands them, with their source, to the peer on the channel's event loop.
final class DatagramInboundHandler: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = AddressedEnvelope<ByteBuffer>
    // @unchecked: used only on its channel's event loop.
    private let onDatagram: @Sendable ([UInt8], SocketAddress) -> Void

    init(onDatagram: @escaping @Sendable ([UInt8], SocketAddress) -> Void) {
        self.onDatagram = onDatagram
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let envelope = unwrapInboundIn(data)
        var buffer = envelope.data
        let bytes = buffer.readBytes(length: buffer.readableBytes) ?? []
        onDatagram(bytes, envelope.remoteAddress)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // ICMP errors (e.g. port unreachable after a neighbour died) surface here; they are
        // expected on UDP and must not close the socket.
    }
}

/// The UDP socket of a peer.
final class UDPTransport: @unchecked Sendable {
    // @unchecked: `channel` is set once before use and only used on its event loop afterwards.
    let channel: Channel

    private init(channel: Channel) {
        self.channel = channel
    }

    /// Binds a socket that receives whole datagrams of up to `maxDatagramSize` bytes.
    ///
    /// NIO's default receive buffer is 2048 bytes: a longer datagram would arrive cut short and
    /// fail its tag check. Each read gets one byte more than `maxDatagramSize`, so a datagram too
    /// long for this peer's settings arrives one byte over and is rejected as `tooLong` (naming
    /// the mismatch) rather than as a bad tag. The kernel buffer holds a burst of such datagrams
    /// (a model sent in many full datagrams), bounded by `net.core.rmem_max`.
    static func bind(host: String, port: Int, maxDatagramSize: Int, on loop: EventLoop,
                     onDatagram: @escaping @Sendable ([UInt8], SocketAddress) -> Void) async throws -> UDPTransport {
        try await bound(host: host, port: port, maxDatagramSize: maxDatagramSize, on: loop, onDatagram: onDatagram).get()
    }

    /// `bind` as a future (for callers that are not async).
    static func bound(host: String, port: Int, maxDatagramSize: Int, on loop: EventLoop,
                      onDatagram: @escaping @Sendable ([UInt8], SocketAddress) -> Void) -> EventLoopFuture<UDPTransport> {
        DatagramBootstrap(group: loop)
            .channelOption(ChannelOptions.socketOption(.so_rcvbuf), value: socketBufferBytes(maxDatagramSize: maxDatagramSize))
            .channelOption(ChannelOptions.socketOption(.so_sndbuf), value: socketBufferBytes(maxDatagramSize: maxDatagramSize))
            .channelOption(ChannelOptions.recvAllocator, value: FixedSizeRecvByteBufferAllocator(capacity: receiveCapacity(maxDatagramSize: maxDatagramSize)))
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DatagramInboundHandler(onDatagram: onDatagram))
                }
            }
            .bind(host: host, port: port)
            .map { UDPTransport(channel: $0) }
    }

    /// Bytes read per datagram: one more than the largest accepted (see `bind`).
    static func receiveCapacity(maxDatagramSize: Int) -> Int { maxDatagramSize + 1 }

    /// Kernel socket buffers: 4 MiB, or 64 of the largest datagrams when that is more.
    static func socketBufferBytes(maxDatagramSize: Int) -> Int { max(4 << 20, 64 * (maxDatagramSize + 1)) }

    /// The receive buffer the kernel granted (it caps requests at `net.core.rmem_max`).
    func receiveBufferBytes() async -> Int? {
        try? await channel.getOption(ChannelOptions.socketOption(.so_rcvbuf)).get()
    }

    var localAddress: SocketAddress? { channel.localAddress }

    /// Queues datagrams and flushes once (cheaper than a flush per datagram for large objects).
    func send(_ datagrams: [[UInt8]], to address: SocketAddress) {
        guard !datagrams.isEmpty else { return }
        for bytes in datagrams {
            let buffer = channel.allocator.buffer(bytes: bytes)
            channel.write(AddressedEnvelope(remoteAddress: address, data: buffer), promise: nil)
        }
        channel.flush()
    }

    func close() async {
        try? await channel.close()
    }
}
