import VMBusNetVSP

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
    /// `VIRTIO_NET_HDR_GSO_NONE`, `VIRTIO_NET_HDR_GSO_TCPV4`, `VIRTIO_NET_HDR_GSO_UDP`,
    /// `VIRTIO_NET_HDR_GSO_TCPV6`, and the `VIRTIO_NET_HDR_GSO_ECN` bit.
    public static let gsoNone: UInt8 = 0
    public static let gsoTCPv4: UInt8 = 1
    public static let gsoUDP: UInt8 = 3
    public static let gsoTCPv6: UInt8 = 4
    public static let gsoECN: UInt8 = 0x80

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

    /// The header that asks the kernel to do `offload` for the frame.
    public init(_ offload: FrameOffload) {
        flags = Self.needsChecksum
        checksumStart = UInt16(clamping: offload.checksumStart)
        checksumOffset = UInt16(clamping: offload.checksumOffset)
        switch offload.segmentation {
        case .none: return
        case .tcpIPv4: gsoType = Self.gsoTCPv4
        case .tcpIPv6: gsoType = Self.gsoTCPv6
        }
        if offload.explicitCongestion { gsoType |= Self.gsoECN }
        gsoSize = UInt16(clamping: offload.segmentSize)
        headerLength = UInt16(clamping: offload.headerLength)
    }

    /// What the kernel left for us to do in a frame of `frameLength` bytes: nil for a complete frame, or
    /// `.failure` for what cannot be done here (UDP fragmentation offload, an unknown GSO type, fields that lie
    /// outside the frame).
    public func offload(frameLength: Int) -> Result<FrameOffload, VirtioHeaderError>? {
        let gso = gsoType & ~Self.gsoECN
        guard flags & Self.needsChecksum != 0 || gso != Self.gsoNone else { return nil }
        guard flags & Self.needsChecksum != 0 else { return .failure(.segmentationWithoutChecksum) }
        let start = Int(checksumStart), offset = Int(checksumOffset)
        guard start + offset + 2 <= frameLength else { return .failure(.checksumOutsideFrame) }
        var o = FrameOffload(checksumStart: start, checksumOffset: offset)
        switch gso {
        case Self.gsoNone: return .success(o)
        case Self.gsoTCPv4: o.segmentation = .tcpIPv4
        case Self.gsoTCPv6: o.segmentation = .tcpIPv6
        default: return .failure(.unsupportedSegmentation(gsoType))
        }
        guard offset == 16, gsoSize > 0 else { return .failure(.badSegmentation) }
        o.segmentSize = Int(gsoSize)
        o.headerLength = Int(headerLength)
        o.explicitCongestion = gsoType & Self.gsoECN != 0
        return .success(o)
    }

    /// Writes the header into `out` (at least ``size`` bytes).
    /// (No array of fields: this runs once per frame.)
    public func encode(into out: UnsafeMutableRawBufferPointer) {
        func put(_ at: Int, _ v: UInt16) {
            out[at] = UInt8(truncatingIfNeeded: v)
            out[at + 1] = UInt8(v >> 8)
        }
        out[0] = flags
        out[1] = gsoType
        put(2, headerLength)
        put(4, gsoSize)
        put(6, checksumStart)
        put(8, checksumOffset)
        put(10, numBuffers)
    }

    public var bytes: [UInt8] {
        [UInt8](unsafeUninitializedCapacity: Self.size) { b, n in
            encode(into: UnsafeMutableRawBufferPointer(b))
            n = Self.size
        }
    }
}

/// Why a frame's virtio-net header asks for what we cannot do.
public enum VirtioHeaderError: Error, Equatable, Sendable {
    case segmentationWithoutChecksum
    case checksumOutsideFrame
    case unsupportedSegmentation(UInt8)
    case badSegmentation
}
