import VMBusProtocol
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

    public init(classID: GUID, instanceID: GUID, mmioMegabytes: UInt16 = 0, flags: UInt16 = 0,
                userDefined: [UInt8] = [], maxSubchannels: Int = 0) {
        self.classID = classID
        self.instanceID = instanceID
        self.mmioMegabytes = mmioMegabytes
        self.flags = flags
        var ud = Array(userDefined.prefix(120))
        ud += [UInt8](repeating: 0, count: 120 - ud.count)
        self.userDefined = ud
        self.maxSubchannels = maxSubchannels
    }
}
