import VMBusWire

/// `struct hv_vss_check_feature` (4 bytes): the answer to VSS_OP_HOT_BACKUP.
public struct VSSCheckFeature: Equatable, Sendable, WireCodable {
    public static let cName = "hv_vss_check_feature"
    public static let wireSize = 4
    /// `VSS_HBU_NO_AUTO_RECOVERY`: what Linux always answers (no auto-recovery of the snapshot).
    public static let hbuNoAutoRecovery: UInt32 = 0x5

    public var flags: UInt32

    public init(flags: UInt32) { self.flags = flags }

    public init(from r: inout WireReader) throws(WireError) { flags = try r.readUInt32() }

    public func encode(into w: inout WireWriter) { w.writeUInt32(flags) }
}
