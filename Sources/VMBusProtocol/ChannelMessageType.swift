/// `enum vmbus_channel_message_type`: the `msgtype` word at the start of every control message.
///
/// Open: an unknown type is representable so it can be reported. What each type carries, who sends it and
/// from which protocol version it is allowed live in one table, ``ChannelMessage/table``.
public struct ChannelMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `CHANNELMSG_INVALID`
    public static let invalid = Self(rawValue: 0)
    /// `CHANNELMSG_OFFERCHANNEL`
    public static let offerChannel = Self(rawValue: 1)
    /// `CHANNELMSG_RESCIND_CHANNELOFFER`
    public static let rescindChannelOffer = Self(rawValue: 2)
    /// `CHANNELMSG_REQUESTOFFERS`
    public static let requestOffers = Self(rawValue: 3)
    /// `CHANNELMSG_ALLOFFERS_DELIVERED`
    public static let allOffersDelivered = Self(rawValue: 4)
    /// `CHANNELMSG_OPENCHANNEL`
    public static let openChannel = Self(rawValue: 5)
    /// `CHANNELMSG_OPENCHANNEL_RESULT`
    public static let openChannelResult = Self(rawValue: 6)
    /// `CHANNELMSG_CLOSECHANNEL`
    public static let closeChannel = Self(rawValue: 7)
    /// `CHANNELMSG_GPADL_HEADER`
    public static let gpadlHeader = Self(rawValue: 8)
    /// `CHANNELMSG_GPADL_BODY`
    public static let gpadlBody = Self(rawValue: 9)
    /// `CHANNELMSG_GPADL_CREATED`
    public static let gpadlCreated = Self(rawValue: 10)
    /// `CHANNELMSG_GPADL_TEARDOWN`
    public static let gpadlTeardown = Self(rawValue: 11)
    /// `CHANNELMSG_GPADL_TORNDOWN`
    public static let gpadlTorndown = Self(rawValue: 12)
    /// `CHANNELMSG_RELID_RELEASED`
    public static let relIDReleased = Self(rawValue: 13)
    /// `CHANNELMSG_INITIATE_CONTACT`
    public static let initiateContact = Self(rawValue: 14)
    /// `CHANNELMSG_VERSION_RESPONSE`
    public static let versionResponse = Self(rawValue: 15)
    /// `CHANNELMSG_UNLOAD`
    public static let unload = Self(rawValue: 16)
    /// `CHANNELMSG_UNLOAD_RESPONSE`
    public static let unloadResponse = Self(rawValue: 17)
    /// `CHANNELMSG_18` in Linux; OpenVMM's `OPEN_RESERVED_CHANNEL`.
    public static let openReservedChannel = Self(rawValue: 18)
    /// `CHANNELMSG_19` in Linux; OpenVMM's `CLOSE_RESERVED_CHANNEL`.
    public static let closeReservedChannel = Self(rawValue: 19)
    /// `CHANNELMSG_20` in Linux; OpenVMM's `CLOSE_RESERVED_RESPONSE`.
    public static let closeReservedResponse = Self(rawValue: 20)
    /// `CHANNELMSG_TL_CONNECT_REQUEST`
    public static let tlConnectRequest = Self(rawValue: 21)
    /// `CHANNELMSG_MODIFYCHANNEL`
    public static let modifyChannel = Self(rawValue: 22)
    /// `CHANNELMSG_TL_CONNECT_RESULT`
    public static let tlConnectResult = Self(rawValue: 23)
    /// `CHANNELMSG_MODIFYCHANNEL_RESPONSE`
    public static let modifyChannelResponse = Self(rawValue: 24)
    /// Not in Linux 6.12 (`CHANNELMSG_COUNT` is 25); OpenVMM's `MODIFY_CONNECTION`.
    public static let modifyConnection = Self(rawValue: 25)
    /// Not in Linux 6.12; OpenVMM's `MODIFY_CONNECTION_RESPONSE`.
    public static let modifyConnectionResponse = Self(rawValue: 26)
    /// Not in Linux 6.12; OpenVMM's `PAUSE`.
    public static let pause = Self(rawValue: 27)
    /// Not in Linux 6.12; OpenVMM's `PAUSE_RESPONSE`.
    public static let pauseResponse = Self(rawValue: 28)
    /// Not in Linux 6.12; OpenVMM's `RESUME`.
    public static let resume = Self(rawValue: 29)

    /// `CHANNELMSG_COUNT`: Linux 6.12 drops every type at or above this value.
    public static let linuxCount: UInt32 = 25

    /// The Linux enumerator name (`CHANNELMSG_OFFERCHANNEL`); for 18-20 and 25-29, which Linux does not
    /// name, OpenVMM's name with the same prefix; `CHANNELMSG_<n>` for anything else.
    public var description: String {
        switch rawValue {
        case 0: return "CHANNELMSG_INVALID"
        case 1: return "CHANNELMSG_OFFERCHANNEL"
        case 2: return "CHANNELMSG_RESCIND_CHANNELOFFER"
        case 3: return "CHANNELMSG_REQUESTOFFERS"
        case 4: return "CHANNELMSG_ALLOFFERS_DELIVERED"
        case 5: return "CHANNELMSG_OPENCHANNEL"
        case 6: return "CHANNELMSG_OPENCHANNEL_RESULT"
        case 7: return "CHANNELMSG_CLOSECHANNEL"
        case 8: return "CHANNELMSG_GPADL_HEADER"
        case 9: return "CHANNELMSG_GPADL_BODY"
        case 10: return "CHANNELMSG_GPADL_CREATED"
        case 11: return "CHANNELMSG_GPADL_TEARDOWN"
        case 12: return "CHANNELMSG_GPADL_TORNDOWN"
        case 13: return "CHANNELMSG_RELID_RELEASED"
        case 14: return "CHANNELMSG_INITIATE_CONTACT"
        case 15: return "CHANNELMSG_VERSION_RESPONSE"
        case 16: return "CHANNELMSG_UNLOAD"
        case 17: return "CHANNELMSG_UNLOAD_RESPONSE"
        case 18: return "CHANNELMSG_OPEN_RESERVED_CHANNEL"
        case 19: return "CHANNELMSG_CLOSE_RESERVED_CHANNEL"
        case 20: return "CHANNELMSG_CLOSE_RESERVED_RESPONSE"
        case 21: return "CHANNELMSG_TL_CONNECT_REQUEST"
        case 22: return "CHANNELMSG_MODIFYCHANNEL"
        case 23: return "CHANNELMSG_TL_CONNECT_RESULT"
        case 24: return "CHANNELMSG_MODIFYCHANNEL_RESPONSE"
        case 25: return "CHANNELMSG_MODIFY_CONNECTION"
        case 26: return "CHANNELMSG_MODIFY_CONNECTION_RESPONSE"
        case 27: return "CHANNELMSG_PAUSE"
        case 28: return "CHANNELMSG_PAUSE_RESPONSE"
        case 29: return "CHANNELMSG_RESUME"
        default: return "CHANNELMSG_\(rawValue)"
        }
    }
}

/// Who sends a control message.
public enum ChannelMessageDirection: Sendable, Hashable, CustomStringConvertible {
    /// Child partition (VMBus client, VSC side) to parent (server, VSP side).
    case guestToHost
    /// Parent to child.
    case hostToGuest

    public var description: String { self == .guestToHost ? "guest-to-host" : "host-to-guest" }
}

extension ChannelMessageType {
    /// The row of ``ChannelMessage/table`` for this type, `nil` for INVALID and unknown types.
    public var tableEntry: ChannelMessage.TableEntry? { ChannelMessage.entry(for: self) }

    /// Whether this is a message type the table knows (1...29).
    public var isKnown: Bool { tableEntry != nil }

    /// Who sends this message; `nil` for unknown types.
    public var direction: ChannelMessageDirection? { tableEntry?.direction }

    /// The oldest negotiated version at which the message may be sent (PROTOCOL.md §2.9). INITIATE_CONTACT
    /// and VERSION_RESPONSE report 0.13 but are also valid before any negotiation (``allowedBeforeNegotiation``).
    /// INVALID and unknown types report ``VMBusVersion/never``, which no negotiated version reaches.
    public var minimumVersion: VMBusVersion { tableEntry?.minimumVersion ?? .never }

    /// The 6.0 feature that must have been negotiated (MODIFY_CONNECTION, PAUSE/RESUME), if any.
    public var requiredFeature: VMBusFeatureFlags? { tableEntry?.requiredFeature }

    /// The shortest message of this type `ChannelMessage.parse` accepts, header included.
    public var minimumLength: Int? { tableEntry?.minimumLength }

    /// INITIATE_CONTACT and VERSION_RESPONSE: the handshake itself, valid with no version negotiated.
    public var allowedBeforeNegotiation: Bool { self == .initiateContact || self == .versionResponse }

    /// Checks that a message of this type may arrive from `sender` on a connection that negotiated `version`
    /// (`nil`: not connected yet) with `features`.
    public func checkAllowed(
        from sender: ChannelMessageDirection, version: VMBusVersion?, features: VMBusFeatureFlags = []
    ) throws(ChannelMessageError) {
        guard let entry = tableEntry else { throw .unknownType(rawValue) }
        guard entry.direction == sender else { throw .wrongDirection(self, sender) }
        guard let version else {
            if allowedBeforeNegotiation { return }
            throw .notNegotiated(self)
        }
        if allowedBeforeNegotiation { return }
        guard version >= entry.minimumVersion else { throw .unsupportedVersion(self, version) }
        if let feature = entry.requiredFeature, !features.contains(feature) {
            throw .featureNotNegotiated(self, feature)
        }
    }
}
