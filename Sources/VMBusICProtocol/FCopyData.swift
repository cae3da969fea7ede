import VMBusWire

/// `struct hv_do_fcopy` (packed, 6196 bytes): WRITE_TO_FILE, one fragment of at most `DATA_FRAGMENT` bytes
/// at `offset`.
public struct FCopyData: Equatable, Sendable, WireCodable {
    public static let cName = "hv_do_fcopy"
    public static let wireSize = 6196
    /// `DATA_FRAGMENT`
    public static let dataFragment = 6144
    /// Everything before `data`.
    public static let fixedSize = wireSize - dataFragment

    public var hdr: FCopyHeader
    /// Written as zero unless set, ignored on read.
    public var pad: UInt32
    /// Where the fragment goes in the file. Decoding guarantees `offset + size` fits a signed 64-bit file
    /// offset (`off_t`); ``checkWithin(fileSize:)`` bounds it by the size START_FILE_COPY announced.
    public var offset: UInt64
    /// The fragment, `size` bytes (never more than 6144).
    public var data: [UInt8]

    public init(hdr: FCopyHeader = FCopyHeader(operation: .writeToFile), pad: UInt32 = 0, offset: UInt64,
                data: [UInt8]) throws(WireError) {
        guard data.count <= Self.dataFragment else {
            throw .countTooLarge(field: "size", count: data.count, limit: Self.dataFragment)
        }
        try Self.checkOffset(offset, size: data.count)
        self.hdr = hdr
        self.pad = pad
        self.offset = offset
        self.data = data
    }

    /// `size`
    public var size: UInt32 { UInt32(min(data.count, Self.dataFragment)) }

    /// One past the last byte the fragment writes (`UInt64.max` if that overflows).
    public var end: UInt64 {
        let (sum, overflow) = offset.addingReportingOverflow(UInt64(size))
        return overflow ? .max : sum
    }

    /// `offset + size` must not pass `Int64.max`: hv_fcopy_uio_daemon hands both to `pwrite`.
    static func checkOffset(_ offset: UInt64, size: Int) throws(WireError) {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(size))
        guard !overflow, end <= UInt64(Int64.max) else { throw .invalidValue(field: "offset", value: offset) }
    }

    /// Throws unless the fragment lies inside a file of `fileSize` bytes (`hv_start_fcopy.file_size`).
    /// Linux's daemon does not check this; a host that writes past the size it announced is refused here.
    public func checkWithin(fileSize: UInt64) throws(WireError) {
        guard end <= fileSize else { throw .invalidValue(field: "offset + size past file_size", value: end) }
    }

    /// Decodes a fragment. The fixed part must be whole; of `data` only `size` bytes need be present.
    /// A `size` over 6144 is ``WireError/countTooLarge(field:count:limit:)``; an `offset` whose fragment
    /// would end past `Int64.max` is ``WireError/invalidValue(field:value:)``.
    public init(from r: inout WireReader) throws(WireError) {
        try r.require(Self.fixedSize)
        hdr = try FCopyHeader(from: &r)
        pad = try r.readUInt32()
        offset = try r.readUInt64()
        let size = Int(try r.readUInt32())
        guard size <= Self.dataFragment else {
            throw .countTooLarge(field: "size", count: size, limit: Self.dataFragment)
        }
        try Self.checkOffset(offset, size: size)
        data = try r.readBytes(size)
        try r.skip(min(r.remaining, Self.dataFragment - size))
    }

    /// Writes all 6196 bytes, `data` zero-padded: Linux (and its daemon) copy the whole struct.
    public func encode(into w: inout WireWriter) {
        hdr.encode(into: &w)
        w.writeUInt32(pad)
        w.writeUInt64(offset)
        w.writeUInt32(size)
        w.writeField(data, Self.dataFragment)
    }
}
