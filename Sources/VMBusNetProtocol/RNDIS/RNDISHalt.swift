import VMBusWire

/// `struct rndis_halt_request`: Linux's last RNDIS message on remove. There is no completion.
public struct RNDISHaltRequest: WireCodable, Equatable, Sendable {
    public static let cName = "rndis_halt_request"
    public static let wireSize = 4

    public var requestID: UInt32

    public init(requestID: UInt32) { self.requestID = requestID }

    public init(from r: inout WireReader) throws(WireError) { requestID = try r.readUInt32() }
    public func encode(into w: inout WireWriter) { w.writeUInt32(requestID) }
}
