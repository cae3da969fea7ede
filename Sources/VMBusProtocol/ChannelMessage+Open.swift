import VMBusWire

/// The 6.0 tail of OPENCHANNEL (OpenVMM's `OpenChannel2`, bytes 148..<156): a guest-chosen doorbell and
/// interrupt-redirection flags. Linux 6.12 never sends it.
public struct OpenChannelSignalParameters: Equatable, Hashable, Sendable {
    /// `connection_id`: valid with ``VMBusFeatureFlags/guestSpecifiedSignalParameters``.
    public var connectionID: UInt32
    /// `event_flag`: valid with ``VMBusFeatureFlags/guestSpecifiedSignalParameters``.
    public var eventFlag: UInt16
    /// `flags`: bit 0 `redirect_interrupt`, valid with ``VMBusFeatureFlags/channelInterruptRedirection``.
    public var flags: UInt16

    /// `redirect_interrupt`
    public static let flagRedirectInterrupt: UInt16 = 0x1
    /// Bytes the tail adds to the 148-byte message.
    public static let wireSize = 8

    public init(connectionID: UInt32, eventFlag: UInt16, flags: UInt16 = 0) {
        self.connectionID = connectionID; self.eventFlag = eventFlag; self.flags = flags
    }
}

/// `struct vmbus_channel_open_channel` (148 bytes): CHANNELMSG_OPENCHANNEL, G→H.
///
/// A message of at least 156 bytes is OpenVMM's 6.0 `OpenChannel2`; its tail is kept in ``signalParameters``.
public struct OpenChannel: ChannelMessageCodable {
    public static let wireSize = 148
    public static let cName = "vmbus_channel_open_channel"
    public static let messageType = ChannelMessageType.openChannel
    /// `MAX_USER_DEFINED_BYTES`
    public static let userDataSize = 120
    /// OpenVMM's `VP_INDEX_DISABLE_INTERRUPT`: a `target_vp` asking for no host-to-guest interrupts.
    public static let targetVPDisableInterrupt: UInt32 = 0xFFFF_FFFF

    /// `child_relid`
    public var childRelID: UInt32
    /// `openid`: echoed in OPENCHANNEL_RESULT (Linux uses the relid).
    public var openID: UInt32
    /// `ringbuffer_gpadlhandle`: the GPADL covering both rings.
    public var ringBufferGPADLHandle: UInt32
    /// `target_vp`
    public var targetVP: UInt32
    /// `downstream_ringbuffer_pageoffset`: first 4 KiB page of the host-to-guest ring inside the GPADL.
    public var downstreamRingBufferPageOffset: UInt32
    /// `userdata`: always exactly 120 bytes (assignments are padded with zeros or truncated).
    public var userData: [UInt8] {
        didSet { if userData.count != Self.userDataSize { userData = exactly(Self.userDataSize, userData) } }
    }
    /// The 6.0 `OpenChannel2` tail, `nil` for the 148-byte form Linux sends.
    public var signalParameters: OpenChannelSignalParameters?

    public init(
        childRelID: UInt32, openID: UInt32, ringBufferGPADLHandle: UInt32, targetVP: UInt32,
        downstreamRingBufferPageOffset: UInt32, userData: [UInt8] = [],
        signalParameters: OpenChannelSignalParameters? = nil
    ) {
        self.childRelID = childRelID
        self.openID = openID
        self.ringBufferGPADLHandle = ringBufferGPADLHandle
        self.targetVP = targetVP
        self.downstreamRingBufferPageOffset = downstreamRingBufferPageOffset
        self.userData = exactly(Self.userDataSize, userData)
        self.signalParameters = signalParameters
    }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        childRelID = try r.readUInt32()
        openID = try r.readUInt32()
        ringBufferGPADLHandle = try r.readUInt32()
        targetVP = try r.readUInt32()
        downstreamRingBufferPageOffset = try r.readUInt32()
        userData = try r.readBytes(Self.userDataSize)
        if r.remaining >= OpenChannelSignalParameters.wireSize {
            signalParameters = OpenChannelSignalParameters(
                connectionID: try r.readUInt32(), eventFlag: try r.readUInt16(), flags: try r.readUInt16())
        } else {
            signalParameters = nil
        }
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt32(childRelID)
        w.writeUInt32(openID)
        w.writeUInt32(ringBufferGPADLHandle)
        w.writeUInt32(targetVP)
        w.writeUInt32(downstreamRingBufferPageOffset)
        w.writeBytes(exactly(Self.userDataSize, userData))
        if let signalParameters {
            w.writeUInt32(signalParameters.connectionID)
            w.writeUInt16(signalParameters.eventFlag)
            w.writeUInt16(signalParameters.flags)
        }
    }

    public var channelMessage: ChannelMessage { .openChannel(self) }
}

/// `struct vmbus_channel_open_result`: CHANNELMSG_OPENCHANNEL_RESULT, H→G.
public struct OpenChannelResult: ChannelMessageCodable {
    public static let wireSize = 20
    public static let cName = "vmbus_channel_open_result"
    public static let messageType = ChannelMessageType.openChannelResult

    /// `child_relid`
    public var childRelID: UInt32
    /// `openid`: copied from the OPENCHANNEL.
    public var openID: UInt32
    /// `status`: 0 on success; Linux treats anything else as failure.
    public var status: UInt32

    public init(childRelID: UInt32, openID: UInt32, status: UInt32) {
        self.childRelID = childRelID; self.openID = openID; self.status = status
    }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        childRelID = try r.readUInt32()
        openID = try r.readUInt32()
        status = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt32(childRelID)
        w.writeUInt32(openID)
        w.writeUInt32(status)
    }

    public var channelMessage: ChannelMessage { .openChannelResult(self) }
}

/// `struct vmbus_channel_close_channel`: CHANNELMSG_CLOSECHANNEL, G→H, never answered.
public struct CloseChannel: ChannelMessageCodable {
    public static let wireSize = 12
    public static let cName = "vmbus_channel_close_channel"
    public static let messageType = ChannelMessageType.closeChannel

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

    public var channelMessage: ChannelMessage { .closeChannel(self) }
}

/// `struct vmbus_channel_modifychannel`: CHANNELMSG_MODIFYCHANNEL, G→H, from 4.1.
public struct ModifyChannel: ChannelMessageCodable {
    public static let wireSize = 16
    public static let cName = "vmbus_channel_modifychannel"
    public static let messageType = ChannelMessageType.modifyChannel

    /// `child_relid`
    public var childRelID: UInt32
    /// `target_vp`
    public var targetVP: UInt32

    public init(childRelID: UInt32, targetVP: UInt32) { self.childRelID = childRelID; self.targetVP = targetVP }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        childRelID = try r.readUInt32()
        targetVP = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt32(childRelID)
        w.writeUInt32(targetVP)
    }

    public var channelMessage: ChannelMessage { .modifyChannel(self) }
}

/// `struct vmbus_channel_modifychannel_response`: CHANNELMSG_MODIFYCHANNEL_RESPONSE, H→G, from 5.3.
public struct ModifyChannelResponse: ChannelMessageCodable {
    public static let wireSize = 16
    public static let cName = "vmbus_channel_modifychannel_response"
    public static let messageType = ChannelMessageType.modifyChannelResponse

    /// `child_relid`
    public var childRelID: UInt32
    /// `status`: 0 on success.
    public var status: UInt32

    public init(childRelID: UInt32, status: UInt32) { self.childRelID = childRelID; self.status = status }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        childRelID = try r.readUInt32()
        status = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt32(childRelID)
        w.writeUInt32(status)
    }

    public var channelMessage: ChannelMessage { .modifyChannelResponse(self) }
}
