import VMBusWire

/// The shape the receive and send buffers share: SEND_RECV_BUF and SEND_SEND_BUF are both a GPADL handle and a
/// u16 id (packed, 6 bytes); their revocations are the id alone. Decode and encode are written once here.
public protocol NVSPBufferHandoff: WireCodable {
    var gpadlHandle: UInt32 { get }
    var id: UInt16 { get }
    init(gpadlHandle: UInt32, id: UInt16)
}

extension NVSPBufferHandoff {
    public init(from r: inout WireReader) throws(WireError) {
        let handle = try r.readUInt32()
        self.init(gpadlHandle: handle, id: try r.readUInt16())
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(gpadlHandle)
        w.writeUInt16(id)
    }
}

/// REVOKE_RECV_BUF and REVOKE_SEND_BUF: the id of the buffer the guest takes back.
public protocol NVSPBufferRevocation: WireCodable {
    var id: UInt16 { get }
    init(id: UInt16)
}

extension NVSPBufferRevocation {
    public init(from r: inout WireReader) throws(WireError) { self.init(id: try r.readUInt16()) }
    public func encode(into w: inout WireWriter) { w.writeUInt16(id) }
}
