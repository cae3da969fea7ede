import VMBusWire

/// The head of a `VM_PKT_DATA_USING_GPA_DIRECT` ring packet: `struct vmbus_packet_mpb_array` (descriptor,
/// `reserved`, `rangecount`) followed by `rangecount` GPA ranges; the device payload starts at `offset8 * 8`.
///
/// `wireSize` is the C `sizeof` (32), which counts the first range's 8-byte header; real packets are
/// `24 + Σ range lengths` bytes up to the payload.
public struct GPADirectPacketHeader: WireCodable, Equatable, Sendable {
    public static let wireSize = 32
    public static let cName = "vmbus_packet_mpb_array"
    /// Descriptor, `reserved` and `rangecount`: where the first range starts.
    public static let fixedLength = 24

    /// The packet descriptor (`type`, `dataoffset8`, `length8`, `flags`, `transactionid`).
    public var descriptor: PacketDescriptor
    /// The ranges; `rangecount` on the wire is `ranges.count`.
    public var ranges: [GPARange]

    public init(descriptor: PacketDescriptor, ranges: [GPARange]) {
        self.descriptor = descriptor; self.ranges = ranges
    }

    /// Builds the header of a packet with `payloadLength` payload bytes: `offset8` points past the ranges and
    /// `len8 = ALIGN(offset + payload, 8) / 8`, as Linux's `vmbus_sendpacket_mpb_desc` computes them. Linux
    /// always requests a completion for GPA-direct packets. The caller keeps the packet within a ring.
    public init(
        transactionID: UInt64, ranges: [GPARange], payloadLength: Int,
        flags: UInt16 = PacketDescriptor.flagCompletionRequested
    ) {
        let offset = Self.headerLength(ranges: ranges)
        let total = (offset + payloadLength + 7) / 8 * 8
        precondition(offset / 8 <= Int(UInt16.max) && total / 8 <= Int(UInt16.max), "GPA-direct packet too large")
        self.init(
            descriptor: PacketDescriptor(
                type: .dataUsingGPADirect, offset8: UInt16(offset / 8), len8: UInt16(total / 8), flags: flags,
                transactionID: transactionID),
            ranges: ranges)
    }

    /// Bytes from the packet start to the payload for these ranges.
    public static func headerLength(ranges: [GPARange]) -> Int { fixedLength + GPARange.encodedLength(of: ranges) }

    /// Decodes from a reader positioned at the start of a packet copied out of the ring; the reader must span
    /// at least the packet (`len8 * 8` bytes). Leaves the reader at the payload.
    ///
    /// Checks: the descriptor's own rules (``PacketDescriptor/validate()``), type GPA-direct, the packet fits
    /// in the reader, `offset8` leaves room for the fixed part, `rangecount` ≥ 1, and every range is valid and
    /// lies before the payload (`rangecount` is checked against that space before allocating).
    public init(from r: inout WireReader) throws(WireError) {
        let view = try GPADirectPacketView(from: &r)
        var ranges: [GPARange] = []
        ranges.reserveCapacity(view.rangeCount)
        view.forEachRange { ranges.append($0.gpaRange) }
        self.init(descriptor: view.descriptor, ranges: ranges)
    }

    /// Decodes the header of a packet copied out of the ring (`packet` starts with the descriptor; a trailing
    /// trailer or padding is allowed).
    public static func decode(packet: [UInt8]) throws(WireError) -> GPADirectPacketHeader {
        var reader = WireReader(packet)
        return try GPADirectPacketHeader(from: &reader)
    }

    /// Writes the descriptor as given, `reserved` 0, `rangecount` and the ranges. Pad to `offset8 * 8` and
    /// append the payload separately.
    public func encode(into w: inout WireWriter) {
        descriptor.encode(into: &w)
        w.writeUInt32(0)
        w.writeUInt32(UInt32(truncatingIfNeeded: ranges.count))
        GPARange.encodeList(ranges, into: &w)
    }
}
