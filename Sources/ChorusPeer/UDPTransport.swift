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

    static func bind(host: String, port: Int, on loop: EventLoop, onDatagram: @escaping @Sendable ([UInt8], SocketAddress) -> Void) async throws -> UDPTransport {
        let channel = try await DatagramBootstrap(group: loop)
            .channelOption(ChannelOptions.socketOption(.so_rcvbuf), value: 4 << 20)
            .channelOption(ChannelOptions.socketOption(.so_sndbuf), value: 4 << 20)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(DatagramInboundHandler(onDatagram: onDatagram))
                }
            }
            .bind(host: host, port: port).get()
        return UDPTransport(channel: channel)
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
