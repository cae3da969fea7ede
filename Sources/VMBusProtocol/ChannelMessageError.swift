import VMBusWire

/// Why a control message was rejected. Every case means "drop this message" (Linux logs and discards, as in
/// `vmbus_on_msg_dpc`); none of them may bring the connection down on its own.
public enum ChannelMessageError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The message is longer than `HV_MESSAGE_PAYLOAD_BYTE_COUNT` (240) bytes.
    case tooLong(Int)
    /// Fewer bytes than the 8-byte `vmbus_channel_message_header`.
    case missingHeader(length: Int)
    /// `msgtype` is INVALID or not a type the table knows.
    case unknownType(UInt32)
    /// Shorter than the type's minimum length (Linux `channel_message_table` minimums, else the struct size).
    case tooShort(type: ChannelMessageType, length: Int, minimum: Int)
    /// The fixed part decoded but a field or count inside it is not acceptable.
    case malformed(ChannelMessageType, WireError)
    /// The message arrived from the side that is not supposed to send it.
    case wrongDirection(ChannelMessageType, ChannelMessageDirection)
    /// Only INITIATE_CONTACT and VERSION_RESPONSE are allowed before a version is negotiated.
    case notNegotiated(ChannelMessageType)
    /// The negotiated version is older than the type's minimum version.
    case unsupportedVersion(ChannelMessageType, VMBusVersion)
    /// The type needs a 6.0 feature flag that was not negotiated.
    case featureNotNegotiated(ChannelMessageType, VMBusFeatureFlags)

    public var description: String {
        switch self {
        case .tooLong(let length):
            return "control message of \(length) bytes exceeds the \(ChannelMessage.maximumLength)-byte SynIC payload"
        case .missingHeader(let length):
            return "control message of \(length) bytes has no complete 8-byte header"
        case .unknownType(let raw):
            return "unknown control message type \(raw)"
        case .tooShort(let type, let length, let minimum):
            return "\(type) of \(length) bytes is shorter than its minimum of \(minimum) bytes"
        case .malformed(let type, let error):
            return "malformed \(type): \(error)"
        case .wrongDirection(let type, let sender):
            return "\(type) is not a \(sender) message"
        case .notNegotiated(let type):
            return "\(type) before a protocol version was negotiated"
        case .unsupportedVersion(let type, let version):
            return "\(type) is not allowed at protocol version \(version)"
        case .featureNotNegotiated(let type, let feature):
            return "\(type) needs feature \(feature), which was not negotiated"
        }
    }
}
