import VMBusWire

/// `struct nvsp_1_message_send_send_buffer` (packed): the guest hands the host its send buffer. Linux uses id 0
/// (`NETVSC_SEND_BUFFER_ID`); DPDK and FreeBSD use 0xFACE. The host only echoes it.
public struct NVSPSendSendBuffer: NVSPBufferHandoff, Equatable, Sendable {
    public static let cName = "nvsp_1_message_send_send_buffer"
    public static let wireSize = 6
    /// `NETVSC_SEND_BUFFER_ID`
    public static let linuxBufferID: UInt16 = 0

    public var gpadlHandle: UInt32
    public var id: UInt16

    public init(gpadlHandle: UInt32, id: UInt16 = NVSPSendSendBuffer.linuxBufferID) {
        self.gpadlHandle = gpadlHandle
        self.id = id
    }
}

/// `struct nvsp_1_message_send_send_buffer_complete`: the section size the host chose (Hyper-V and OpenVMM:
/// 6144, `NETVSC_SEND_SECTION_SIZE`); the guest divides its buffer by it.
public struct NVSPSendSendBufferComplete: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_1_message_send_send_buffer_complete"
    public static let wireSize = 8

    public var status: NVSPStatus
    public var sectionSize: UInt32

    public init(status: NVSPStatus, sectionSize: UInt32) {
        self.status = status
        self.sectionSize = sectionSize
    }

    public init(from r: inout WireReader) throws(WireError) {
        status = NVSPStatus(rawValue: try r.readUInt32())
        sectionSize = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(status.rawValue)
        w.writeUInt32(sectionSize)
    }
}

/// `struct nvsp_1_message_revoke_send_buffer`
public struct NVSPRevokeSendBuffer: NVSPBufferRevocation, Equatable, Sendable {
    public static let cName = "nvsp_1_message_revoke_send_buffer"
    public static let wireSize = 2

    public var id: UInt16

    public init(id: UInt16 = NVSPSendSendBuffer.linuxBufferID) { self.id = id }
}
