import VMBusWire

/// `struct vmbus_channel_gpadl_header` (20 bytes + range data): CHANNELMSG_GPADL_HEADER, G→H.
///
/// Carries the first part of the GPA range stream (§3.1 format: `gpa_range` headers, each followed by its
/// PFNs); GPADL_BODY messages carry the rest. ``rangeData`` is every byte after the fixed part, as received:
/// some senders (UEFI) send maximum-length messages, so only ``GPADLAssembler`` decides how much is useful.
public struct GPADLHeader: ChannelMessageCodable {
    public static let wireSize = 20
    public static let cName = "vmbus_channel_gpadl_header"
    public static let messageType = ChannelMessageType.gpadlHeader
    /// The most range-stream bytes one header can carry: 240 − 20.
    public static let maximumRangeDataLength = ChannelMessage.maximumLength - wireSize

    /// `child_relid`
    public var childRelID: UInt32
    /// `gpadl`: the handle, chosen by the guest.
    public var gpadl: UInt32
    /// `range_buflen`: bytes of the whole range stream, across header and bodies.
    public var rangeBufferLength: UInt16
    /// `rangecount`: ranges in the stream.
    public var rangeCount: UInt16
    /// `range[]`: the first bytes of the range stream (≤ 220).
    public var rangeData: [UInt8]

    public init(childRelID: UInt32, gpadl: UInt32, rangeBufferLength: UInt16, rangeCount: UInt16, rangeData: [UInt8]) {
        self.childRelID = childRelID
        self.gpadl = gpadl
        self.rangeBufferLength = rangeBufferLength
        self.rangeCount = rangeCount
        self.rangeData = rangeData
    }

    /// Decodes the fixed part and takes every remaining byte of `r` as range data.
    ///
    /// The counts are not judged here: a header whose `rangecount` or `range_buflen` cannot describe a valid
    /// stream is still a request the guest waits on, so it must reach the host, which answers it with a failing
    /// GPADL_CREATED (``GPADLAssembler`` refuses the counts).
    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        childRelID = try r.readUInt32()
        gpadl = try r.readUInt32()
        rangeBufferLength = try r.readUInt16()
        rangeCount = try r.readUInt16()
        rangeData = try r.readBytes(r.remaining)
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt32(childRelID)
        w.writeUInt32(gpadl)
        w.writeUInt16(rangeBufferLength)
        w.writeUInt16(rangeCount)
        w.writeBytes(rangeData)
    }

    public var channelMessage: ChannelMessage { .gpadlHeader(self) }
}

/// `struct vmbus_channel_gpadl_body` (16 bytes + PFNs): CHANNELMSG_GPADL_BODY, G→H.
///
/// Bodies carry no relid; the host routes them by ``gpadl`` alone.
public struct GPADLBody: ChannelMessageCodable {
    public static let wireSize = 16
    public static let cName = "vmbus_channel_gpadl_body"
    public static let messageType = ChannelMessageType.gpadlBody
    /// The most range-stream bytes one body can carry: 240 − 16 = 28 PFNs.
    public static let maximumDataLength = ChannelMessage.maximumLength - wireSize

    /// `msgnumber`: Linux leaves it 0, OpenVMM calls it reserved and ignores it.
    public var messageNumber: UInt32
    /// `gpadl`
    public var gpadl: UInt32
    /// `pfn[]`: the next bytes of the range stream (≤ 224; whole 8-byte words when we send it).
    public var data: [UInt8]

    public init(messageNumber: UInt32 = 0, gpadl: UInt32, data: [UInt8]) {
        self.messageNumber = messageNumber; self.gpadl = gpadl; self.data = data
    }

    /// Decodes the fixed part and takes every remaining byte of `r` as data.
    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        messageNumber = try r.readUInt32()
        gpadl = try r.readUInt32()
        data = try r.readBytes(r.remaining)
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt32(messageNumber)
        w.writeUInt32(gpadl)
        w.writeBytes(data)
    }

    public var channelMessage: ChannelMessage { .gpadlBody(self) }
}

/// `struct vmbus_channel_gpadl_created`: CHANNELMSG_GPADL_CREATED, H→G, answering every GPADL_HEADER.
public struct GPADLCreated: ChannelMessageCodable {
    public static let wireSize = 20
    public static let cName = "vmbus_channel_gpadl_created"
    public static let messageType = ChannelMessageType.gpadlCreated
    /// OpenVMM's failure status (`STATUS_UNSUCCESSFUL`); any non-zero value means failure to Linux.
    public static let statusUnsuccessful: UInt32 = 0x8000_FFFF

    /// `child_relid`
    public var childRelID: UInt32
    /// `gpadl`
    public var gpadl: UInt32
    /// `creation_status`: 0 on success.
    public var creationStatus: UInt32

    public init(childRelID: UInt32, gpadl: UInt32, creationStatus: UInt32) {
        self.childRelID = childRelID; self.gpadl = gpadl; self.creationStatus = creationStatus
    }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        childRelID = try r.readUInt32()
        gpadl = try r.readUInt32()
        creationStatus = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt32(childRelID)
        w.writeUInt32(gpadl)
        w.writeUInt32(creationStatus)
    }

    public var channelMessage: ChannelMessage { .gpadlCreated(self) }
}

/// `struct vmbus_channel_gpadl_teardown`: CHANNELMSG_GPADL_TEARDOWN, G→H.
public struct GPADLTeardown: ChannelMessageCodable {
    public static let wireSize = 16
    public static let cName = "vmbus_channel_gpadl_teardown"
    public static let messageType = ChannelMessageType.gpadlTeardown

    /// `child_relid`
    public var childRelID: UInt32
    /// `gpadl`
    public var gpadl: UInt32

    public init(childRelID: UInt32, gpadl: UInt32) { self.childRelID = childRelID; self.gpadl = gpadl }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        childRelID = try r.readUInt32()
        gpadl = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt32(childRelID)
        w.writeUInt32(gpadl)
    }

    public var channelMessage: ChannelMessage { .gpadlTeardown(self) }
}

/// `struct vmbus_channel_gpadl_torndown`: CHANNELMSG_GPADL_TORNDOWN, H→G, matched on the handle alone.
public struct GPADLTorndown: ChannelMessageCodable {
    public static let wireSize = 12
    public static let cName = "vmbus_channel_gpadl_torndown"
    public static let messageType = ChannelMessageType.gpadlTorndown

    /// `gpadl`
    public var gpadl: UInt32

    public init(gpadl: UInt32) { self.gpadl = gpadl }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        gpadl = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        w.writeUInt32(gpadl)
    }

    public var channelMessage: ChannelMessage { .gpadlTorndown(self) }
}
