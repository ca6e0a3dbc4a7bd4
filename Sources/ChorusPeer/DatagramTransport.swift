import NIOCore

/// Where a `PeerNode` sends its datagrams: the UDP socket in a real process (`UDPTransport`), an
/// in-memory switch in the in-process tests. Datagrams come the other way through
/// `PeerNode.receive(_:from:)`, on the node's event loop.
///
/// Sendable because a delayed datagram (fault injection) is sent from a scheduled task; an
/// implementation is used only on the node's event loop.
protocol DatagramTransport: AnyObject, Sendable {
    /// Sends each datagram, whole, to `address` (best effort, like UDP: nothing reports a loss).
    func send(_ datagrams: [[UInt8]], to address: SocketAddress)
    func close() async
}

extension UDPTransport: DatagramTransport {}
