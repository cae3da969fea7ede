import VMBusWire

/// The completions that are only `req_id` and `status` (SET_C, KEEPALIVE_C): decode and encode written once.
public protocol RNDISRequestCompletion: WireCodable {
    var requestID: UInt32 { get }
    var status: RNDISStatus { get }
    init(requestID: UInt32, status: RNDISStatus)
}

extension RNDISRequestCompletion {
    public init(from r: inout WireReader) throws(WireError) {
        let id = try r.readUInt32()
        self.init(requestID: id, status: RNDISStatus(rawValue: try r.readUInt32()))
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(requestID)
        w.writeUInt32(status.rawValue)
    }
}
