import VMBusWire

/// `struct vmtransfer_page_range`: a byte range inside a registered transfer-page set (netvsc's receive buffer).
public struct TransferPageRange: WireCodable, Equatable, Hashable, Sendable {
    public static let wireSize = 8
    public static let cName = "vmtransfer_page_range"

    /// `byte_count`
    public var byteCount: UInt32
    /// `byte_offset`: from the start of the transfer-page set.
    public var byteOffset: UInt32

    public init(byteCount: UInt32, byteOffset: UInt32) { self.byteCount = byteCount; self.byteOffset = byteOffset }

    public init(from r: inout WireReader) throws(WireError) {
        byteCount = try r.readUInt32()
        byteOffset = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(byteCount)
        w.writeUInt32(byteOffset)
    }
}

/// `struct vmtransfer_page_packet_header` (24 bytes + ranges): the head of a `VM_PKT_DATA_USING_XFER_PAGES`
/// ring packet. The device payload starts at `offset8 * 8`.
public struct TransferPagePacketHeader: WireCodable, Equatable, Sendable {
    public static let wireSize = 24
    public static let cName = "vmtransfer_page_packet_header"

    /// `d`: the packet descriptor.
    public var descriptor: PacketDescriptor
    /// `xfer_pageset_id`: the id given when the buffer was registered (netvsc uses 0xCAFE).
    public var xferPageSetID: UInt16
    /// `sender_owns_set` (any non-zero byte reads as `true`).
    public var senderOwnsSet: Bool
    /// `ranges`; `range_cnt` on the wire is `ranges.count`.
    public var ranges: [TransferPageRange]

    public init(descriptor: PacketDescriptor, xferPageSetID: UInt16, senderOwnsSet: Bool = false, ranges: [TransferPageRange]) {
        self.descriptor = descriptor
        self.xferPageSetID = xferPageSetID
        self.senderOwnsSet = senderOwnsSet
        self.ranges = ranges
    }

    /// Builds the header of a packet with `payloadLength` payload bytes after the ranges
    /// (`offset8 = (24 + 8 × range_cnt) / 8`).
    public init(
        transactionID: UInt64, xferPageSetID: UInt16, senderOwnsSet: Bool = false, ranges: [TransferPageRange],
        payloadLength: Int, flags: UInt16 = PacketDescriptor.flagCompletionRequested
    ) {
        let offset = Self.headerLength(rangeCount: ranges.count)
        let total = (offset + payloadLength + 7) / 8 * 8
        precondition(offset / 8 <= Int(UInt16.max) && total / 8 <= Int(UInt16.max), "transfer-page packet too large")
        self.init(
            descriptor: PacketDescriptor(
                type: .dataUsingXferPages, offset8: UInt16(offset / 8), len8: UInt16(total / 8), flags: flags,
                transactionID: transactionID),
            xferPageSetID: xferPageSetID, senderOwnsSet: senderOwnsSet, ranges: ranges)
    }

    /// Bytes from the packet start to the payload for `rangeCount` ranges.
    public static func headerLength(rangeCount: Int) -> Int { wireSize + TransferPageRange.wireSize * rangeCount }

    /// Decodes from a reader positioned at the start of a packet copied out of the ring; the reader must span
    /// at least the packet. Leaves the reader at the payload.
    ///
    /// Checks: the descriptor's rules, type XFER_PAGES, the packet fits in the reader, `offset8` leaves room
    /// for the fixed part, and the `range_cnt` ranges lie before the payload (checked before allocating).
    public init(from r: inout WireReader) throws(WireError) {
        let start = r.index
        let descriptor = try PacketDescriptor(from: &r)
        try descriptor.validate()
        guard descriptor.type == .dataUsingXferPages else {
            throw .invalidValue(field: "vmpacket_descriptor.type", value: UInt64(descriptor.type.rawValue))
        }
        let available = r.remaining + PacketDescriptor.wireSize
        guard descriptor.totalLength <= available else {
            throw .truncated(offset: start - r.start, needed: descriptor.totalLength, available: available)
        }
        guard descriptor.payloadOffset >= Self.wireSize else {
            throw .invalidValue(field: "vmpacket_descriptor.offset8", value: UInt64(descriptor.offset8))
        }
        let setID = try r.readUInt16()
        let owns = try r.readUInt8() != 0
        try r.skip(1)  // reserved: may hold garbage (OpenVMM)
        let count = try r.readUInt32()
        let most = (descriptor.payloadOffset - Self.wireSize) / TransferPageRange.wireSize
        guard Int(count) <= most else {
            throw .countTooLarge(field: "vmtransfer_page_packet_header.range_cnt", count: Int(count), limit: most)
        }
        var ranges = [TransferPageRange]()
        ranges.reserveCapacity(Int(count))
        for _ in 0..<Int(count) { ranges.append(try TransferPageRange(from: &r)) }
        try r.skip(descriptor.payloadOffset - Self.headerLength(rangeCount: Int(count)))
        self.init(descriptor: descriptor, xferPageSetID: setID, senderOwnsSet: owns, ranges: ranges)
    }

    /// Decodes the header of a packet copied out of the ring (a trailing trailer or padding is allowed).
    public static func decode(packet: [UInt8]) throws(WireError) -> TransferPagePacketHeader {
        var reader = WireReader(packet)
        return try TransferPagePacketHeader(from: &reader)
    }

    /// Writes the descriptor as given, the set id, `sender_owns_set`, `reserved` 0, `range_cnt` and the ranges.
    public func encode(into w: inout WireWriter) {
        descriptor.encode(into: &w)
        w.writeUInt16(xferPageSetID)
        w.writeUInt8(senderOwnsSet ? 1 : 0)
        w.writeUInt8(0)
        w.writeUInt32(UInt32(truncatingIfNeeded: ranges.count))
        for range in ranges { range.encode(into: &w) }
    }
}
