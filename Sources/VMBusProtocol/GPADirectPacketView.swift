import VMBusWire

/// A GPA-direct packet's header read where it lies, for data paths: the checks of ``GPADirectPacketHeader``
/// without building arrays, so decoding a storage or network request allocates nothing.
///
/// It keeps a ``WireReader`` over the packet's bytes (sharing them, not copying); let the view go before the
/// packet buffer is refilled.
public struct GPADirectPacketView: Sendable {
    public let descriptor: PacketDescriptor
    /// `rangecount`, checked: every range was walked and validated at init.
    public let rangeCount: Int
    /// The range area (after `reserved` and `rangecount`, up to the payload).
    private let rangeArea: WireReader

    /// Decodes and validates in place, with the same rules as ``GPADirectPacketHeader/init(from:)``. Leaves
    /// `r` at the payload.
    public init(from r: inout WireReader) throws(WireError) {
        let start = r.index
        let descriptor = try PacketDescriptor(from: &r)
        try descriptor.validate()
        guard descriptor.type == .dataUsingGPADirect else {
            throw .invalidValue(field: "vmpacket_descriptor.type", value: UInt64(descriptor.type.rawValue))
        }
        let available = r.remaining + PacketDescriptor.wireSize
        guard descriptor.totalLength <= available else {
            throw .truncated(offset: start - r.start, needed: descriptor.totalLength, available: available)
        }
        guard descriptor.payloadOffset >= GPADirectPacketHeader.fixedLength else {
            throw .invalidValue(field: "vmpacket_descriptor.offset8", value: UInt64(descriptor.offset8))
        }
        try r.skip(4)  // reserved: may hold garbage (OpenVMM)
        let count = try r.readUInt32()
        guard count != 0 else { throw .invalidValue(field: "vmbus_packet_mpb_array.rangecount", value: 0) }
        let area = try r.readSubReader(descriptor.payloadOffset - GPADirectPacketHeader.fixedLength)
        let most = area.remaining / GPARange.minimumEncodedLength
        guard count <= most else {
            throw .countTooLarge(field: "vmbus_packet_mpb_array.rangecount", count: Int(count), limit: most)
        }
        var walk = area
        for _ in 0..<count { _ = try GPARangeView(from: &walk) }
        self.descriptor = descriptor
        self.rangeCount = Int(count)
        self.rangeArea = area
    }

    /// The first range (there is always one).
    public var firstRange: GPARangeView {
        get throws(WireError) {
            var r = rangeArea
            return try GPARangeView(from: &r)
        }
    }

    /// Calls `body` with each range in order.
    public func forEachRange<E: Error>(_ body: (GPARangeView) throws(E) -> Void) throws(E) {
        var r = rangeArea
        for _ in 0..<rangeCount {
            // Every range was validated at init, so decoding again cannot fail.
            guard let range = try? GPARangeView(from: &r) else { return }
            try body(range)
        }
    }
}

/// One `gpa_range` read in place.
public struct GPARangeView: Sendable {
    public let byteCount: UInt32
    public let byteOffset: UInt32
    public let pfnCount: Int
    private let pfnArea: WireReader

    /// Decodes and validates one range (non-zero length, offset in the first page, the PFNs present), leaving
    /// `r` after it.
    public init(from r: inout WireReader) throws(WireError) {
        let count = try r.readUInt32()
        let offset = try r.readUInt32()
        guard count != 0 else { throw .invalidValue(field: "gpa_range.byte_count", value: 0) }
        guard let pages = GPARange.pageCount(byteCount: count, byteOffset: offset) else {
            throw .invalidValue(field: "gpa_range.byte_offset", value: UInt64(offset))
        }
        let available = r.remaining / 8
        guard pages <= available else {
            throw .countTooLarge(field: "gpa_range.pfn_array", count: pages, limit: available)
        }
        byteCount = count
        byteOffset = offset
        pfnCount = pages
        pfnArea = try r.readSubReader(pages * 8)
    }

    /// PFN `index` (0 ..< ``pfnCount``).
    public func pfn(_ index: Int) throws(WireError) -> UInt64 {
        guard index >= 0, index < pfnCount else {
            throw .countTooLarge(field: "gpa_range.pfn_array", count: index + 1, limit: pfnCount)
        }
        return try pfnArea.getUInt64(at: pfnArea.start + index * 8)
    }

    /// The range as an allocated ``GPARange`` (control paths, tests).
    public var gpaRange: GPARange {
        GPARange(byteCount: byteCount, byteOffset: byteOffset, pfns: (0..<pfnCount).map { (try? pfn($0)) ?? 0 })
    }
}

extension GPARange {
    /// Encodes the range block of a one-range GPA-direct packet (`reserved`, `rangecount` = 1, the range)
    /// into `w` without building a ``GPARange``: the guest's data path reuses `w` for every request.
    // Inlinable so callers get it specialised: the unspecialised generic allocates for the sequence.
    @inlinable
    public static func encodeSingleRangeBlock(
        byteCount: UInt32, byteOffset: UInt32, pfns: some Sequence<UInt64>, into w: inout WireWriter
    ) {
        w.writeUInt32(0)
        w.writeUInt32(1)
        w.writeUInt32(byteCount)
        w.writeUInt32(byteOffset)
        for pfn in pfns { w.writeUInt64(pfn) }
    }
}
