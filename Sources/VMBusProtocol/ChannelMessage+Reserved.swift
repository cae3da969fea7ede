import VMBusWire

// Reserved channels (types 18-20) are a Windows debugger facility. Linux 6.12 only reserves the numbers
// (`CHANNELMSG_18`..`CHANNELMSG_20`) and declares no structs; the layouts are OpenVMM's
// (vm/devices/vmbus/vmbus_core/src/protocol.rs).

/// OpenVMM's `OpenReservedChannel` (28 bytes): OPEN_RESERVED_CHANNEL, G→H, from 4.0.
public struct OpenReservedChannel: ChannelMessageCodable {
    public static let wireSize = 28
    public static let cName = "OpenReservedChannel"
    public static let messageType = ChannelMessageType.openReservedChannel

    /// `channel_id`
    public var childRelID: UInt32
    /// `target_vp`
    public var targetVP: UInt32
    /// `target_sint`
    public var targetSINT: UInt32
    /// `ring_buffer_gpadl`
    public var ringBufferGPADLHandle: UInt32
    /// `downstream_page_offset`
    public var downstreamRingBufferPageOffset: UInt32

    public init(
        childRelID: UInt32, targetVP: UInt32, targetSINT: UInt32, ringBufferGPADLHandle: UInt32,
        downstreamRingBufferPageOffset: UInt32
    ) {
        self.childRelID = childRelID
        self.targetVP = targetVP
        self.targetSINT = targetSINT
        self.ringBufferGPADLHandle = ringBufferGPADLHandle
        self.downstreamRingBufferPageOffset = downstreamRingBufferPageOffset
    }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        childRelID = try r.readUInt32()
        targetVP = try r.readUInt32()
        targetSINT = try r.readUInt32()
        ringBufferGPADLHandle = try r.readUInt32()
        downstreamRingBufferPageOffset = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt32(childRelID)
        w.writeUInt32(targetVP)
        w.writeUInt32(targetSINT)
        w.writeUInt32(ringBufferGPADLHandle)
        w.writeUInt32(downstreamRingBufferPageOffset)
    }

    public var channelMessage: ChannelMessage { .openReservedChannel(self) }
}

/// OpenVMM's `CloseReservedChannel` (20 bytes): CLOSE_RESERVED_CHANNEL, G→H, from 4.0.
public struct CloseReservedChannel: ChannelMessageCodable {
    public static let wireSize = 20
    public static let cName = "CloseReservedChannel"
    public static let messageType = ChannelMessageType.closeReservedChannel

    /// `channel_id`
    public var childRelID: UInt32
    /// `target_vp`: where the response goes.
    public var targetVP: UInt32
    /// `target_sint`: where the response goes.
    public var targetSINT: UInt32

    public init(childRelID: UInt32, targetVP: UInt32, targetSINT: UInt32) {
        self.childRelID = childRelID; self.targetVP = targetVP; self.targetSINT = targetSINT
    }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        childRelID = try r.readUInt32()
        targetVP = try r.readUInt32()
        targetSINT = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt32(childRelID)
        w.writeUInt32(targetVP)
        w.writeUInt32(targetSINT)
    }

    public var channelMessage: ChannelMessage { .closeReservedChannel(self) }
}

/// OpenVMM's `CloseReservedChannelResponse` (12 bytes): CLOSE_RESERVED_RESPONSE, H→G, from 4.0.
public struct CloseReservedResponse: ChannelMessageCodable {
    public static let wireSize = 12
    public static let cName = "CloseReservedChannelResponse"
    public static let messageType = ChannelMessageType.closeReservedResponse

    /// `channel_id`
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

    public var channelMessage: ChannelMessage { .closeReservedResponse(self) }
}
