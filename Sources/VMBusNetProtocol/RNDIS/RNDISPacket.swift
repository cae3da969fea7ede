import VMBusWire

/// `struct rndis_packet`: the body of RNDIS_MSG_PACKET, one Ethernet frame. Every offset counts from the start
/// of this body (8 bytes into the message). Linux's transmit path puts the PPIs right after it and the frame
/// after the PPIs; the out-of-band area is unused.
///
/// To decode a received PACKET message use ``RNDISPacketView``, which checks every offset and walks the
/// PPIs without allocating.
public struct RNDISPacket: WireCodable, Equatable, Sendable {
    public static let cName = "rndis_packet"
    public static let wireSize = 36
    /// `RNDIS_HEADER_SIZE`: `ndis_msg_type` and `msg_len`.
    public static let messageHeaderSize = 8

    public var dataOffset: UInt32
    public var dataLength: UInt32
    public var oobDataOffset: UInt32
    public var oobDataLength: UInt32
    public var oobDataElementCount: UInt32
    public var perPacketInfoOffset: UInt32
    public var perPacketInfoLength: UInt32
    public var vcHandle: UInt32

    public init(dataOffset: UInt32, dataLength: UInt32, oobDataOffset: UInt32 = 0, oobDataLength: UInt32 = 0,
                oobDataElementCount: UInt32 = 0, perPacketInfoOffset: UInt32, perPacketInfoLength: UInt32,
                vcHandle: UInt32 = 0) {
        self.dataOffset = dataOffset
        self.dataLength = dataLength
        self.oobDataOffset = oobDataOffset
        self.oobDataLength = oobDataLength
        self.oobDataElementCount = oobDataElementCount
        self.perPacketInfoOffset = perPacketInfoOffset
        self.perPacketInfoLength = perPacketInfoLength
        self.vcHandle = vcHandle
    }

    /// The layout Linux transmits: PPIs at 36, the frame after them.
    public init(perPacketInfoLength: Int, frameLength: Int) {
        self.init(dataOffset: UInt32(truncatingIfNeeded: Self.wireSize + perPacketInfoLength),
                  dataLength: UInt32(truncatingIfNeeded: frameLength), perPacketInfoOffset: UInt32(Self.wireSize),
                  perPacketInfoLength: UInt32(truncatingIfNeeded: perPacketInfoLength))
    }

    public init(from r: inout WireReader) throws(WireError) {
        dataOffset = try r.readUInt32()
        dataLength = try r.readUInt32()
        oobDataOffset = try r.readUInt32()
        oobDataLength = try r.readUInt32()
        oobDataElementCount = try r.readUInt32()
        perPacketInfoOffset = try r.readUInt32()
        perPacketInfoLength = try r.readUInt32()
        vcHandle = try r.readUInt32()
        try r.skip(4)  // reserved
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(dataOffset)
        w.writeUInt32(dataLength)
        w.writeUInt32(oobDataOffset)
        w.writeUInt32(oobDataLength)
        w.writeUInt32(oobDataElementCount)
        w.writeUInt32(perPacketInfoOffset)
        w.writeUInt32(perPacketInfoLength)
        w.writeUInt32(vcHandle)
        w.writeUInt32(0)
    }

    /// The size of a whole PACKET message in Linux's layout.
    public static func messageLength(info: RNDISPacketInfo, frameLength: Int) -> Int {
        messageHeaderSize + wireSize + info.encodedLength + frameLength
    }

    /// Writes everything of a PACKET message but the frame: the RNDIS header, this body and the PPIs. The
    /// caller appends (or copies into place) the `frameLength` bytes of the frame. Allocates nothing once the
    /// writer has capacity. Frames are far below 4 GiB; longer lengths are our bug and wrap.
    public static func encodeHeaders(into w: inout WireWriter, info: RNDISPacketInfo, frameLength: Int) {
        w.writeUInt32(RNDISMessageType.packet.rawValue)
        w.writeUInt32(UInt32(truncatingIfNeeded: messageLength(info: info, frameLength: frameLength)))
        RNDISPacket(perPacketInfoLength: info.encodedLength, frameLength: frameLength).encode(into: &w)
        info.encode(into: &w)
    }

    /// A whole PACKET message with its frame.
    public static func encodeMessage<C: Collection>(into w: inout WireWriter, info: RNDISPacketInfo, frame: C)
    where C.Element == UInt8 {
        encodeHeaders(into: &w, info: info, frameLength: frame.count)
        w.writeBytes(frame)
    }
}
