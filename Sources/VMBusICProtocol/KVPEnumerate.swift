import VMBusWire

/// `struct hv_kvp_msg_enumerate` (packed, 2576 bytes): the host asks for the pair at `index` of a pool; the
/// answer fills `data`. Past the last pair the daemon answers HV_S_CONT.
public struct KVPEnumerate: Equatable, Sendable, WireCodable {
    public static let cName = "hv_kvp_msg_enumerate"
    public static let wireSize = 2576

    public var index: UInt32
    public var data: KVPExchangeValue

    public init(index: UInt32, data: KVPExchangeValue = KVPExchangeValue()) {
        self.index = index
        self.data = data
    }

    public init(from r: inout WireReader) throws(WireError) {
        try r.require(Self.wireSize)
        index = try r.readUInt32()
        data = try KVPExchangeValue(from: &r)
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(index)
        data.encode(into: &w)
    }
}
