import VMBusWire

/// `struct hv_vss_hdr` (8 bytes): the head of ``VSSMessage``, which shares its first 4 bytes with the
/// daemon's `int error`.
public struct VSSHeader: Equatable, Sendable, WireCodable {
    public static let cName = "hv_vss_hdr"
    public static let wireSize = 8

    public var operation: VSSOperation
    /// `reserved[7]`, little-endian in the low 56 bits: written as zero unless set.
    public var reserved: UInt64

    public init(operation: VSSOperation, reserved: UInt64 = 0) {
        self.operation = operation
        self.reserved = reserved & 0x00FF_FFFF_FFFF_FFFF
    }

    init(raw: UInt64) {
        self.init(operation: VSSOperation(rawValue: UInt8(truncatingIfNeeded: raw)), reserved: raw >> 8)
    }

    var raw: UInt64 { UInt64(operation.rawValue) | reserved << 8 }

    public init(from r: inout WireReader) throws(WireError) {
        self.init(raw: try r.readUInt64())
    }

    public func encode(into w: inout WireWriter) { w.writeUInt64(raw) }
}
