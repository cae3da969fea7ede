import VMBusWire

/// `struct ndis_tcp_lso_info`: the large-send PPI. Linux sends only the LSOv2 transmit form (type 1, with the
/// TCP pseudo-header checksum already in the frame).
public struct NDISTCPLSOInfo: WireCodable, Hashable, Sendable {
    public static let cName = "ndis_tcp_lso_info"
    public static let wireSize = 4
    /// `NDIS_TCP_LARGE_SEND_OFFLOAD_V2_TYPE`
    public static let v2Type: UInt32 = 1
    /// `NDIS_TCP_LARGE_SEND_OFFLOAD_IPV4`, `NDIS_TCP_LARGE_SEND_OFFLOAD_IPV6`
    public static let ipVersion4: UInt32 = 0
    public static let ipVersion6: UInt32 = 1

    /// `value`
    public var value: UInt32

    public init(value: UInt32 = 0) { self.value = value }

    public init(from r: inout WireReader) throws(WireError) { value = try r.readUInt32() }
    public func encode(into w: inout WireWriter) { w.writeUInt32(value) }

    /// An LSOv2 transmit request.
    public static func v2Transmit(mss: UInt32, tcpHeaderOffset: UInt32, ipv6: Bool) -> Self {
        var i = Self()
        i.type = v2Type
        i.mss = mss
        i.tcpHeaderOffset = tcpHeaderOffset
        i.ipVersion = ipv6 ? ipVersion6 : ipVersion4
        return i
    }

    /// `lso_v2_transmit.mss` (20 bits; also `lso_v1_transmit.mss`)
    public var mss: UInt32 { get { value.bits(0, 20) } set { value.setBits(0, 20, newValue) } }
    /// `lso_v2_transmit.tcp_header_offset` (10 bits)
    public var tcpHeaderOffset: UInt32 { get { value.bits(20, 10) } set { value.setBits(20, 10, newValue) } }
    /// `type` (bit 30 of every member): 0 LSOv1, 1 LSOv2.
    public var type: UInt32 { get { value.bits(30, 1) } set { value.setBits(30, 1, newValue) } }
    /// `lso_v2_transmit.ip_version` (bit 31)
    public var ipVersion: UInt32 { get { value.bits(31, 1) } set { value.setBits(31, 1, newValue) } }
    /// `lso_v1_transmit_complete.tcp_payload` (30 bits)
    public var tcpPayload: UInt32 { get { value.bits(0, 30) } set { value.setBits(0, 30, newValue) } }
}
