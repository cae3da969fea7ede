import VMBusWire

/// `struct ndis_tcp_ip_checksum_info`: one u32 whose bits mean one thing on transmit (what the guest leaves
/// the host to compute) and another on receive (what the host verified).
public struct NDISTCPIPChecksumInfo: WireCodable, Hashable, Sendable {
    public static let cName = "ndis_tcp_ip_checksum_info"
    public static let wireSize = 4

    /// `value`
    public var value: UInt32

    public init(value: UInt32 = 0) { self.value = value }

    public init(from r: inout WireReader) throws(WireError) { value = try r.readUInt32() }
    public func encode(into w: inout WireWriter) { w.writeUInt32(value) }

    // Transmit (`transmit.*`).
    /// `transmit.is_ipv4`
    public var isIPv4: Bool { get { value.bit(0) } set { value.setBit(0, newValue) } }
    /// `transmit.is_ipv6`
    public var isIPv6: Bool { get { value.bit(1) } set { value.setBit(1, newValue) } }
    /// `transmit.tcp_checksum`
    public var tcpChecksum: Bool { get { value.bit(2) } set { value.setBit(2, newValue) } }
    /// `transmit.udp_checksum`
    public var udpChecksum: Bool { get { value.bit(3) } set { value.setBit(3, newValue) } }
    /// `transmit.ip_header_checksum`
    public var ipHeaderChecksum: Bool { get { value.bit(4) } set { value.setBit(4, newValue) } }
    /// `transmit.tcp_header_offset` (10 bits): where the L4 header starts in the frame.
    public var tcpHeaderOffset: UInt32 { get { value.bits(16, 10) } set { value.setBits(16, 10, newValue) } }

    // Receive (`receive.*`).
    /// `receive.tcp_checksum_failed`
    public var tcpChecksumFailed: Bool { get { value.bit(0) } set { value.setBit(0, newValue) } }
    /// `receive.udp_checksum_failed`
    public var udpChecksumFailed: Bool { get { value.bit(1) } set { value.setBit(1, newValue) } }
    /// `receive.ip_checksum_failed`
    public var ipChecksumFailed: Bool { get { value.bit(2) } set { value.setBit(2, newValue) } }
    /// `receive.tcp_checksum_succeeded`
    public var tcpChecksumSucceeded: Bool { get { value.bit(3) } set { value.setBit(3, newValue) } }
    /// `receive.udp_checksum_succeeded`
    public var udpChecksumSucceeded: Bool { get { value.bit(4) } set { value.setBit(4, newValue) } }
    /// `receive.ip_checksum_succeeded`
    public var ipChecksumSucceeded: Bool { get { value.bit(5) } set { value.setBit(5, newValue) } }
    /// `receive.loopback`
    public var loopback: Bool { get { value.bit(6) } set { value.setBit(6, newValue) } }
    /// `receive.tcp_checksum_value_invalid`
    public var tcpChecksumValueInvalid: Bool { get { value.bit(7) } set { value.setBit(7, newValue) } }
    /// `receive.ip_checksum_value_invalid`
    public var ipChecksumValueInvalid: Bool { get { value.bit(8) } set { value.setBit(8, newValue) } }
}
