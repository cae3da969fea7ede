import VMBusWire

/// `struct hv_fcopy_hdr` (36 bytes): the head of every file-copy message, the whole of COMPLETE_FCOPY and
/// CANCEL_FCOPY. File-copy messages follow `ICMSG_HDR` on VMBus, and Linux before 6.10 passed them to
/// hv_fcopy_daemon through /dev/vmbus/hv_fcopy as they are (START_FILE_COPY rewritten, see ``FCopyStart``).
public struct FCopyHeader: Equatable, Sendable, WireCodable {
    public static let cName = "hv_fcopy_hdr"
    public static let wireSize = 36

    public var operation: FCopyOperation
    /// `service_id0[16]`: a GUID in wire byte order; Linux never reads it.
    public var serviceID0: GUID
    /// `service_id1[16]`
    public var serviceID1: GUID

    public init(operation: FCopyOperation, serviceID0: GUID = .zero, serviceID1: GUID = .zero) {
        self.operation = operation
        self.serviceID0 = serviceID0
        self.serviceID1 = serviceID1
    }

    public init(from r: inout WireReader) throws(WireError) {
        try r.require(Self.wireSize)
        operation = FCopyOperation(rawValue: try r.readUInt32())
        serviceID0 = try GUID(from: &r)
        serviceID1 = try GUID(from: &r)
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(operation.rawValue)
        serviceID0.encode(into: &w)
        serviceID1.encode(into: &w)
    }
}
