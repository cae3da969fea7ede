import VMBusWire

/// `struct nvsp_1_message_send_rndis_packet`: one RNDIS message travels with it, in a send-buffer section
/// (index + size) or, with index `NETVSC_INVALID_INDEX`, in the packet's GPA ranges or transfer pages.
public struct NVSPSendRNDISPacket: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_1_message_send_rndis_packet"
    public static let wireSize = 12
    /// `NETVSC_INVALID_INDEX`: no send-buffer section is used.
    public static let noSection: UInt32 = 0xFFFF_FFFF

    /// 0 data, 1 control (RNDIS requests, responses and indications).
    public struct ChannelType: RawRepresentable, Hashable, Sendable {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let data = Self(rawValue: 0)
        public static let control = Self(rawValue: 1)
    }

    public var channelType: ChannelType
    public var sendBufferSectionIndex: UInt32
    public var sendBufferSectionSize: UInt32

    public init(channelType: ChannelType, sendBufferSectionIndex: UInt32 = NVSPSendRNDISPacket.noSection,
                sendBufferSectionSize: UInt32 = 0) {
        self.channelType = channelType
        self.sendBufferSectionIndex = sendBufferSectionIndex
        self.sendBufferSectionSize = sendBufferSectionSize
    }

    public var usesSendBuffer: Bool { sendBufferSectionIndex != Self.noSection }

    public init(from r: inout WireReader) throws(WireError) {
        channelType = ChannelType(rawValue: try r.readUInt32())
        sendBufferSectionIndex = try r.readUInt32()
        sendBufferSectionSize = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(channelType.rawValue)
        w.writeUInt32(sendBufferSectionIndex)
        w.writeUInt32(sendBufferSectionSize)
    }
}

/// `struct nvsp_1_message_send_rndis_packet_complete`. A guest completing a transfer-page packet sends it as
/// an 8-byte message (type + status), not padded to the full NVSP size.
public struct NVSPSendRNDISPacketComplete: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_1_message_send_rndis_packet_complete"
    public static let wireSize = 4

    public var status: NVSPStatus

    public init(status: NVSPStatus) { self.status = status }

    public init(from r: inout WireReader) throws(WireError) { status = NVSPStatus(rawValue: try r.readUInt32()) }
    public func encode(into w: inout WireWriter) { w.writeUInt32(status.rawValue) }
}
