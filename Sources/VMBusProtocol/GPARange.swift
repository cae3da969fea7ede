import VMBusWire

/// `struct gpa_range` with its PFN array: one guest-physical range as it appears in GPADL range streams and
/// in GPA-direct packets.
///
/// Wire form: `byte_count u32, byte_offset u32`, then `ceil((byte_offset + byte_count) / 4096)` u64 page
/// numbers. Ranges are concatenated with nothing in between. A valid range has `byte_count != 0`, a
/// `byte_offset` inside the first page (≤ 0xFFF) and exactly that many PFNs.
public struct GPARange: Equatable, Hashable, Sendable, WireEncodable, WireDecodable {
    public static let cName = "gpa_range"
    /// `sizeof(struct gpa_range)`: the header without PFNs.
    public static let headerSize = 8
    /// Hyper-V page size (`HV_HYP_PAGE_SIZE`), independent of the guest's.
    public static let pageSize = 4096
    /// The largest valid `byte_offset`.
    public static let maximumByteOffset: UInt32 = 0xFFF
    /// The shortest valid encoding: a header and one PFN.
    public static let minimumEncodedLength = 16

    /// `byte_count`
    public var byteCount: UInt32
    /// `byte_offset`: offset of the first byte inside the first page.
    public var byteOffset: UInt32
    /// `pfn_array`: guest page numbers (GPA >> 12).
    public var pfns: [UInt64]

    public init(byteCount: UInt32, byteOffset: UInt32, pfns: [UInt64]) {
        self.byteCount = byteCount; self.byteOffset = byteOffset; self.pfns = pfns
    }

    /// A range covering whole pages, as Linux describes every GPADL buffer (offset 0, `byte_count` = pages × 4096).
    /// The caller guarantees the size fits in 32 bits (at most 1048575 pages).
    public init(wholePages pfns: [UInt64]) {
        precondition(pfns.count <= Int(UInt32.max) / Self.pageSize, "GPA range too large for a 32-bit byte count")
        self.init(byteCount: UInt32(pfns.count * Self.pageSize), byteOffset: 0, pfns: pfns)
    }

    /// Bytes this range occupies on the wire.
    public var encodedLength: Int { Self.headerSize + 8 * pfns.count }

    /// `ceil((byteOffset + byteCount) / 4096)`, or `nil` when the header itself is invalid (count 0 or offset
    /// beyond the first page). Computed in 64 bits, so it cannot overflow.
    public static func pageCount(byteCount: UInt32, byteOffset: UInt32) -> Int? {
        guard byteCount != 0, byteOffset <= maximumByteOffset else { return nil }
        let end = UInt64(byteOffset) + UInt64(byteCount)
        return Int((end + UInt64(pageSize) - 1) / UInt64(pageSize))
    }

    /// Checks the rules above for a range built in memory.
    public func validate() throws(WireError) {
        guard byteCount != 0 else { throw .invalidValue(field: "gpa_range.byte_count", value: 0) }
        guard byteOffset <= Self.maximumByteOffset else {
            throw .invalidValue(field: "gpa_range.byte_offset", value: UInt64(byteOffset))
        }
        let pages = Self.pageCount(byteCount: byteCount, byteOffset: byteOffset) ?? 0
        guard pfns.count == pages else {
            throw .invalidValue(field: "gpa_range.pfn_array", value: UInt64(pfns.count))
        }
    }

    /// Decodes and validates one range. The PFN count comes from the header and is checked against the bytes
    /// left in `r` before anything is allocated.
    public init(from r: inout WireReader) throws(WireError) {
        self = try GPARangeView(from: &r).gpaRange
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(byteCount)
        w.writeUInt32(byteOffset)
        for pfn in pfns { w.writeUInt64(pfn) }
    }

    /// Decodes `count` concatenated ranges. `count` is checked against the bytes left (each range needs at
    /// least 16) before the array is allocated; `countField` names the peer's count field in errors.
    public static func decodeList(
        count: Int, from r: inout WireReader, countField: String = "rangecount"
    ) throws(WireError) -> [GPARange] {
        let most = r.remaining / minimumEncodedLength
        guard count >= 0, count <= most else { throw .countTooLarge(field: countField, count: count, limit: most) }
        var ranges = [GPARange]()
        ranges.reserveCapacity(count)
        for _ in 0..<count { ranges.append(try GPARange(from: &r)) }
        return ranges
    }

    /// Appends `ranges` back to back.
    public static func encodeList(_ ranges: [GPARange], into w: inout WireWriter) {
        for range in ranges { range.encode(into: &w) }
    }

    /// Bytes `ranges` occupy on the wire.
    public static func encodedLength(of ranges: [GPARange]) -> Int { ranges.reduce(0) { $0 + $1.encodedLength } }
}
