import VMBusWire

/// `struct rndis_message`: `ndis_msg_type`, `msg_len` (the whole message, this 8-byte header included) and
/// one body of the union, after dispatch. The control path's type; PACKET messages on the data path go
/// through ``RNDISPacketView`` instead, which does not copy the frame.
public enum RNDISMessage: Equatable, Sendable {
    /// A PACKET with its PPIs and a copy of its frame.
    case packet(info: RNDISPacketInfo, frame: [UInt8])
    case initializeRequest(RNDISInitializeRequest)
    case initializeComplete(RNDISInitializeComplete)
    case halt(RNDISHaltRequest)
    case queryRequest(RNDISQueryRequest)
    case queryComplete(RNDISQueryComplete)
    case setRequest(RNDISSetRequest)
    case setComplete(RNDISSetComplete)
    case resetRequest(RNDISResetRequest)
    case resetComplete(RNDISResetComplete)
    case indicateStatus(RNDISIndicateStatus)
    case keepaliveRequest(RNDISKeepaliveRequest)
    case keepaliveComplete(RNDISKeepaliveComplete)
    /// Any other type (CoNDIS, bus messages, numbers nobody defines): the body as received.
    case other(type: RNDISMessageType, body: [UInt8])

    public static let cName = "rndis_message"
    /// `RNDIS_HEADER_SIZE`
    public static let headerSize = 8
    /// `RNDIS_EXT_LEN`: Linux drops control responses longer than this.
    public static let linuxMaxControlResponseLength = 4096

    public var type: RNDISMessageType {
        switch self {
        case .packet: return .packet
        case .initializeRequest: return .initialize
        case .initializeComplete: return .initializeComplete
        case .halt: return .halt
        case .queryRequest: return .query
        case .queryComplete: return .queryComplete
        case .setRequest: return .set
        case .setComplete: return .setComplete
        case .resetRequest: return .reset
        case .resetComplete: return .resetComplete
        case .indicateStatus: return .indicateStatus
        case .keepaliveRequest: return .keepalive
        case .keepaliveComplete: return .keepaliveComplete
        case .other(let type, _): return type
        }
    }

    /// The request id, for the messages that carry one (completions are matched by it).
    public var requestID: UInt32? {
        switch self {
        case .initializeRequest(let m): return m.requestID
        case .initializeComplete(let m): return m.requestID
        case .halt(let m): return m.requestID
        case .queryRequest(let m): return m.requestID
        case .queryComplete(let m): return m.requestID
        case .setRequest(let m): return m.requestID
        case .setComplete(let m): return m.requestID
        case .keepaliveRequest(let m): return m.requestID
        case .keepaliveComplete(let m): return m.requestID
        default: return nil
        }
    }

    /// Decodes the message at `r`'s index and moves `r` past its `msg_len`. A `msg_len` below the header or
    /// past the bytes available throws; so does a body too short for its fixed fields or an info buffer
    /// outside the message. Bytes after the fixed fields (Linux pads) are ignored.
    public init(from r: inout WireReader) throws(WireError) {
        let type = RNDISMessageType(rawValue: try r.peekUInt32())
        if type == .packet {
            let view = try RNDISPacketView(from: &r)
            self = .packet(info: view.info, frame: Array(view.data))
            return
        }
        let length = Int(try r.getUInt32(at: r.index + 4))
        guard length >= Self.headerSize else { throw .invalidValue(field: "msg_len", value: UInt64(length)) }
        var message = try r.readSubReader(length)
        try message.skip(Self.headerSize)
        var b = try message.readSubReader(message.remaining)
        switch type {
        case .initialize: self = .initializeRequest(try RNDISInitializeRequest(from: &b))
        case .initializeComplete: self = .initializeComplete(try RNDISInitializeComplete(from: &b))
        case .halt: self = .halt(try RNDISHaltRequest(from: &b))
        case .query: self = .queryRequest(try RNDISQueryRequest(from: &b))
        case .queryComplete: self = .queryComplete(try RNDISQueryComplete(from: &b))
        case .set: self = .setRequest(try RNDISSetRequest(from: &b))
        case .setComplete: self = .setComplete(try RNDISSetComplete(from: &b))
        case .reset: self = .resetRequest(try RNDISResetRequest(from: &b))
        case .resetComplete: self = .resetComplete(try RNDISResetComplete(from: &b))
        case .indicateStatus: self = .indicateStatus(try RNDISIndicateStatus(from: &b))
        case .keepalive: self = .keepaliveRequest(try RNDISKeepaliveRequest(from: &b))
        case .keepaliveComplete: self = .keepaliveComplete(try RNDISKeepaliveComplete(from: &b))
        default: self = .other(type: type, body: try b.readBytes(b.remaining))
        }
    }

    public init(wireBytes bytes: [UInt8]) throws(WireError) {
        var r = WireReader(bytes)
        self = try Self(from: &r)
    }

    /// Encodes the header (with the right `msg_len`) and the body.
    public func encode(into w: inout WireWriter) {
        if case .packet(let info, let frame) = self {
            RNDISPacket.encodeMessage(into: &w, info: info, frame: frame)
            return
        }
        let start = w.count
        w.writeUInt32(type.rawValue)
        w.writeUInt32(0)  // msg_len, set below
        switch self {
        case .packet: break
        case .initializeRequest(let m): m.encode(into: &w)
        case .initializeComplete(let m): m.encode(into: &w)
        case .halt(let m): m.encode(into: &w)
        case .queryRequest(let m): m.encode(into: &w)
        case .queryComplete(let m): m.encode(into: &w)
        case .setRequest(let m): m.encode(into: &w)
        case .setComplete(let m): m.encode(into: &w)
        case .resetRequest(let m): m.encode(into: &w)
        case .resetComplete(let m): m.encode(into: &w)
        case .indicateStatus(let m): m.encode(into: &w)
        case .keepaliveRequest(let m): m.encode(into: &w)
        case .keepaliveComplete(let m): m.encode(into: &w)
        case .other(_, let body): w.writeBytes(body)
        }
        w.setUInt32(UInt32(truncatingIfNeeded: w.count - start), at: start + 4)
    }

    public var wireBytes: [UInt8] {
        var w = WireWriter()
        encode(into: &w)
        return w.bytes
    }
}
