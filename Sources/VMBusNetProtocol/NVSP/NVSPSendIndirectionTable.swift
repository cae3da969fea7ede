import VMBusWire

/// `struct nvsp_5_send_indirect_table` and the table it points at: host → guest, for each of the
/// `VRSS_SEND_TAB_SIZE` (16) transmit hash buckets the channel index the guest should send on. `offset` is
/// from the start of the NVSP message; Linux never completes the message.
public struct NVSPSendIndirectionTable: WireEncodable, Equatable, Sendable {
    public static let cName = "nvsp_5_send_indirect_table"
    /// count and offset.
    public static let wireSize = 8
    /// `VRSS_SEND_TAB_SIZE`: the only count Linux accepts.
    public static let linuxEntryCount = 16
    /// Where the compact form (OpenVMM's) puts the table: right after type, count and offset.
    public static let compactOffset = 4 + wireSize
    /// Where Hyper-V's table really is for NVSP ≤ 6, whatever its offset says: after a full 40-byte message.
    /// Linux overrides the offset with this when the message is long enough to hold the table there.
    public static let hyperVQuirkOffset = NVSPMessage.wireSize

    public var entries: [UInt32]

    public init(entries: [UInt32]) { self.entries = entries }

    /// Decodes from `message`, a reader over the whole NVSP message (type word included) positioned after the
    /// type. `version` is the negotiated one, for the Hyper-V offset quirk; `nil` takes the offset as sent.
    /// Count and offset are checked against the message before the table is read.
    public init(message: WireReader, version: NVSPProtocolVersion?) throws(WireError) {
        var r = message
        let count = Int(try r.readUInt32())
        var offset = Int(try r.readUInt32())
        let length = message.end - message.start
        let fit = length / 4
        guard count <= fit else { throw .countTooLarge(field: "send_table.count", count: count, limit: fit) }
        if let version, version <= .v6, length >= Self.hyperVQuirkOffset + count * 4 {
            offset = Self.hyperVQuirkOffset
        }
        // A table over the message's own fields is nonsense a careless host could send; refuse it.
        guard offset >= Self.compactOffset else {
            throw .invalidValue(field: "send_table.offset", value: UInt64(offset))
        }
        var table = try message.region(at: offset, count: count * 4)
        var entries: [UInt32] = []
        entries.reserveCapacity(count)
        for _ in 0..<count { entries.append(try table.readUInt32()) }
        self.entries = entries
    }

    /// Encodes the compact form after the message type: count, offset 12, the entries.
    public func encode(into w: inout WireWriter) {
        w.writeUInt32(UInt32(truncatingIfNeeded: entries.count))
        w.writeUInt32(UInt32(Self.compactOffset))
        for e in entries { w.writeUInt32(e) }
    }
}
