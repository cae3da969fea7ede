import VMBusProtocol
import VMBusRing
import VMBusWire

/// What a device provider declares about itself: the fields of `struct vmbus_channel_offer` that the device
/// (not the server) decides.
public struct HostDeviceOffer: Sendable, Equatable {
    /// Device class (`if_type`).
    public var classID: GUID
    /// Device instance (`if_instance`); unique per device.
    public var instanceID: GUID
    /// `mmio_megabytes`
    public var mmioMegabytes: UInt16
    /// `chn_flags`
    public var flags: UInt16
    /// `user_def`: 120 bytes of device-defined data (shorter input is zero-padded).
    public var userDefined: [UInt8]
    /// How many sub-channels the device can offer at most.
    public var maxSubchannels: Int
    /// The largest packet the guest may send on a channel of this device, descriptor included (Linux's
    /// `max_pkt_size`): 4 KiB unless the device protocol needs more (Linux raises it for netvsc). Each open
    /// channel keeps one buffer of this size; a larger packet is a protocol violation that rescinds the channel.
    public var maxPacketSize: Int

    public init(classID: GUID, instanceID: GUID, mmioMegabytes: UInt16 = 0, flags: UInt16 = 0,
                userDefined: [UInt8] = [], maxSubchannels: Int = 0,
                maxPacketSize: Int = PacketBuffer.defaultCapacity) {
        self.classID = classID
        self.instanceID = instanceID
        self.mmioMegabytes = mmioMegabytes
        self.flags = flags
        var ud = Array(userDefined.prefix(120))
        ud += [UInt8](repeating: 0, count: 120 - ud.count)
        self.userDefined = ud
        self.maxSubchannels = maxSubchannels
        self.maxPacketSize = max(maxPacketSize, PacketDescriptor.wireSize)
    }
}
