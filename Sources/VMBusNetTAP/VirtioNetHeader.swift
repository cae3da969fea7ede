/// `struct virtio_net_hdr_mrg_rxbuf` (Linux `include/uapi/linux/virtio_net.h`): what a TAP opened with
/// IFF_VNET_HDR puts before every frame it hands us and expects before every frame we write. The fields are in
/// the host's byte order (a legacy header, no TUNSETVNETLE); Linux's hosts of this project are little-endian.
public struct VirtioNetHeader: Equatable, Sendable {
    public static let size = 12
    /// `VIRTIO_NET_HDR_F_NEEDS_CSUM`: the checksum at `checksumStart + checksumOffset` holds only the
    /// pseudo-header sum.
    public static let needsChecksum: UInt8 = 1
    /// `VIRTIO_NET_HDR_F_DATA_VALID`
    public static let dataValid: UInt8 = 2
    /// `VIRTIO_NET_HDR_GSO_NONE`
    public static let gsoNone: UInt8 = 0

    public var flags: UInt8 = 0
    public var gsoType: UInt8 = Self.gsoNone
    public var headerLength: UInt16 = 0
    public var gsoSize: UInt16 = 0
    public var checksumStart: UInt16 = 0
    public var checksumOffset: UInt16 = 0
    public var numBuffers: UInt16 = 0

    public init() {}

    /// Decodes the first ``size`` bytes of `b` (nil if shorter).
    public init?(_ b: [UInt8]) {
        guard b.count >= Self.size else { return nil }
        func u16(_ at: Int) -> UInt16 { UInt16(b[at]) | UInt16(b[at + 1]) << 8 }
        flags = b[0]
        gsoType = b[1]
        headerLength = u16(2)
        gsoSize = u16(4)
        checksumStart = u16(6)
        checksumOffset = u16(8)
        numBuffers = u16(10)
    }

    public var bytes: [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        b[0] = flags
        b[1] = gsoType
        for (at, v) in [(2, headerLength), (4, gsoSize), (6, checksumStart), (8, checksumOffset), (10, numBuffers)] {
            b[at] = UInt8(truncatingIfNeeded: v)
            b[at + 1] = UInt8(v >> 8)
        }
        return b
    }
}
