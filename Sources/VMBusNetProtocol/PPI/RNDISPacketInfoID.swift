import VMBusWire

/// `struct rndis_pktinfo_id`: the internal PPI that ties the fragments of one receive-coalesced (RSC) packet
/// together.
public struct RNDISPacketInfoID: WireCodable, Hashable, Sendable {
    public static let cName = "rndis_pktinfo_id"
    public static let wireSize = 4
    /// `RNDIS_PKTINFO_ID_V1`
    public static let version1: UInt8 = 1
    /// `RNDIS_PKTINFO_SUBALLOC`
    public static let flagSubAllocation: UInt8 = 0x1
    /// `RNDIS_PKTINFO_1ST_FRAG`
    public static let flagFirstFragment: UInt8 = 0x2
    /// `RNDIS_PKTINFO_LAST_FRAG`
    public static let flagLastFragment: UInt8 = 0x4

    public var version: UInt8
    public var flags: UInt8
    public var packetID: UInt16

    public init(version: UInt8 = RNDISPacketInfoID.version1, flags: UInt8, packetID: UInt16) {
        self.version = version
        self.flags = flags
        self.packetID = packetID
    }

    public init(from r: inout WireReader) throws(WireError) {
        version = try r.readUInt8()
        flags = try r.readUInt8()
        packetID = try r.readUInt16()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt8(version)
        w.writeUInt8(flags)
        w.writeUInt16(packetID)
    }

    /// As the little-endian u32 it occupies.
    var word: UInt32 { UInt32(version) | UInt32(flags) << 8 | UInt32(packetID) << 16 }

    init(word: UInt32) {
        version = UInt8(truncatingIfNeeded: word)
        flags = UInt8(truncatingIfNeeded: word >> 8)
        packetID = UInt16(truncatingIfNeeded: word >> 16)
    }
}
