import VMBusWire

/// `struct hv_kvp_hdr` (4 bytes): the head of ``KVPMessage``. In `hv_kvp_msg` it shares its bytes with the
/// daemon's `int error`.
public struct KVPHeader: Equatable, Sendable, WireCodable {
    public static let cName = "hv_kvp_hdr"
    public static let wireSize = 4

    public var operation: KVPOperation
    public var pool: KVPPool
    /// Written as zero unless set, ignored on read.
    public var pad: UInt16

    public init(operation: KVPOperation, pool: KVPPool, pad: UInt16 = 0) {
        self.operation = operation
        self.pool = pool
        self.pad = pad
    }

    public init(from r: inout WireReader) throws(WireError) {
        operation = KVPOperation(rawValue: try r.readUInt8())
        pool = KVPPool(rawValue: try r.readUInt8())
        pad = try r.readUInt16()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt8(operation.rawValue)
        w.writeUInt8(pool.rawValue)
        w.writeUInt16(pad)
    }
}
