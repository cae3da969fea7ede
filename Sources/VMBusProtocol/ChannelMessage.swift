import VMBusWire

/// `struct vmbus_channel_message_header`: the 8 bytes that start every control message.
public struct ChannelMessageHeader: WireCodable, Equatable, Sendable {
    public static let wireSize = 8
    public static let cName = "vmbus_channel_message_header"

    public var messageType: ChannelMessageType

    public init(messageType: ChannelMessageType) { self.messageType = messageType }

    public init(from r: inout WireReader) throws(WireError) {
        messageType = ChannelMessageType(rawValue: try r.readUInt32())
        try r.skip(4)  // padding
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(messageType.rawValue)
        w.writeUInt32(0)  // padding
    }

    /// Reads a header and checks that it announces `type`.
    static func read(expecting type: ChannelMessageType, from r: inout WireReader) throws(WireError) {
        let header = try ChannelMessageHeader(from: &r)
        guard header.messageType == type else {
            throw .invalidValue(field: "vmbus_channel_message_header.msgtype", value: UInt64(header.messageType.rawValue))
        }
    }
}

/// One control message struct: encodes its own header, decodes it back and checks the type.
///
/// `wireSize` is the C `sizeof` of the Linux struct (header included); messages with a variable tail
/// (GPADL_HEADER, GPADL_BODY) or a longer 6.0 form encode more than that.
public protocol ChannelMessageCodable: WireCodable, Equatable, Sendable {
    /// The `msgtype` this struct is sent with.
    static var messageType: ChannelMessageType { get }
    /// The C struct name (Linux, or OpenVMM's Rust name for messages Linux 6.12 does not define).
    static var cName: String { get }
    /// The shortest message `ChannelMessage.parse` accepts for this type, header included.
    static var minimumLength: Int { get }
    /// This message wrapped in the dispatch enum.
    var channelMessage: ChannelMessage { get }
}

extension ChannelMessageCodable {
    public static var minimumLength: Int { wireSize }
}

/// A parsed control message (`CHANNELMSG_*`), one case per message type.
///
/// Parse with ``parse(_:)`` (the only place that dispatches on the type), act on the case, encode replies
/// with ``bytes`` or ``encode(into:)``.
public enum ChannelMessage: Sendable, Equatable {
    case offerChannel(OfferChannel)
    case rescindChannelOffer(RescindChannelOffer)
    case requestOffers(RequestOffers)
    case allOffersDelivered(AllOffersDelivered)
    case openChannel(OpenChannel)
    case openChannelResult(OpenChannelResult)
    case closeChannel(CloseChannel)
    case gpadlHeader(GPADLHeader)
    case gpadlBody(GPADLBody)
    case gpadlCreated(GPADLCreated)
    case gpadlTeardown(GPADLTeardown)
    case gpadlTorndown(GPADLTorndown)
    case relIDReleased(RelIDReleased)
    case initiateContact(InitiateContact)
    case versionResponse(VersionResponse)
    case unload(Unload)
    case unloadResponse(UnloadResponse)
    case openReservedChannel(OpenReservedChannel)
    case closeReservedChannel(CloseReservedChannel)
    case closeReservedResponse(CloseReservedResponse)
    case tlConnectRequest(TLConnectRequest)
    case modifyChannel(ModifyChannel)
    case tlConnectResult(TLConnectResult)
    case modifyChannelResponse(ModifyChannelResponse)
    case modifyConnection(ModifyConnection)
    case modifyConnectionResponse(ModifyConnectionResponse)
    case pause(Pause)
    case pauseResponse(PauseResponse)
    case resume(Resume)

    /// `HV_MESSAGE_PAYLOAD_BYTE_COUNT` (= `MAX_SIZE_CHANNEL_MESSAGE`): no control message is longer.
    public static let maximumLength = 240

    /// The message struct inside the case.
    public var payload: any ChannelMessageCodable {
        switch self {
        case .offerChannel(let m): return m
        case .rescindChannelOffer(let m): return m
        case .requestOffers(let m): return m
        case .allOffersDelivered(let m): return m
        case .openChannel(let m): return m
        case .openChannelResult(let m): return m
        case .closeChannel(let m): return m
        case .gpadlHeader(let m): return m
        case .gpadlBody(let m): return m
        case .gpadlCreated(let m): return m
        case .gpadlTeardown(let m): return m
        case .gpadlTorndown(let m): return m
        case .relIDReleased(let m): return m
        case .initiateContact(let m): return m
        case .versionResponse(let m): return m
        case .unload(let m): return m
        case .unloadResponse(let m): return m
        case .openReservedChannel(let m): return m
        case .closeReservedChannel(let m): return m
        case .closeReservedResponse(let m): return m
        case .tlConnectRequest(let m): return m
        case .modifyChannel(let m): return m
        case .tlConnectResult(let m): return m
        case .modifyChannelResponse(let m): return m
        case .modifyConnection(let m): return m
        case .modifyConnectionResponse(let m): return m
        case .pause(let m): return m
        case .pauseResponse(let m): return m
        case .resume(let m): return m
        }
    }

    /// The `msgtype` this message is sent with.
    public var type: ChannelMessageType { Swift.type(of: payload).messageType }

    /// Appends the message, header first, exactly as it goes into the SynIC payload.
    public func encode(into writer: inout WireWriter) { payload.encode(into: &writer) }

    /// The encoded message (allocates; control messages are rare).
    public var bytes: [UInt8] {
        var writer = WireWriter(capacity: Self.maximumLength)
        encode(into: &writer)
        return writer.bytes
    }

    /// Decodes one control message from the bytes of a SynIC payload (`payload_size` bytes, already copied out
    /// of the message page).
    ///
    /// Rejects, in this order: more than 240 bytes, no complete header, INVALID or unknown `msgtype`, fewer
    /// bytes than the type's minimum length, and fields or counts the message struct refuses (GPADL range
    /// counts). Bytes beyond what the type defines are ignored, as Linux and OpenVMM do, except where a longer
    /// 6.0 form of the message exists: those extra fields are decoded and kept.
    public static func parse(_ bytes: [UInt8]) throws(ChannelMessageError) -> ChannelMessage {
        guard bytes.count <= maximumLength else { throw .tooLong(bytes.count) }
        guard bytes.count >= ChannelMessageHeader.wireSize else { throw .missingHeader(length: bytes.count) }
        let raw = UInt32(bytes[0]) | UInt32(bytes[1]) << 8 | UInt32(bytes[2]) << 16 | UInt32(bytes[3]) << 24
        guard let entry = entry(for: ChannelMessageType(rawValue: raw)) else { throw .unknownType(raw) }
        guard bytes.count >= entry.minimumLength else {
            throw .tooShort(type: entry.type, length: bytes.count, minimum: entry.minimumLength)
        }
        var reader = WireReader(bytes)
        do {
            return try entry.decode(&reader)
        } catch {
            throw .malformed(entry.type, error)
        }
    }

    /// ``parse(_:)`` plus ``ChannelMessageType/checkAllowed(from:version:features:)``: also rejects a message
    /// sent by the wrong side, before negotiation, below its minimum version or without its feature flag.
    public static func parse(
        _ bytes: [UInt8], from sender: ChannelMessageDirection, version: VMBusVersion?,
        features: VMBusFeatureFlags = []
    ) throws(ChannelMessageError) -> ChannelMessage {
        let message = try parse(bytes)
        try message.type.checkAllowed(from: sender, version: version, features: features)
        return message
    }
}

extension ChannelMessage {
    /// One row of the control-message table (the role of Linux's `channel_message_table` and OpenVMM's
    /// `vmbus_messages!`).
    public struct TableEntry: Sendable {
        public let type: ChannelMessageType
        /// The C struct the message is declared as.
        public let cName: String
        public let direction: ChannelMessageDirection
        /// PROTOCOL.md §2.9.
        public let minimumVersion: VMBusVersion
        /// The 6.0 feature flag the message needs, if any.
        public let requiredFeature: VMBusFeatureFlags?
        /// Header included. Equals Linux's `min_payload_len` where Linux has one, the struct size otherwise.
        public let minimumLength: Int
        let decode: @Sendable (inout WireReader) throws(WireError) -> ChannelMessage
    }

    private static func row<M: ChannelMessageCodable>(
        _ message: M.Type, _ direction: ChannelMessageDirection, _ minimumVersion: VMBusVersion,
        feature: VMBusFeatureFlags? = nil
    ) -> TableEntry {
        TableEntry(
            type: M.messageType, cName: M.cName, direction: direction, minimumVersion: minimumVersion,
            requiredFeature: feature, minimumLength: M.minimumLength,
            decode: { (reader: inout WireReader) throws(WireError) -> ChannelMessage in
                try M(from: &reader).channelMessage
            })
    }

    /// Every known message type, in `msgtype` order starting at 1 (`table[n - 1]` describes type `n`).
    public static let table: [TableEntry] = [
        row(OfferChannel.self, .hostToGuest, .ws2008),
        row(RescindChannelOffer.self, .hostToGuest, .ws2008),
        row(RequestOffers.self, .guestToHost, .ws2008),
        row(AllOffersDelivered.self, .hostToGuest, .ws2008),
        row(OpenChannel.self, .guestToHost, .ws2008),
        row(OpenChannelResult.self, .hostToGuest, .ws2008),
        row(CloseChannel.self, .guestToHost, .ws2008),
        row(GPADLHeader.self, .guestToHost, .ws2008),
        row(GPADLBody.self, .guestToHost, .ws2008),
        row(GPADLCreated.self, .hostToGuest, .ws2008),
        row(GPADLTeardown.self, .guestToHost, .ws2008),
        row(GPADLTorndown.self, .hostToGuest, .ws2008),
        row(RelIDReleased.self, .guestToHost, .ws2008),
        row(InitiateContact.self, .guestToHost, .ws2008),
        row(VersionResponse.self, .hostToGuest, .ws2008),
        row(Unload.self, .guestToHost, .ws2008),
        row(UnloadResponse.self, .hostToGuest, .win7),
        row(OpenReservedChannel.self, .guestToHost, .win10),
        row(CloseReservedChannel.self, .guestToHost, .win10),
        row(CloseReservedResponse.self, .hostToGuest, .win10),
        row(TLConnectRequest.self, .guestToHost, .win10),
        row(ModifyChannel.self, .guestToHost, .win10_v4_1),
        row(TLConnectResult.self, .hostToGuest, .win10_v4_1),
        row(ModifyChannelResponse.self, .hostToGuest, .win10_v5_3),
        row(ModifyConnection.self, .guestToHost, .copper, feature: .modifyConnection),
        row(ModifyConnectionResponse.self, .hostToGuest, .copper, feature: .modifyConnection),
        row(Pause.self, .guestToHost, .copper, feature: .pauseResume),
        row(PauseResponse.self, .hostToGuest, .copper, feature: .pauseResume),
        row(Resume.self, .guestToHost, .copper, feature: .pauseResume),
    ]

    /// The table row for `type`; `nil` for INVALID and unknown types.
    public static func entry(for type: ChannelMessageType) -> TableEntry? {
        guard type.rawValue >= 1, type.rawValue <= UInt32(table.count) else { return nil }
        return table[Int(type.rawValue) - 1]
    }
}
