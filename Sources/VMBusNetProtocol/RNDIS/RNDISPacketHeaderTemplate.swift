import VMBusWire

/// The headers of PACKET messages that differ only in their frame's length, encoded once: per frame only
/// `msg_len` and `data_len` are written again. The data path sends most frames without PPIs (no offload
/// asked for), and a full ``RNDISPacket/encodeHeaders(into:info:frameLength:)`` is a dozen field writes per frame.
///
/// The bytes are those `encodeHeaders` writes for the same info and length (tested against it).
public struct RNDISPacketHeaderTemplate: Sendable {
    /// Offsets of `msg_len` (RNDIS header) and `data_len` (`struct rndis_packet`, 4 bytes into its body).
    static let messageLengthOffset = 4
    static let dataLengthOffset = RNDISPacket.messageHeaderSize + 4

    public let info: RNDISPacketInfo
    private let fixedLength: Int
    /// The encoded headers; ``bytes(frameLength:)`` patches them in place.
    private var writer: WireWriter

    public init(info: RNDISPacketInfo = RNDISPacketInfo()) {
        self.info = info
        fixedLength = RNDISPacket.messageLength(info: info, frameLength: 0)
        writer = WireWriter(capacity: fixedLength)
        RNDISPacket.encodeHeaders(into: &writer, info: info, frameLength: 0)
    }

    /// The headers' length (everything before the frame).
    public var count: Int { writer.count }

    /// The headers for a frame of `frameLength` bytes (frames are far below 4 GiB; longer wrap, as in
    /// `encodeHeaders`).
    public mutating func bytes(frameLength: Int) -> [UInt8] {
        writer.setUInt32(UInt32(truncatingIfNeeded: fixedLength + frameLength), at: Self.messageLengthOffset)
        writer.setUInt32(UInt32(truncatingIfNeeded: frameLength), at: Self.dataLengthOffset)
        return writer.bytes
    }
}
