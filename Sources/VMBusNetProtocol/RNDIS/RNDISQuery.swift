import VMBusWire

/// `struct rndis_query_request`: a read of one OID. The info buffer (Linux: only for the offload and RSS
/// capability queries, an NDIS object header saying which revision it wants) follows the fixed fields.
public struct RNDISQueryRequest: WireDecodable, WireEncodable, Equatable, Sendable {
    public static let cName = "rndis_query_request"
    /// The fixed fields; where Linux puts the info buffer.
    public static let wireSize = 20

    public var requestID: UInt32
    public var oid: RNDISOID
    public var deviceVCHandle: UInt32
    public var infoBuffer: [UInt8]

    public init(requestID: UInt32, oid: RNDISOID, infoBuffer: [UInt8] = [], deviceVCHandle: UInt32 = 0) {
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

/// `struct rndis_query_complete`: the OID's value follows the fixed fields (offset 16, as OpenVMM sends it).
public struct RNDISQueryComplete: WireDecodable, WireEncodable, Equatable, Sendable {
    public static let cName = "rndis_query_complete"
    public static let wireSize = 16

    public var requestID: UInt32
    public var status: RNDISStatus
    public var infoBuffer: [UInt8]

    public init(requestID: UInt32, status: RNDISStatus, infoBuffer: [UInt8] = []) {
        self.requestID = requestID
        self.status = status
        self.infoBuffer = infoBuffer
    }

    /// Decodes from the message body, which runs to the end of `r`.
    public init(from r: inout WireReader) throws(WireError) {
        let body = try r.readSubReader(r.remaining)
        var b = body
        requestID = try b.readUInt32()
        status = RNDISStatus(rawValue: try b.readUInt32())
        let length = try b.readUInt32()
        let offset = try b.readUInt32()
        infoBuffer = try RNDISInfoBuffer.read(body, offset: offset, length: length, fixedSize: Self.wireSize,
                                             field: "info_buf_offset")
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(requestID)
        w.writeUInt32(status.rawValue)
        w.writeUInt32(UInt32(truncatingIfNeeded: infoBuffer.count))
        w.writeUInt32(UInt32(Self.wireSize))
        w.writeBytes(infoBuffer)
    }
}
