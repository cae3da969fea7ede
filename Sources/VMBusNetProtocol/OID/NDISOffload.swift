import VMBusWire

/// `struct ndis_offload`: the answer to OID_TCP_OFFLOAD_HARDWARE_CAPABILITIES. Three revisions share the
/// layout and differ in length (`header.size`): 112 bytes up to the LSOv2 part (NDIS 6.0), 144 up to IPsec v2
/// (6.1), 156 with RSC and GRE encapsulation (6.30). Linux asks for the revision its NVSP version implies.
public struct NDISOffload: WireCodable, Equatable, Sendable {
    public static let cName = "ndis_offload"
    /// `NDIS_OFFLOAD_SIZE`
    public static let wireSize = 156
    /// `NDIS_OFFLOAD_SIZE_6_0`
    public static let size6_0 = 112
    /// `NDIS_OFFLOAD_SIZE_6_1`
    public static let size6_1 = 144
    /// `NDIS_OFFLOAD_PARAMETERS_REVISION_1`..`_3`: the header revisions for the three sizes.
    public static let revision1: UInt8 = 1
    public static let revision2: UInt8 = 2
    public static let revision3: UInt8 = 3

    // Encapsulation values of the `*_encap` fields (`NDIS_OFFLOAD_ENCAP_*`).
    /// `NDIS_OFFLOAD_ENCAP_NONE`
    public static let encapsulationNone: UInt32 = 0x0
    /// `NDIS_OFFLOAD_ENCAP_NULL`
    public static let encapsulationNull: UInt32 = 0x1
    /// `NDIS_OFFLOAD_ENCAP_8023`
    public static let encapsulation8023: UInt32 = 0x2
    /// `NDIS_OFFLOAD_ENCAP_8023PQ`
    public static let encapsulation8023PQ: UInt32 = 0x4
    /// `NDIS_OFFLOAD_ENCAP_8023PQ_OOB`
    public static let encapsulation8023PQOOB: UInt32 = 0x8
    /// `NDIS_OFFLOAD_ENCAP_RFC1483`
    public static let encapsulationRFC1483: UInt32 = 0x10

    public var header: NDISObjectHeader
    public var checksum = NDISChecksumOffload()
    public var lsoV1 = NDISLSOv1Offload()
    public var ipsecV1 = NDISIPsecV1Offload()
    public var lsoV2 = NDISLSOv2Offload()
    public var flags: UInt32 = 0
    public var ipsecV2 = NDISIPsecV2Offload()
    public var rsc = NDISRSCOffload()
    public var encapsulationGRE = NDISEncapsulationOffload()

    /// The header and size for a revision: 3 → 156 bytes, 2 → 144, anything else → 112.
    public static func header(revision: UInt8) -> NDISObjectHeader {
        let size = revision >= revision3 ? wireSize : revision == revision2 ? size6_1 : size6_0
        return NDISObjectHeader(type: NDISObjectHeader.typeOffload, revision: revision, size: UInt16(size))
    }

    public init(header: NDISObjectHeader = NDISOffload.header(revision: NDISOffload.revision3)) {
        self.header = header
    }

    /// Decodes from an info buffer that runs to the end of `r`. The header must name the offload type and a
    /// size of at least the 6.0 layout and no more than the buffer; fields past `header.size` read as zero.
    public init(from r: inout WireReader) throws(WireError) {
        let s = try r.readSubReader(r.remaining)
        var h = s
        header = try NDISObjectHeader(from: &h)
        try header.check(type: NDISObjectHeader.typeOffload, minimumSize: Self.size6_0, available: s.remaining)
        var b = WireReader(paddedBytes(s, count: Int(header.size), to: Self.wireSize), start: 4, end: Self.wireSize)
        checksum = try NDISChecksumOffload(from: &b)
        lsoV1 = try NDISLSOv1Offload(from: &b)
        ipsecV1 = try NDISIPsecV1Offload(from: &b)
        lsoV2 = try NDISLSOv2Offload(from: &b)
        flags = try b.readUInt32()
        ipsecV2 = try NDISIPsecV2Offload(from: &b)
        rsc = try NDISRSCOffload(from: &b)
        try b.skip(2)  // hole
        encapsulationGRE = try NDISEncapsulationOffload(from: &b)
    }

    /// Writes `header.size` bytes (at most 156): the revision's prefix of the full layout.
    public func encode(into w: inout WireWriter) {
        var full = WireWriter(capacity: Self.wireSize)
        header.encode(into: &full)
        checksum.encode(into: &full)
        lsoV1.encode(into: &full)
        ipsecV1.encode(into: &full)
        lsoV2.encode(into: &full)
        full.writeUInt32(flags)
        ipsecV2.encode(into: &full)
        rsc.encode(into: &full)
        full.writeUInt16(0)
        encapsulationGRE.encode(into: &full)
        w.writeBytes(full.bytes.prefix(Int(header.size)))
    }
}

/// The first `count` bytes of `r`'s window, zero-filled to `size` (a shorter revision of a structure read as
/// the newest one).
func paddedBytes(_ r: WireReader, count: Int, to size: Int) -> [UInt8] {
    let n = min(count, r.end - r.start, size)
    var out = Array(r.bytes[r.start..<(r.start + n)])
    out += [UInt8](repeating: 0, count: size - n)
    return out
}
