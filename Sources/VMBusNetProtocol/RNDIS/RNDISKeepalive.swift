import VMBusWire

/// `struct rndis_keepalive_request`
public struct RNDISKeepaliveRequest: WireCodable, Equatable, Sendable {
    public static let cName = "rndis_keepalive_request"
    public static let wireSize = 4

    public var requestID: UInt32

    public init(requestID: UInt32) { self.requestID = requestID }

    public init(from r: inout WireReader) throws(WireError) { requestID = try r.readUInt32() }
    public func encode(into w: inout WireWriter) { w.writeUInt32(requestID) }
}

/// `struct rndis_keepalive_complete`
public struct RNDISKeepaliveComplete: RNDISRequestCompletion, Equatable, Sendable {
    public static let cName = "rndis_keepalive_complete"
    public static let wireSize = 8

    public var requestID: UInt32
    public var status: RNDISStatus

    public init(requestID: UInt32, status: RNDISStatus) {
        self.requestID = requestID
        self.status = status
    }
}
