import VMBusWire

/// `struct vmbus_channel_tl_connect_request` (40 bytes): CHANNELMSG_TL_CONNECT_REQUEST, G→H (hv_sock connect).
///
/// Hosts from 5.2 also accept a 56-byte form with a silo id at 40 (OpenVMM `TlConnectRequest2`); a message of
/// at least 56 bytes keeps it in ``siloID``. There is no direct answer: success is a new offer.
public struct TLConnectRequest: ChannelMessageCodable {
    public static let wireSize = 40
    public static let cName = "vmbus_channel_tl_connect_request"
    public static let messageType = ChannelMessageType.tlConnectRequest
    /// Length of the form with a silo id.
    public static let wireSizeWithSiloID = 56

    /// `guest_endpoint_id`
    public var guestEndpointID: GUID
    /// `host_service_id`
    public var hostServiceID: GUID
    /// OpenVMM `TlConnectRequest2.silo_id`; `nil` for the 40-byte form Linux sends.
    public var siloID: GUID?

    public init(guestEndpointID: GUID, hostServiceID: GUID, siloID: GUID? = nil) {
        self.guestEndpointID = guestEndpointID; self.hostServiceID = hostServiceID; self.siloID = siloID
    }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        guestEndpointID = try GUID(from: &r)
        hostServiceID = try GUID(from: &r)
        siloID = r.remaining >= GUID.wireSize ? try GUID(from: &r) : nil
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        guestEndpointID.encode(into: &w)
        hostServiceID.encode(into: &w)
        siloID?.encode(into: &w)
    }

    public var channelMessage: ChannelMessage { .tlConnectRequest(self) }
}

/// OpenVMM's `TlConnectResult` (44 bytes; Linux 6.12 names the type but declares no struct and ignores the
/// message): CHANNELMSG_TL_CONNECT_RESULT, H→G, from 4.1, sent when an hv_sock connect fails.
public struct TLConnectResult: ChannelMessageCodable {
    public static let wireSize = 44
    public static let cName = "TlConnectResult"
    public static let messageType = ChannelMessageType.tlConnectResult

    /// `endpoint_id`
    public var guestEndpointID: GUID
    /// `service_id`
    public var hostServiceID: GUID
    /// `status`: an NTSTATUS (OpenVMM sends `STATUS_CONNECTION_REFUSED` 0xC0000236).
    public var status: Int32

    public init(guestEndpointID: GUID, hostServiceID: GUID, status: Int32) {
        self.guestEndpointID = guestEndpointID; self.hostServiceID = hostServiceID; self.status = status
    }

    public init(from r: inout WireReader) throws(WireError) {
        try ChannelMessageHeader.read(expecting: Self.messageType, from: &r)
        guestEndpointID = try GUID(from: &r)
        hostServiceID = try GUID(from: &r)
        status = Int32(bitPattern: try r.readUInt32())
    }

    public func encode(into w: inout WireWriter) {
        ChannelMessageHeader(messageType: Self.messageType).encode(into: &w)
        guestEndpointID.encode(into: &w)
        hostServiceID.encode(into: &w)
        w.writeUInt32(UInt32(bitPattern: status))
    }

    public var channelMessage: ChannelMessage { .tlConnectResult(self) }
}
