import VMBusWire

// The members of `struct ndis_offload`, each its own C struct in `hyperv_net.h`. Their u32 fields hold
// capability bits or sizes; 0 means "not offered".

/// `struct ndis_csum_offload`: checksum offload per direction and IP version.
public struct NDISChecksumOffload: WireUInt32Fields, Equatable, Sendable {
    public static let cName = "ndis_csum_offload"
    public static let wireSize = 32

    // Capability bits, the same values for transmit and receive (`NDIS_RXCSUM_CAP_*` equal their TX twins).
    /// `NDIS_TXCSUM_CAP_IP4OPT`
    public static let capIP4Options: UInt32 = 0x001
    /// `NDIS_TXCSUM_CAP_TCP4OPT`
    public static let capTCP4Options: UInt32 = 0x004
    /// `NDIS_TXCSUM_CAP_TCP4`
    public static let capTCP4: UInt32 = 0x010
    /// `NDIS_TXCSUM_CAP_UDP4`
    public static let capUDP4: UInt32 = 0x040
    /// `NDIS_TXCSUM_CAP_IP4`
    public static let capIP4: UInt32 = 0x100
    /// `NDIS_TXCSUM_ALL_TCP4`
    public static let allTCP4: UInt32 = 0x14
    /// IPv6: `NDIS_TXCSUM_CAP_IP6EXT`
    public static let capIP6Extensions: UInt32 = 0x001
    /// `NDIS_TXCSUM_CAP_TCP6OPT`
    public static let capTCP6Options: UInt32 = 0x004
    /// `NDIS_TXCSUM_CAP_TCP6`
    public static let capTCP6: UInt32 = 0x010
    /// `NDIS_TXCSUM_CAP_UDP6`
    public static let capUDP6: UInt32 = 0x040
    /// `NDIS_TXCSUM_ALL_TCP6`
    public static let allTCP6: UInt32 = 0x15

    public var ip4TXEncapsulation: UInt32 = 0
    public var ip4TXChecksum: UInt32 = 0
    public var ip4RXEncapsulation: UInt32 = 0
    public var ip4RXChecksum: UInt32 = 0
    public var ip6TXEncapsulation: UInt32 = 0
    public var ip6TXChecksum: UInt32 = 0
    public var ip6RXEncapsulation: UInt32 = 0
    public var ip6RXChecksum: UInt32 = 0

    public init() {}

    public static var fields: [WritableKeyPath<Self, UInt32>] {
        [\.ip4TXEncapsulation, \.ip4TXChecksum, \.ip4RXEncapsulation, \.ip4RXChecksum, \.ip6TXEncapsulation,
         \.ip6TXChecksum, \.ip6RXEncapsulation, \.ip6RXChecksum]
    }
}

/// `struct ndis_lsov1_offload`
public struct NDISLSOv1Offload: WireUInt32Fields, Equatable, Sendable {
    public static let cName = "ndis_lsov1_offload"
    public static let wireSize = 16

    public var encapsulation: UInt32 = 0
    public var maxSize: UInt32 = 0
    public var minSegments: UInt32 = 0
    public var options: UInt32 = 0

    public init() {}

    public static var fields: [WritableKeyPath<Self, UInt32>] {
        [\.encapsulation, \.maxSize, \.minSegments, \.options]
    }
}

/// `struct ndis_ipsecv1_offload`
public struct NDISIPsecV1Offload: WireUInt32Fields, Equatable, Sendable {
    public static let cName = "ndis_ipsecv1_offload"
    public static let wireSize = 28

    public var encapsulation: UInt32 = 0
    public var ahESP: UInt32 = 0
    public var transportTunnel: UInt32 = 0
    public var ip4Options: UInt32 = 0
    public var flags: UInt32 = 0
    public var ip4AH: UInt32 = 0
    public var ip4ESP: UInt32 = 0

    public init() {}

    public static var fields: [WritableKeyPath<Self, UInt32>] {
        [\.encapsulation, \.ahESP, \.transportTunnel, \.ip4Options, \.flags, \.ip4AH, \.ip4ESP]
    }
}

/// `struct ndis_lsov2_offload`: Linux enables TSO when `ip4_encap`/`ip6_encap` name 802.3 and takes
/// `*_maxsz` as the largest segment-offload size.
public struct NDISLSOv2Offload: WireUInt32Fields, Equatable, Sendable {
    public static let cName = "ndis_lsov2_offload"
    public static let wireSize = 28
    /// `NDIS_LSOV2_CAP_IP6EXT`
    public static let capIP6Extensions: UInt32 = 0x1
    /// `NDIS_LSOV2_CAP_TCP6OPT`
    public static let capTCP6Options: UInt32 = 0x4
    /// `NDIS_LSOV2_CAP_IP6`: both, what Linux needs for IPv6 TSO.
    public static let capIP6: UInt32 = 0x5

    public var ip4Encapsulation: UInt32 = 0
    public var ip4MaxSize: UInt32 = 0
    public var ip4MinSegments: UInt32 = 0
    public var ip6Encapsulation: UInt32 = 0
    public var ip6MaxSize: UInt32 = 0
    public var ip6MinSegments: UInt32 = 0
    public var ip6Options: UInt32 = 0

    public init() {}

    public static var fields: [WritableKeyPath<Self, UInt32>] {
        [\.ip4Encapsulation, \.ip4MaxSize, \.ip4MinSegments, \.ip6Encapsulation, \.ip6MaxSize, \.ip6MinSegments,
         \.ip6Options]
    }
}

/// `struct ndis_ipsecv2_offload`: a u32, eleven u8 flags, a one-byte hole, four u32.
public struct NDISIPsecV2Offload: WireCodable, Equatable, Sendable {
    public static let cName = "ndis_ipsecv2_offload"
    public static let wireSize = 32

    public var encapsulation: UInt32 = 0
    /// `ip6`, `ip4opt`, `ip6ext`, `ah`, `esp`, `ah_esp`, `xport`, `tun`, `xport_tun`, `lso`, `extseq`, in order.
    public var ip6: UInt8 = 0
    public var ip4Options: UInt8 = 0
    public var ip6Extensions: UInt8 = 0
    public var ah: UInt8 = 0
    public var esp: UInt8 = 0
    public var ahESP: UInt8 = 0
    public var transport: UInt8 = 0
    public var tunnel: UInt8 = 0
    public var transportTunnel: UInt8 = 0
    public var lso: UInt8 = 0
    public var extendedSequence: UInt8 = 0
    public var udpESP: UInt32 = 0
    public var authentication: UInt32 = 0
    public var crypto: UInt32 = 0
    public var saCapabilities: UInt32 = 0

    public init() {}

    public init(from r: inout WireReader) throws(WireError) {
        encapsulation = try r.readUInt32()
        ip6 = try r.readUInt8()
        ip4Options = try r.readUInt8()
        ip6Extensions = try r.readUInt8()
        ah = try r.readUInt8()
        esp = try r.readUInt8()
        ahESP = try r.readUInt8()
        transport = try r.readUInt8()
        tunnel = try r.readUInt8()
        transportTunnel = try r.readUInt8()
        lso = try r.readUInt8()
        extendedSequence = try r.readUInt8()
        try r.skip(1)  // hole
        udpESP = try r.readUInt32()
        authentication = try r.readUInt32()
        crypto = try r.readUInt32()
        saCapabilities = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(encapsulation)
        for b in [ip6, ip4Options, ip6Extensions, ah, esp, ahESP, transport, tunnel, transportTunnel, lso,
                  extendedSequence, 0] { w.writeUInt8(b) }
        w.writeUInt32(udpESP)
        w.writeUInt32(authentication)
        w.writeUInt32(crypto)
        w.writeUInt32(saCapabilities)
    }
}

/// `struct ndis_rsc_offload`: receive segment coalescing per IP version (Linux turns on LRO when offered).
public struct NDISRSCOffload: WireCodable, Equatable, Sendable {
    public static let cName = "ndis_rsc_offload"
    public static let wireSize = 2

    public var ip4: UInt8 = 0
    public var ip6: UInt8 = 0

    public init() {}

    public init(from r: inout WireReader) throws(WireError) {
        ip4 = try r.readUInt8()
        ip6 = try r.readUInt8()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt8(ip4)
        w.writeUInt8(ip6)
    }
}

/// `struct ndis_encap_offload`
public struct NDISEncapsulationOffload: WireUInt32Fields, Equatable, Sendable {
    public static let cName = "ndis_encap_offload"
    public static let wireSize = 8

    public var flags: UInt32 = 0
    public var maxHeader: UInt32 = 0

    public init() {}

    public static var fields: [WritableKeyPath<Self, UInt32>] { [\.flags, \.maxHeader] }
}
