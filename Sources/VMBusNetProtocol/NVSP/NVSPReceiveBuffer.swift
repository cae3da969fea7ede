import VMBusWire

/// `struct nvsp_1_message_send_receive_buffer` (packed): the guest hands the host its receive buffer, a GPADL,
/// under an id the host echoes in transfer-page packets (Linux `NETVSC_RECEIVE_BUFFER_ID`, 0xCAFE).
public struct NVSPSendReceiveBuffer: NVSPBufferHandoff, Equatable, Sendable {
    public static let cName = "nvsp_1_message_send_receive_buffer"
    public static let wireSize = 6
    /// `NETVSC_RECEIVE_BUFFER_ID`
    public static let linuxBufferID: UInt16 = 0xCAFE

    public var gpadlHandle: UInt32
    public var id: UInt16

    public init(gpadlHandle: UInt32, id: UInt16 = NVSPSendReceiveBuffer.linuxBufferID) {
        self.gpadlHandle = gpadlHandle
        self.id = id
    }
}

/// `struct nvsp_1_receive_buffer_section`: how the host carves the receive buffer. Linux accepts exactly one
/// section, at offset 0, whose slots (`sub_alloc_size` each) fit the buffer.
public struct NVSPReceiveBufferSection: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_1_receive_buffer_section"
    public static let wireSize = 16

    public var offset: UInt32
    public var subAllocationSize: UInt32
    public var subAllocationCount: UInt32
    public var endOffset: UInt32

    public init(offset: UInt32, subAllocationSize: UInt32, subAllocationCount: UInt32, endOffset: UInt32) {
        self.offset = offset
        self.subAllocationSize = subAllocationSize
        self.subAllocationCount = subAllocationCount
        self.endOffset = endOffset
    }

    public init(from r: inout WireReader) throws(WireError) {
        offset = try r.readUInt32()
        subAllocationSize = try r.readUInt32()
        subAllocationCount = try r.readUInt32()
        endOffset = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(offset)
        w.writeUInt32(subAllocationSize)
        w.writeUInt32(subAllocationCount)
        w.writeUInt32(endOffset)
    }
}

/// `struct nvsp_1_message_send_receive_buffer_complete`: status and the sections. C declares `sections[1]`
/// (so `sizeof` is 24), but the array really has `num_sections` entries and may run past the 40-byte message.
public struct NVSPSendReceiveBufferComplete: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_1_message_send_receive_buffer_complete"
    /// `sizeof`, with its one declared section.
    public static let wireSize = 24
    /// status and num_sections.
    public static let headerSize = 8

    public var status: NVSPStatus
    public var sections: [NVSPReceiveBufferSection]

    public init(status: NVSPStatus, sections: [NVSPReceiveBufferSection]) {
        self.status = status
        self.sections = sections
    }

    /// Reads `num_sections` sections; the count is checked against the bytes left before anything is
    /// allocated.
    public init(from r: inout WireReader) throws(WireError) {
        status = NVSPStatus(rawValue: try r.readUInt32())
        let count = Int(try r.readUInt32())
        let fit = r.remaining / NVSPReceiveBufferSection.wireSize
        guard count <= fit else { throw .countTooLarge(field: "num_sections", count: count, limit: fit) }
        var sections: [NVSPReceiveBufferSection] = []
        sections.reserveCapacity(count)
        for _ in 0..<count { sections.append(try NVSPReceiveBufferSection(from: &r)) }
        self.sections = sections
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(status.rawValue)
        w.writeUInt32(UInt32(truncatingIfNeeded: sections.count))
        for s in sections { s.encode(into: &w) }
    }
}

/// `struct nvsp_1_message_revoke_receive_buffer`: the guest takes its receive buffer back (no completion).
public struct NVSPRevokeReceiveBuffer: NVSPBufferRevocation, Equatable, Sendable {
    public static let cName = "nvsp_1_message_revoke_receive_buffer"
    public static let wireSize = 2

    public var id: UInt16

    public init(id: UInt16 = NVSPSendReceiveBuffer.linuxBufferID) { self.id = id }
}
