import VMBusWire

/// `struct hv_kvp_ip_msg` (7428 bytes): the VMBus body of KVP_OP_GET_IP_INFO and KVP_OP_SET_IP_INFO.
///
/// Unlike ``KVPMessage`` it has no `pad`: the settings start at byte 2 here and at byte 4 in the
/// `hv_kvp_msg` Linux gives its daemon, so the two cannot be copied into each other as they are.
public struct KVPIPMessage: Equatable, Sendable, WireCodable {
    public static let cName = "hv_kvp_ip_msg"
    public static let wireSize = 7428

    public var operation: KVPOperation
    public var pool: KVPPool
    public var kvpIPVal: KVPIPAddressValue

    public init(operation: KVPOperation, pool: KVPPool, kvpIPVal: KVPIPAddressValue = KVPIPAddressValue()) {
        self.operation = operation
        self.pool = pool
        self.kvpIPVal = kvpIPVal
    }

    public init(from r: inout WireReader) throws(WireError) {
        try r.require(Self.wireSize)
        operation = KVPOperation(rawValue: try r.readUInt8())
        pool = KVPPool(rawValue: try r.readUInt8())
        kvpIPVal = try KVPIPAddressValue(from: &r)
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt8(operation.rawValue)
        w.writeUInt8(pool.rawValue)
        kvpIPVal.encode(into: &w)
    }
}
