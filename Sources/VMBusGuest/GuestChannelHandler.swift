import VMBusRing
import VMBusTransport

/// What a driver supplies to receive on a channel. Calls come from the bus's interrupt thread (the analogue
/// of Linux's channel callback): they must not block.
public protocol GuestChannelHandler: AnyObject, Sendable {
    /// A packet that is not a completion of one of our requests.
    func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel)
    /// The completion of a request sent with ``GuestChannel/sendRequest(_:context:)``.
    func completionReceived(context: UInt64, packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel)
    /// Outstanding requests that will never complete (rescind, close, host lost).
    func requestsFailed(contexts: [UInt64], error: GuestError, on channel: GuestChannel)
}

extension GuestChannelHandler {
    public func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {}
    public func completionReceived(context: UInt64, packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {}
    public func requestsFailed(contexts: [UInt64], error: GuestError, on channel: GuestChannel) {}
}
