import VMBusWire

/// A received RNDIS_MSG_PACKET, checked and decoded in place: offsets into the caller's bytes, the packet
/// body and the known PPIs, with nothing allocated (the bytes are retained, not copied). This is the data
/// path's decoder, on both sides: the host's for SEND_RNDIS_PKT from a send section, the guest's for each
/// transfer-page range.
///
/// Every offset and length from the peer is checked before use: the message against the bytes available,
/// the frame, the out-of-band area and the PPI area against the message, and each PPI (`size`,
/// `ppi_offset`) against the PPI area. Anything that leaves its container throws.
public struct RNDISPacketView: Sendable {
    /// The bytes the message was decoded from (shared, not copied).
    public let bytes: [UInt8]
    /// Absolute index of the message's first byte (its `ndis_msg_type`) and its `msg_len`.
    public let messageIndex: Int
    public let messageLength: Int
    /// The body as sent.
    public let packet: RNDISPacket
    /// Absolute index and length of the Ethernet frame.
    public let dataIndex: Int
    public let dataLength: Int
    /// Absolute index and length of the PPI area.
    public let perPacketInfoIndex: Int
    public let perPacketInfoLength: Int
    /// The PPIs this module knows.
    public let info: RNDISPacketInfo
    /// PPIs of other kinds (or repeated kinds), skipped.
    public let otherPerPacketInfoCount: Int

    /// Reads one PACKET message at `r`'s index and moves `r` past its `msg_len` (so batched messages in one
    /// send section decode one after another).
    ///
    /// It reads through `r` at absolute offsets rather than through sub-readers: every frame on both data paths
    /// comes through here, and each reader made is a retain and a release of the bytes.
    public init(from r: inout WireReader) throws(WireError) {
        let type = try r.peekUInt32()
        guard type == RNDISMessageType.packet.rawValue else {
            throw .invalidValue(field: "ndis_msg_type", value: UInt64(type))
        }
        let at = r.index
        let length = Int(try r.getUInt32(at: at + 4))
        let minimum = RNDISPacket.messageHeaderSize + RNDISPacket.wireSize
        guard length >= minimum else { throw .invalidValue(field: "msg_len", value: UInt64(length)) }
        try r.skip(length)
        messageIndex = at
        messageLength = length
        bytes = r.bytes

        // In bounds: the message holds at least the body's fixed fields.
        let body = at + RNDISPacket.messageHeaderSize
        let bodyLength = length - RNDISPacket.messageHeaderSize
        let packet = RNDISPacket(dataOffset: try r.getUInt32(at: body), dataLength: try r.getUInt32(at: body + 4),
                                 oobDataOffset: try r.getUInt32(at: body + 8), oobDataLength: try r.getUInt32(at: body + 12),
                                 oobDataElementCount: try r.getUInt32(at: body + 16),
                                 perPacketInfoOffset: try r.getUInt32(at: body + 20),
                                 perPacketInfoLength: try r.getUInt32(at: body + 24), vcHandle: try r.getUInt32(at: body + 28))
        self.packet = packet

        // The frame, the OOB area and the PPI area lie inside the body and do not overlap its fixed fields.
        func area(_ offset: UInt32, _ count: UInt32, _ field: StaticString) throws(WireError) -> Int {
            guard count == 0 || Int(offset) >= RNDISPacket.wireSize else {
                throw .invalidValue(field: "\(field)", value: UInt64(offset))
            }
            let o = count == 0 ? 0 : Int(offset), n = Int(count)
            guard o <= bodyLength, n <= bodyLength - o else {
                throw .truncated(offset: o, needed: n, available: max(0, bodyLength - o))
            }
            return body + o
        }
        dataIndex = try area(packet.dataOffset, packet.dataLength, "data_offset")
        dataLength = Int(packet.dataLength)
        _ = try area(packet.oobDataOffset, packet.oobDataLength, "oob_data_offset")
        perPacketInfoIndex = try area(packet.perPacketInfoOffset, packet.perPacketInfoLength, "per_pkt_info_offset")
        perPacketInfoLength = Int(packet.perPacketInfoLength)

        var info = RNDISPacketInfo()
        var others = 0
        if perPacketInfoLength > 0 {
            let ppis = WireReader(bytes, start: perPacketInfoIndex, end: perPacketInfoIndex + perPacketInfoLength)
            var walker = PerPacketInfoWalker(ppis)
            while let e = try walker.next() {
                if !(try info.absorb(e, in: ppis)) { others += 1 }
            }
        }
        self.info = info
        otherPerPacketInfoCount = others
    }

    /// Decodes the message at the start of `bytes`.
    public init(wireBytes bytes: [UInt8]) throws(WireError) {
        var r = WireReader(bytes)
        self = try Self(from: &r)
    }

    /// The frame, as a slice of ``bytes`` (no copy).
    public var data: ArraySlice<UInt8> { bytes[dataIndex..<(dataIndex + dataLength)] }

    /// Calls `body` with every PPI in order, the known kinds included. The walk was validated by `init`.
    public func forEachPerPacketInfo(_ body: (PerPacketInfoEntry) -> Void) {
        var walker = PerPacketInfoWalker(WireReader(bytes, start: perPacketInfoIndex,
                                                    end: perPacketInfoIndex + perPacketInfoLength))
        while let e = try? walker.next() { body(e) }
    }
}

/// Steps through a PPI area: each head must fit the bytes left, its `size` must cover at least the head and
/// at most the bytes left, and its `ppi_offset` must point inside the PPI, past the head.
struct PerPacketInfoWalker {
    let area: WireReader
    var index: Int

    init(_ area: WireReader) {
        self.area = area
        self.index = area.start
    }

    mutating func next() throws(WireError) -> PerPacketInfoEntry? {
        let left = area.end - index
        guard left > 0 else { return nil }
        guard left >= PerPacketInfoHeader.wireSize else {
            throw .truncated(offset: index - area.start, needed: PerPacketInfoHeader.wireSize, available: left)
        }
        let size = Int(try area.getUInt32(at: index))
        let word = try area.getUInt32(at: index + 4)
        let offset = Int(try area.getUInt32(at: index + 8))
        guard size >= PerPacketInfoHeader.wireSize else {
            throw .invalidValue(field: "rndis_per_packet_info.size", value: UInt64(size))
        }
        guard size <= left else {
            throw .countTooLarge(field: "rndis_per_packet_info.size", count: size, limit: left)
        }
        guard offset >= PerPacketInfoHeader.wireSize, offset <= size else {
            throw .invalidValue(field: "rndis_per_packet_info.ppi_offset", value: UInt64(offset))
        }
        let entry = PerPacketInfoEntry(type: PerPacketInfoType(rawValue: word & ~PerPacketInfoHeader.internalBit),
                                       isInternal: word & PerPacketInfoHeader.internalBit != 0,
                                       dataIndex: index + offset, dataLength: size - offset)
        index += size
        return entry
    }
}
