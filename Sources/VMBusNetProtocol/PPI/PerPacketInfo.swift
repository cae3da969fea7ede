import VMBusWire

/// `enum ndis_per_pkt_info_type`: the 31-bit type of a per-packet info (PPI). With the `internal` bit set the
/// number is from `enum rndis_per_pkt_info_interal_type` instead, so the two spaces overlap (type 1 is
/// IPSEC_PKTINFO, or RNDIS_PKTINFO_ID when internal).
public struct PerPacketInfoType: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `TCPIP_CHKSUM_PKTINFO`: ``NDISTCPIPChecksumInfo``.
    public static let tcpIPChecksum = Self(rawValue: 0)
    /// `IPSEC_PKTINFO`
    public static let ipsec = Self(rawValue: 1)
    /// `TCP_LARGESEND_PKTINFO`: ``NDISTCPLSOInfo``.
    public static let tcpLargeSend = Self(rawValue: 2)
    /// `CLASSIFICATION_HANDLE_PKTINFO`
    public static let classificationHandle = Self(rawValue: 3)
    /// `NDIS_RESERVED`
    public static let ndisReserved = Self(rawValue: 4)
    /// `SG_LIST_PKTINFO`
    public static let scatterGatherList = Self(rawValue: 5)
    /// `IEEE_8021Q_INFO`: ``NDISPacket8021QInfo``.
    public static let ieee8021Q = Self(rawValue: 6)
    /// `ORIGINAL_PKTINFO`
    public static let original = Self(rawValue: 7)
    /// `PACKET_CANCEL_ID`
    public static let packetCancelID = Self(rawValue: 8)
    /// `NBL_HASH_VALUE`: a u32 RSS hash. Shares 8 with PACKET_CANCEL_ID; Hyper-V uses it for the hash.
    public static let nblHashValue = Self(rawValue: 8)
    /// `ORIGINAL_NET_BUFLIST`. Hyper-V, FreeBSD and DPDK carry the hash info (``NDISHashInfo``) under this
    /// number (their `NDIS_PKTINFO_TYPE_HASHINF`); Linux has no name for that use.
    public static let originalNetBufferList = Self(rawValue: 9)
    /// The hash info's number (see ``originalNetBufferList``).
    public static let nblHashInfo = Self(rawValue: 9)
    /// `CACHED_NET_BUFLIST`
    public static let cachedNetBufferList = Self(rawValue: 10)
    /// `SHORT_PKT_PADINFO`
    public static let shortPacketPadInfo = Self(rawValue: 11)
    /// `MAX_PER_PKT_INFO`
    public static let max = Self(rawValue: 12)

    // Internal types (`internal` bit set).
    /// `RNDIS_PKTINFO_ID`: ``RNDISPacketInfoID``, the RSC fragment id.
    public static let rndisPacketInfoID = Self(rawValue: 1)
    /// `RNDIS_PKTINFO_MAX`
    public static let rndisPacketInfoMax = Self(rawValue: 2)
}

/// `struct rndis_per_packet_info`: the 12-byte head of each PPI. `size` covers head and data, `ppi_offset` is
/// where the data starts, from the head.
public struct PerPacketInfoHeader: WireCodable, Equatable, Sendable {
    public static let cName = "rndis_per_packet_info"
    public static let wireSize = 12
    /// The `internal` bit in the type word.
    static let internalBit: UInt32 = 0x8000_0000

    public var size: UInt32
    public var type: PerPacketInfoType
    public var isInternal: Bool
    public var ppiOffset: UInt32

    public init(size: UInt32, type: PerPacketInfoType, isInternal: Bool = false,
                ppiOffset: UInt32 = UInt32(PerPacketInfoHeader.wireSize)) {
        self.size = size
        self.type = type
        self.isInternal = isInternal
        self.ppiOffset = ppiOffset
    }

    /// A head for `dataLength` bytes of data right after it.
    public init(type: PerPacketInfoType, isInternal: Bool = false, dataLength: Int) {
        self.init(size: UInt32(Self.wireSize + dataLength), type: type, isInternal: isInternal)
    }

    public init(from r: inout WireReader) throws(WireError) {
        size = try r.readUInt32()
        let word = try r.readUInt32()
        type = PerPacketInfoType(rawValue: word & ~Self.internalBit)
        isInternal = word & Self.internalBit != 0
        ppiOffset = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(size)
        w.writeUInt32((type.rawValue & ~Self.internalBit) | (isInternal ? Self.internalBit : 0))
        w.writeUInt32(ppiOffset)
    }
}

/// One PPI found by the walker: its head's fields and where its data lies in the caller's bytes. Already
/// checked to lie inside the PPI, the PPI area and the message.
public struct PerPacketInfoEntry: Equatable, Sendable {
    public var type: PerPacketInfoType
    public var isInternal: Bool
    /// Absolute index of the data in the bytes the packet was decoded from.
    public var dataIndex: Int
    public var dataLength: Int
}
