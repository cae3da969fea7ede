import VMBusWire

/// `VMBUS_CHANNEL_*`: the `chn_flags` word of an offer.
///
/// 0x2 and 0x4 are Linux's names; a 6.0 host that negotiated `confidentialChannels` uses them for
/// confidential ring / external memory instead (PROTOCOL.md §14.1), and 0x8 for pinned memory.
public struct OfferChannelFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `VMBUS_CHANNEL_ENUMERATE_DEVICE_INTERFACE`
    public static let enumerateDeviceInterface = Self(rawValue: 0x1)
    /// `VMBUS_CHANNEL_SERVER_SUPPORTS_TRANSFER_PAGES`
    public static let serverSupportsTransferPages = Self(rawValue: 0x2)
    /// `VMBUS_CHANNEL_SERVER_SUPPORTS_GPADLS`
    public static let serverSupportsGPADLs = Self(rawValue: 0x4)
    /// `VMBUS_CHANNEL_NAMED_PIPE_MODE`: `user_def` starts with a u32 `pipe_mode`.
    public static let namedPipeMode = Self(rawValue: 0x10)
    /// `VMBUS_CHANNEL_LOOPBACK_OFFER`
    public static let loopbackOffer = Self(rawValue: 0x100)
    /// `VMBUS_CHANNEL_PARENT_OFFER`
    public static let parentOffer = Self(rawValue: 0x200)
    /// `VMBUS_CHANNEL_REQUEST_MONITORED_NOTIFICATION`
    public static let requestMonitoredNotification = Self(rawValue: 0x400)
    /// `VMBUS_CHANNEL_TLNPI_PROVIDER_OFFER`: an hv_sock connection.
    public static let tlnpiProviderOffer = Self(rawValue: 0x2000)
}

/// Pads with zeros or truncates to exactly `count` bytes.
@inline(__always)
func exactly(_ count: Int, _ bytes: [UInt8]) -> [UInt8] {
    if bytes.count == count { return bytes }
    if bytes.count > count { return Array(bytes[0..<count]) }
    return bytes + [UInt8](repeating: 0, count: count - bytes.count)
}

/// `struct vmbus_channel_offer_channel` (196 bytes, packed): CHANNELMSG_OFFERCHANNEL, H→G.
///
/// Flattens the nested `struct vmbus_channel_offer` (bytes 8..<184). Reserved fields are written as zero and
/// ignored on read.
public struct OfferChannel: ChannelMessageCodable {
    public static let wireSize = 196
    public static let cName = "vmbus_channel_offer_channel"
    public static let messageType = ChannelMessageType.offerChannel
    /// `MAX_USER_DEFINED_BYTES`
    public static let userDefinedSize = 120

    /// `offer.if_type`: the device class.
    public var interfaceType: GUID
    /// `offer.if_instance`: the device instance; sub-channels repeat their primary's.
    public var interfaceInstance: GUID
    /// `offer.chn_flags`, raw. See ``flags``.
    public var channelFlags: UInt16
    /// `offer.mmio_megabytes`
    public var mmioMegabytes: UInt16
    /// `offer.u.std.user_def`: always exactly 120 bytes (assignments are padded with zeros or truncated).
    public var userDefined: [UInt8] {
        didSet { if userDefined.count != Self.userDefinedSize { userDefined = exactly(Self.userDefinedSize, userDefined) } }
    }
    /// `offer.sub_channel_index`: 0 for a primary channel.
    public var subchannelIndex: UInt16
    /// `offer.reserved3`, which OpenVMM calls `mmio_megabytes_optional`.
    public var mmioMegabytesOptional: UInt16
    /// `child_relid`
    public var childRelID: UInt32
    /// `monitorid`: meaningful only when ``monitorAllocated``.
    public var monitorID: UInt8
    /// `monitor_allocated` (bit 0 of byte 189).
    public var monitorAllocated: Bool
    /// `is_dedicated_interrupt` (bit 0 of the u16 at 190).
    public var isDedicatedInterrupt: Bool
    /// `connection_id`: the guest-to-host doorbell.
    public var connectionID: UInt32

    public init(
        interfaceType: GUID, interfaceInstance: GUID, channelFlags: UInt16 = 0, mmioMegabytes: UInt16 = 0,
        userDefined: [UInt8] = [], subchannelIndex: UInt16 = 0, mmioMegabytesOptional: UInt16 = 0,
        childRelID: UInt32, monitorID: UInt8 = 0, monitorAllocated: Bool = false, isDedicatedInterrupt: Bool = true,
        connectionID: UInt32
    ) {
        self.interfaceType = interfaceType
        self.interfaceInstance = interfaceInstance
        self.channelFlags = channelFlags
        self.mmioMegabytes = mmioMegabytes
        self.userDefined = exactly(Self.userDefinedSize, userDefined)
        self.subchannelIndex = subchannelIndex
        self.mmioMegabytesOptional = mmioMegabytesOptional
        self.childRelID = childRelID
        self.monitorID = monitorID
        self.monitorAllocated = monitorAllocated
        self.isDedicatedInterrupt = isDedicatedInterrupt
        self.connectionID = connectionID
    }

    /// ``channelFlags`` as an option set.
    public var flags: OfferChannelFlags {
        get { OfferChannelFlags(rawValue: channelFlags) }
        set { channelFlags = newValue.rawValue }
    }

    /// `offer.u.pipe.pipe_mode` (`VMBUS_PIPE_TYPE_BYTE` 0 or `VMBUS_PIPE_TYPE_MESSAGE` 4): the first four bytes
    /// of ``userDefined``, meaningful for named-pipe offers.
    public var pipeMode: UInt32 {
        get { UInt32(userDefined[0]) | UInt32(userDefined[1]) << 8 | UInt32(userDefined[2]) << 16 | UInt32(userDefined[3]) << 24 }
        set { for i in 0..<4 { userDefined[i] = UInt8(truncatingIfNeeded: newValue >> (8 * UInt32(i))) } }
    }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        interfaceType = try GUID(from: &r)
        interfaceInstance = try GUID(from: &r)
        try r.skip(16)  // reserved1, reserved2
        channelFlags = try r.readUInt16()
        mmioMegabytes = try r.readUInt16()
        userDefined = try r.readBytes(Self.userDefinedSize)
        subchannelIndex = try r.readUInt16()
        mmioMegabytesOptional = try r.readUInt16()
        childRelID = try r.readUInt32()
        monitorID = try r.readUInt8()
        monitorAllocated = try r.readUInt8() & 1 != 0
        isDedicatedInterrupt = try r.readUInt16() & 1 != 0
        connectionID = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        interfaceType.encode(into: &w)
        interfaceInstance.encode(into: &w)
        w.writeZeros(16)
        w.writeUInt16(channelFlags)
        w.writeUInt16(mmioMegabytes)
        w.writeBytes(exactly(Self.userDefinedSize, userDefined))
        w.writeUInt16(subchannelIndex)
        w.writeUInt16(mmioMegabytesOptional)
        w.writeUInt32(childRelID)
        w.writeUInt8(monitorID)
        w.writeUInt8(monitorAllocated ? 1 : 0)
        w.writeUInt16(isDedicatedInterrupt ? 1 : 0)
        w.writeUInt32(connectionID)
    }

    public var channelMessage: ChannelMessage { .offerChannel(self) }
}

/// `struct vmbus_channel_rescind_offer`: CHANNELMSG_RESCIND_CHANNELOFFER, H→G.
public struct RescindChannelOffer: ChannelMessageCodable {
    public static let wireSize = 12
    public static let cName = "vmbus_channel_rescind_offer"
    public static let messageType = ChannelMessageType.rescindChannelOffer

    /// `child_relid`
    public var childRelID: UInt32

    public init(childRelID: UInt32) { self.childRelID = childRelID }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        childRelID = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt32(childRelID)
    }

    public var channelMessage: ChannelMessage { .rescindChannelOffer(self) }
}

/// CHANNELMSG_REQUESTOFFERS, G→H: a bare `struct vmbus_channel_message_header`.
public struct RequestOffers: ChannelMessageCodable {
    public static let wireSize = 8
    public static let cName = "vmbus_channel_message_header"
    public static let messageType = ChannelMessageType.requestOffers

    public init() {}

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
    }

    public func encode(into w: inout WireWriter) { ChannelMessageHeader(messageType: Self.messageType).encode(into: &w) }

    public var channelMessage: ChannelMessage { .requestOffers(self) }
}

/// CHANNELMSG_ALLOFFERS_DELIVERED, H→G: a bare `struct vmbus_channel_message_header`.
public struct AllOffersDelivered: ChannelMessageCodable {
    public static let wireSize = 8
    public static let cName = "vmbus_channel_message_header"
    public static let messageType = ChannelMessageType.allOffersDelivered

    public init() {}

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
    }

    public func encode(into w: inout WireWriter) { ChannelMessageHeader(messageType: Self.messageType).encode(into: &w) }

    public var channelMessage: ChannelMessage { .allOffersDelivered(self) }
}

/// `struct vmbus_channel_relid_released`: CHANNELMSG_RELID_RELEASED, G→H.
public struct RelIDReleased: ChannelMessageCodable {
    public static let wireSize = 12
    public static let cName = "vmbus_channel_relid_released"
    public static let messageType = ChannelMessageType.relIDReleased

    /// `child_relid`
    public var childRelID: UInt32

    public init(childRelID: UInt32) { self.childRelID = childRelID }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        childRelID = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt32(childRelID)
    }

    public var channelMessage: ChannelMessage { .relIDReleased(self) }
}
