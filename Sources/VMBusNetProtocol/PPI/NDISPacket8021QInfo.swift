import VMBusWire

/// `struct ndis_pkt_8021q_info`: the VLAN tag, carried beside the frame instead of in it.
public struct NDISPacket8021QInfo: WireCodable, Hashable, Sendable {
    public static let cName = "ndis_pkt_8021q_info"
    public static let wireSize = 4

    /// `value`
    public var value: UInt32

    public init(value: UInt32 = 0) { self.value = value }

    public init(from r: inout WireReader) throws(WireError) { value = try r.readUInt32() }
    public func encode(into w: inout WireWriter) { w.writeUInt32(value) }

    public init(priority: UInt32, cfi: Bool = false, vlanID: UInt32) {
        value = 0
        self.priority = priority
        self.cfi = cfi
        self.vlanID = vlanID
    }

    /// `pri` (3 bits)
    public var priority: UInt32 { get { value.bits(0, 3) } set { value.setBits(0, 3, newValue) } }
    /// `cfi`
    public var cfi: Bool { get { value.bit(3) } set { value.setBit(3, newValue) } }
    /// `vlanid` (12 bits)
    public var vlanID: UInt32 { get { value.bits(4, 12) } set { value.setBits(4, 12, newValue) } }
}
