import VMBusProtocol
import VMBusRing

/// A VSP: the host side of one synthetic device. It declares its offer and serves the channels the guest
/// opens. Callbacks for one channel come from that channel's worker thread.
public protocol VMBusDeviceProvider: AnyObject, Sendable {
    /// The offer to publish. Read once, when the device is added.
    var offer: HostDeviceOffer { get }
    /// Called once when the device is added, with the handle for requests to the server, before the offer
    /// reaches the guest. It runs under the host's lock: store the handle, make no request with it here.
    func attached(_ device: HostDeviceHandle)
    /// The guest opened a channel (primary or sub-channel) of this device. Throw to refuse the open
    /// (the guest gets a failing OPENCHANNEL_RESULT).
    func channelOpened(_ channel: HostChannel) throws
    /// One packet arrived on `channel`; `buffer` holds its private copy. Runs on the channel's worker thread.
    func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: HostChannel)
    /// The channel stopped (guest close, rescind, unload, or the guest went away). No more packets follow.
    func channelClosed(_ channel: HostChannel)
}

extension VMBusDeviceProvider {
    public func attached(_ device: HostDeviceHandle) {}
    public func channelOpened(_ channel: HostChannel) throws {}
    public func channelClosed(_ channel: HostChannel) {}
}

/// The requests a device can make of the server.
public struct HostDeviceHandle: Sendable {
    weak var host: VMBusHost?
    let deviceIndex: Int

    /// Offers `count` more sub-channels (up to the offer's `maxSubchannels`); returns how many were offered.
    @discardableResult
    public func offerSubchannels(_ count: Int) -> Int {
        host?.offerSubchannels(deviceIndex: deviceIndex, count: count) ?? 0
    }

    /// Removes the device: every channel of it is rescinded.
    public func rescind() {
        host?.rescindDevice(deviceIndex: deviceIndex)
    }
}

extension HostDeviceHandle {
    /// The ranges of GPADL `handle`, if the guest created it on channel `relID` and it is complete and not
    /// being torn down. Devices that take buffers by GPADL handle (netvsc's receive and send buffers) look
    /// them up here.
    public func gpadlRanges(_ handle: UInt32, relID: UInt32) -> [GPARange]? {
        host?.gpadlRanges(handle, relID: relID)
    }
}
