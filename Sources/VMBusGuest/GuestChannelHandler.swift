import VMBusRing
import VMBusTransport

/// What a driver supplies to receive on a channel. Packet calls come from the bus's interrupt thread (the
/// analogue of Linux's channel callback) or, for a channel that used up its drain budget, from the bus's poll
/// thread; never two at a time for one channel. They must not block, and must not close their own channel.
public protocol GuestChannelHandler: AnyObject, Sendable {
    /// A packet that is not a completion of one of our requests.
    func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel)
    /// The completion of a request sent with ``GuestChannel/sendRequest(_:context:)``.
    func completionReceived(context: UInt64, packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel)
    /// Outstanding requests that will never complete (rescind, close, host lost).
    func requestsFailed(contexts: [UInt64], error: GuestError, on channel: GuestChannel)
    /// The bus closed `channel` because the host broke it (a corrupt ring, a packet larger than the maximum
    /// packet size); its outstanding requests were failed before. Called on the bus work thread, before the
    /// bus tells the host (CLOSECHANNEL). The device stays bound; the driver may open the channel again.
    func channelClosed(_ channel: GuestChannel, error: GuestError)
}

extension GuestChannelHandler {
    public func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {}
    public func completionReceived(context: UInt64, packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {}
    public func requestsFailed(contexts: [UInt64], error: GuestError, on channel: GuestChannel) {}
    public func channelClosed(_ channel: GuestChannel, error: GuestError) {}
}
