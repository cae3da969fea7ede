import VMBusWire

/// One IC packet as it travels in a VMBus in-band packet: ``VMBusPipeHeader``, ``ICMessageHeader``, body.
///
/// The body is everything after the 28 header bytes (`ICMSG_HDR`), not `icmsgsize` bytes: Linux ignores
/// `icmsgsize`, and each service decodes its own struct from the body with its own length check.
public struct ICMessage: Equatable, Sendable {
    /// `ICMSG_HDR`: `sizeof(struct vmbuspipe_hdr) + sizeof(struct icmsg_hdr)`, where every body starts.
    public static let headerSize = VMBusPipeHeader.wireSize + ICMessageHeader.wireSize

    public var pipe: VMBusPipeHeader
    public var header: ICMessageHeader
    public var body: [UInt8]

    public init(pipe: VMBusPipeHeader, header: ICMessageHeader, body: [UInt8]) {
        self.pipe = pipe
        self.header = header
        self.body = body
    }

    /// A message with the pipe header a host writes, `icmsgsize` set to the body's length.
    public init(header: ICMessageHeader, body: [UInt8]) {
        var h = header
        h.icmsgsize = UInt16(truncatingIfNeeded: body.count)
        self.init(pipe: VMBusPipeHeader(msgsize: UInt32(ICMessageHeader.wireSize + body.count)), header: h, body: body)
    }

    /// A message whose body is `value` encoded.
    public init(header: ICMessageHeader, encoding value: some WireEncodable) {
        self.init(header: header, body: value.wireBytes)
    }

    /// Parses a packet payload. Fewer than 28 bytes is `.truncated`: Linux 6.12 drops such a packet
    /// without answering it.
    public init(packet: [UInt8]) throws(WireError) {
        var r = WireReader(packet)
        pipe = try VMBusPipeHeader(from: &r)
        header = try ICMessageHeader(from: &r)
        body = try r.readBytes(r.remaining)
    }

    public func encode(into w: inout WireWriter) {
        pipe.encode(into: &w)
        header.encode(into: &w)
        w.writeBytes(body)
    }

    public var wireBytes: [UInt8] {
        var w = WireWriter(capacity: Self.headerSize + body.count)
        encode(into: &w)
        return w.bytes
    }

    /// Decodes the body as `T`; a body shorter than `T` is `.truncated` (Linux's per-service length checks).
    public func decodeBody<T: WireDecodable>(_ type: T.Type) throws(WireError) -> T {
        var r = WireReader(body)
        return try T(from: &r)
    }

    /// The answer Linux sends: the request's own bytes (so its length, pipe header, transaction id and
    /// versions), with ``ICMessageFlags/guestResponse``, `status` and, if given, a new body. Linux sends the
    /// request's length back, so a new body is cut or zero-padded to the old body's length.
    public func linuxResponse(status: ICStatus, body newBody: [UInt8]? = nil) -> ICMessage {
        var out = self
        out.header.icflags = .guestResponse
        out.header.status = status
        if let newBody {
            var b = Array(newBody.prefix(body.count))
            if b.count < body.count { b.append(contentsOf: repeatElement(0, count: body.count - b.count)) }
            out.body = b
        }
        return out
    }
}
