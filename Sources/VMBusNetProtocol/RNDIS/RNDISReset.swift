import VMBusWire

/// `struct rndis_reset_request`: one reserved word and no request id, so its completion cannot be matched.
public struct RNDISResetRequest: WireCodable, Equatable, Sendable {
    public static let cName = "rndis_reset_request"
    public static let wireSize = 4

    public init() {}

    public init(from r: inout WireReader) throws(WireError) { try r.skip(4) }
    public func encode(into w: inout WireWriter) { w.writeUInt32(0) }
}

/// `struct rndis_reset_complete`
public struct RNDISResetComplete: WireCodable, Equatable, Sendable {
    public static let cName = "rndis_reset_complete"
    public static let wireSize = 8

    public var status: RNDISStatus
    /// Non-zero when the device lost its multicast list and packet filter and the host must set them again.
    public var addressingReset: UInt32

    public init(status: RNDISStatus, addressingReset: UInt32) {
        self.status = status
        self.addressingReset = addressingReset
    }

    public init(from r: inout WireReader) throws(WireError) {
        status = RNDISStatus(rawValue: try r.readUInt32())
        addressingReset = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(status.rawValue)
        w.writeUInt32(addressingReset)
    }
}
