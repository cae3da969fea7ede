import VMBusWire

/// `struct rndis_indicate_status`: an unsolicited event from the device. Linux acts on MEDIA_CONNECT,
/// MEDIA_DISCONNECT, NETWORK_CHANGE and LINK_SPEED_CHANGE (a u32 in 100 bit/s units in the status buffer).
/// Old vSwitches left the buffer out of `msg_len`; this decoder refuses such a message, so a guest that wants
/// to be lenient checks the buffer length itself.
public struct RNDISIndicateStatus: WireDecodable, WireEncodable, Equatable, Sendable {
    public static let cName = "rndis_indicate_status"
    public static let wireSize = 12

    public var status: RNDISStatus
    public var statusBuffer: [UInt8]

    public init(status: RNDISStatus, statusBuffer: [UInt8] = []) {
        self.status = status
        self.statusBuffer = statusBuffer
    }

    /// A LINK_SPEED_CHANGE indication.
    public static func linkSpeedChange(hundredsOfBitsPerSecond speed: UInt32) -> Self {
        Self(status: .linkSpeedChange, statusBuffer: (0..<4).map { UInt8(truncatingIfNeeded: speed >> (8 * $0)) })
    }

    /// Decodes from the message body, which runs to the end of `r`.
    public init(from r: inout WireReader) throws(WireError) {
        let body = try r.readSubReader(r.remaining)
        var b = body
        status = RNDISStatus(rawValue: try b.readUInt32())
        let length = try b.readUInt32()
        let offset = try b.readUInt32()
        statusBuffer = try RNDISInfoBuffer.read(body, offset: offset, length: length, fixedSize: Self.wireSize,
                                               field: "status_buf_offset")
    }

    /// The buffer, if any, right after the fixed fields; an empty buffer gets offset 0.
    public func encode(into w: inout WireWriter) {
        w.writeUInt32(status.rawValue)
        w.writeUInt32(UInt32(truncatingIfNeeded: statusBuffer.count))
        w.writeUInt32(statusBuffer.isEmpty ? 0 : UInt32(Self.wireSize))
        w.writeBytes(statusBuffer)
    }
}
