import VMBusWire

/// `struct ndis_offload_params`: the value of SET OID_TCP_OFFLOAD_PARAMETERS, what the guest wants turned on.
/// Linux sends revision 3 (28 bytes) from NVSP 5 on and the 22-byte `VERSION_4_OFFLOAD_SIZE` prefix before.
/// Each u8 field is one of the `NDIS_OFFLOAD_PARAMETERS_*` values below (0 = no change).
public struct NDISOffloadParams: WireCodable, Equatable, Sendable {
    public static let cName = "ndis_offload_params"
    public static let wireSize = 28
    /// `VERSION_4_OFFLOAD_SIZE`
    public static let version4Size = 22

    /// `NDIS_OFFLOAD_PARAMETERS_NO_CHANGE`
    public static let noChange: UInt8 = 0
    /// `NDIS_OFFLOAD_PARAMETERS_TX_RX_DISABLED`
    public static let txRXDisabled: UInt8 = 1
    /// `NDIS_OFFLOAD_PARAMETERS_TX_ENABLED_RX_DISABLED`
    public static let txEnabledRXDisabled: UInt8 = 2
    /// `NDIS_OFFLOAD_PARAMETERS_RX_ENABLED_TX_DISABLED`
    public static let rxEnabledTXDisabled: UInt8 = 3
    /// `NDIS_OFFLOAD_PARAMETERS_TX_RX_ENABLED`
    public static let txRXEnabled: UInt8 = 4
    /// `NDIS_OFFLOAD_PARAMETERS_LSOV2_DISABLED`
    public static let lsoV2Disabled: UInt8 = 1
    /// `NDIS_OFFLOAD_PARAMETERS_LSOV2_ENABLED`
    public static let lsoV2Enabled: UInt8 = 2
    /// `NDIS_OFFLOAD_PARAMETERS_LSOV1_ENABLED`
    public static let lsoV1Enabled: UInt8 = 2
    /// `NDIS_OFFLOAD_PARAMETERS_RSC_DISABLED`
    public static let rscDisabled: UInt8 = 1
    /// `NDIS_OFFLOAD_PARAMETERS_RSC_ENABLED`
    public static let rscEnabled: UInt8 = 2

    public var header: NDISObjectHeader
    public var ipV4Checksum: UInt8 = 0
    public var tcpIPv4Checksum: UInt8 = 0
    public var udpIPv4Checksum: UInt8 = 0
    public var tcpIPv6Checksum: UInt8 = 0
    public var udpIPv6Checksum: UInt8 = 0
    public var lsoV1: UInt8 = 0
    public var ipSecV1: UInt8 = 0
    public var lsoV2IPv4: UInt8 = 0
    public var lsoV2IPv6: UInt8 = 0
    public var tcpConnectionIPv4: UInt8 = 0
    public var tcpConnectionIPv6: UInt8 = 0
    public var flags: UInt32 = 0
    public var ipSecV2: UInt8 = 0
    public var ipSecV2IPv4: UInt8 = 0
    public var rscIPv4: UInt8 = 0
    public var rscIPv6: UInt8 = 0
    public var encapsulatedPacketTaskOffload: UInt8 = 0
    public var encapsulationTypes: UInt8 = 0

    /// `NDIS_OFFLOAD_PARAMETERS_REVISION_3`
    public static let revision3: UInt8 = 3

    /// The header Linux sends: type DEFAULT, revision 3, 28 bytes, or 22 when `legacy` (NVSP ≤ 4, where the
    /// RSC and encapsulation fields do not exist yet).
    public static func header(legacy: Bool) -> NDISObjectHeader {
        NDISObjectHeader(type: NDISObjectHeader.typeDefault, revision: revision3,
                         size: UInt16(legacy ? version4Size : wireSize))
    }

    public init(header: NDISObjectHeader = NDISOffloadParams.header(legacy: false)) { self.header = header }

    /// Decodes from an info buffer that runs to the end of `r`: type DEFAULT, a size no larger than the
    /// buffer; fields past `header.size` read as zero (no change).
    public init(from r: inout WireReader) throws(WireError) {
        let s = try r.readSubReader(r.remaining)
        var h = s
        header = try NDISObjectHeader(from: &h)
        try header.check(type: NDISObjectHeader.typeDefault, minimumSize: NDISObjectHeader.wireSize,
                         available: s.remaining)
        var b = WireReader(paddedBytes(s, count: Int(header.size), to: Self.wireSize), start: 4, end: Self.wireSize)
        ipV4Checksum = try b.readUInt8()
        tcpIPv4Checksum = try b.readUInt8()
        udpIPv4Checksum = try b.readUInt8()
        tcpIPv6Checksum = try b.readUInt8()
        udpIPv6Checksum = try b.readUInt8()
        lsoV1 = try b.readUInt8()
        ipSecV1 = try b.readUInt8()
        lsoV2IPv4 = try b.readUInt8()
        lsoV2IPv6 = try b.readUInt8()
        tcpConnectionIPv4 = try b.readUInt8()
        tcpConnectionIPv6 = try b.readUInt8()
        try b.skip(1)  // hole
        flags = try b.readUInt32()
        ipSecV2 = try b.readUInt8()
        ipSecV2IPv4 = try b.readUInt8()
        rscIPv4 = try b.readUInt8()
        rscIPv6 = try b.readUInt8()
        encapsulatedPacketTaskOffload = try b.readUInt8()
        encapsulationTypes = try b.readUInt8()
    }

    /// Writes `header.size` bytes (at most 28): the revision's prefix, tail padding zero.
    public func encode(into w: inout WireWriter) {
        var full = WireWriter(capacity: Self.wireSize)
        header.encode(into: &full)
        for b in [ipV4Checksum, tcpIPv4Checksum, udpIPv4Checksum, tcpIPv6Checksum, udpIPv6Checksum, lsoV1, ipSecV1,
                  lsoV2IPv4, lsoV2IPv6, tcpConnectionIPv4, tcpConnectionIPv6, 0] { full.writeUInt8(b) }
        full.writeUInt32(flags)
        for b in [ipSecV2, ipSecV2IPv4, rscIPv4, rscIPv6, encapsulatedPacketTaskOffload, encapsulationTypes, 0, 0] {
            full.writeUInt8(b)
        }
        w.writeBytes(full.bytes.prefix(Int(header.size)))
    }
}
