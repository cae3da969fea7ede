import VMBusWire

/// The per-packet infos this module knows, for one PACKET message: what a walk of its PPIs found (the first of
/// each kind wins, as in Linux's `rndis_get_ppi`), or what an encoder should write. Plain optionals, so
/// decoding and encoding them allocates nothing.
public struct RNDISPacketInfo: Equatable, Sendable {
    /// `TCPIP_CHKSUM_PKTINFO`
    public var checksum: NDISTCPIPChecksumInfo?
    /// `TCP_LARGESEND_PKTINFO`
    public var largeSend: NDISTCPLSOInfo?
    /// `IEEE_8021Q_INFO`
    public var vlan: NDISPacket8021QInfo?
    /// `NBL_HASH_VALUE`
    public var hashValue: UInt32?
    /// The hash info (type 9, see ``PerPacketInfoType/nblHashInfo``).
    public var hashInfo: NDISHashInfo?
    /// `RNDIS_PKTINFO_ID` (internal)
    public var packetID: RNDISPacketInfoID?

    public init(checksum: NDISTCPIPChecksumInfo? = nil, largeSend: NDISTCPLSOInfo? = nil,
                vlan: NDISPacket8021QInfo? = nil, hashValue: UInt32? = nil, hashInfo: NDISHashInfo? = nil,
                packetID: RNDISPacketInfoID? = nil) {
        self.checksum = checksum
        self.largeSend = largeSend
        self.vlan = vlan
        self.hashValue = hashValue
        self.hashInfo = hashInfo
        self.packetID = packetID
    }

    /// Every payload is one u32, so every PPI is 16 bytes (`NDIS_CSUM_PPI_SIZE` and friends).
    public static let entrySize = PerPacketInfoHeader.wireSize + 4

    /// How many PPIs are present.
    public var count: Int {
        var n = 0
        if checksum != nil { n += 1 }
        if largeSend != nil { n += 1 }
        if vlan != nil { n += 1 }
        if hashValue != nil { n += 1 }
        if hashInfo != nil { n += 1 }
        if packetID != nil { n += 1 }
        return n
    }

    /// The bytes ``encode(into:)`` writes.
    public var encodedLength: Int { count * Self.entrySize }

    /// Writes the present PPIs back to back: hash value and VLAN first, as Linux's transmit path puts them,
    /// then the offload requests, then the receive-only ones.
    public func encode(into w: inout WireWriter) {
        if let v = hashValue { Self.write(&w, .nblHashValue, false, v) }
        if let v = vlan { Self.write(&w, .ieee8021Q, false, v.value) }
        if let v = largeSend { Self.write(&w, .tcpLargeSend, false, v.value) }
        if let v = checksum { Self.write(&w, .tcpIPChecksum, false, v.value) }
        if let v = hashInfo { Self.write(&w, .nblHashInfo, false, v.rawValue) }
        if let v = packetID { Self.write(&w, .rndisPacketInfoID, true, v.word) }
    }

    private static func write(_ w: inout WireWriter, _ type: PerPacketInfoType, _ isInternal: Bool, _ word: UInt32) {
        PerPacketInfoHeader(type: type, isInternal: isInternal, dataLength: 4).encode(into: &w)
        w.writeUInt32(word)
    }

    /// Takes in one walked PPI; returns false for kinds it does not know (or a duplicate, which is ignored).
    /// A known kind whose data is shorter than its u32 is an error.
    mutating func absorb(_ e: PerPacketInfoEntry, in r: WireReader) throws(WireError) -> Bool {
        func word() throws(WireError) -> UInt32 {
            guard e.dataLength >= 4 else {
                throw .invalidValue(field: "rndis_per_packet_info.size", value: UInt64(e.dataLength))
            }
            return try r.getUInt32(at: e.dataIndex)
        }
        if e.isInternal {
            guard e.type == .rndisPacketInfoID, packetID == nil else { return false }
            packetID = RNDISPacketInfoID(word: try word())
            return true
        }
        switch e.type {
        case .tcpIPChecksum where checksum == nil: checksum = NDISTCPIPChecksumInfo(value: try word())
        case .tcpLargeSend where largeSend == nil: largeSend = NDISTCPLSOInfo(value: try word())
        case .ieee8021Q where vlan == nil: vlan = NDISPacket8021QInfo(value: try word())
        case .nblHashValue where hashValue == nil: hashValue = try word()
        case .nblHashInfo where hashInfo == nil: hashInfo = NDISHashInfo(rawValue: try word())
        default: return false
        }
        return true
    }
}
