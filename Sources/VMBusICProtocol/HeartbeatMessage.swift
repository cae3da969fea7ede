import VMBusWire

/// `struct heartbeat_msg_data` (40 bytes): the body of ICMSGTYPE_HEARTBEAT. Linux answers with `seq_num + 1`
/// and the rest of the host's bytes unchanged.
public struct HeartbeatMessage: Equatable, Sendable, WireCodable {
    public static let cName = "heartbeat_msg_data"
    public static let wireSize = 40

    public var seqNum: UInt64
    /// `reserved[8]`. OpenVMM's 16-byte `HeartbeatMessage` reads `reserved[0]` as the guest's application
    /// state (see ``applicationState``); Linux leaves it as the host sent it.
    public var reserved: [UInt32]

    /// `sizeof(seq_num)`: all Linux 6.12 requires of a heartbeat body; it does not insist on the reserved words.
    public static let minimumSize = 8

    public init(seqNum: UInt64, reserved: [UInt32] = Array(repeating: 0, count: 8)) {
        self.seqNum = seqNum
        self.reserved = Array((reserved + Array(repeating: 0, count: 8)).prefix(8))
    }

    /// OpenVMM's `application_state` (0 unknown, 1 healthy, 2 critical, 3 stopped): `reserved[0]`.
    public var applicationState: UInt32 {
        get { reserved.first ?? 0 }
        set {
            if reserved.isEmpty { reserved = [newValue] } else { reserved[0] = newValue }
        }
    }

    /// What Linux sends back: the sequence number plus one (wrapping, as C's `u64` does).
    public var linuxResponse: HeartbeatMessage {
        var r = self
        r.seqNum = seqNum.addingReportingOverflow(1).partialValue
        return r
    }

    /// Decodes `seq_num` (required) and as many whole reserved words as follow, up to 8; missing words
    /// read as zero. Encoding always writes all 40 bytes.
    public init(from r: inout WireReader) throws(WireError) {
        seqNum = try r.readUInt64()
        reserved = []
        for _ in 0..<8 {
            if r.remaining >= 4 { reserved.append(try r.readUInt32()) } else { reserved.append(0) }
        }
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt64(seqNum)
        for i in 0..<8 { w.writeUInt32(i < reserved.count ? reserved[i] : 0) }
    }
}
