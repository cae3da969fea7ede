import VMBusWire

/// `struct vmbuspipe_hdr`: the 8 bytes every IC packet starts with, before `icmsg_hdr`.
///
/// Hyper-V's ICs run over a VMBus "pipe" in message mode. Linux reads neither field and echoes the host's
/// header in its answers; OpenVMM's message pipe writes ``dataPacketType`` and the length of what follows.
public struct VMBusPipeHeader: Equatable, Sendable, WireCodable {
    public static let cName = "vmbuspipe_hdr"
    public static let wireSize = 8
    /// OpenVMM's `PIPE_PACKET_TYPE_DATA` (Linux has no name for it).
    public static let dataPacketType: UInt32 = 1

    public var flags: UInt32
    /// Bytes after this header.
    public var msgsize: UInt32

    public init(flags: UInt32 = VMBusPipeHeader.dataPacketType, msgsize: UInt32) {
        self.flags = flags
        self.msgsize = msgsize
    }

    public init(from r: inout WireReader) throws(WireError) {
        flags = try r.readUInt32()
        msgsize = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(flags)
        w.writeUInt32(msgsize)
    }
}
