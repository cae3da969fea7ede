import VMBusWire

/// `struct hv_vss_check_dm_info` (4 bytes): the answer to VSS_OP_GET_DM_INFO; Linux sends 0.
public struct VSSCheckDMInfo: Equatable, Sendable, WireCodable {
    public static let cName = "hv_vss_check_dm_info"
    public static let wireSize = 4

    public var flags: UInt32

    public init(flags: UInt32) { self.flags = flags }

    public init(from r: inout WireReader) throws(WireError) { flags = try r.readUInt32() }

    public func encode(into w: inout WireWriter) { w.writeUInt32(flags) }
}
