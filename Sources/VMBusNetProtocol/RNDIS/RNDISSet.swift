import VMBusWire

/// `struct rndis_set_request`: a write of one OID, its value in `info_buf[]` right after the fixed fields.
public struct RNDISSetRequest: WireDecodable, WireEncodable, Equatable, Sendable {
    public static let cName = "rndis_set_request"
    public static let wireSize = 20

    public var requestID: UInt32
    public var oid: RNDISOID
    public var deviceVCHandle: UInt32
    public var infoBuffer: [UInt8]

    public init(requestID: UInt32, oid: RNDISOID, infoBuffer: [UInt8], deviceVCHandle: UInt32 = 0) {
        self.requestID = requestID
        self.oid = oid
        self.infoBuffer = infoBuffer
        self.deviceVCHandle = deviceVCHandle
    }

    /// Decodes from the message body, which runs to the end of `r`.
    public init(from r: inout WireReader) throws(WireError) {
        (requestID, oid, deviceVCHandle, infoBuffer) = try RNDISOIDRequest.decode(&r)
    }

    public func encode(into w: inout WireWriter) {
        RNDISOIDRequest.encode(into: &w, requestID: requestID, oid: oid, deviceVCHandle: deviceVCHandle,
                               infoBuffer: infoBuffer)
    }
}

/// `struct rndis_set_complete`
public struct RNDISSetComplete: RNDISRequestCompletion, Equatable, Sendable {
    public static let cName = "rndis_set_complete"
    public static let wireSize = 8

    public var requestID: UInt32
    public var status: RNDISStatus

    public init(requestID: UInt32, status: RNDISStatus) {
        self.requestID = requestID
        self.status = status
    }
}
