/// `ndis_msg_type`, the first word of every RNDIS message (`RNDIS_MSG_*` in Linux's
/// `include/linux/rndis.h`). A completion is its request's number with `RNDIS_MSG_COMPLETION` set. Open:
/// the CoNDIS (`REMOTE_CONDIS_*`) and bus messages exist too.
public struct RNDISMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `RNDIS_MSG_COMPLETION`: the bit that marks a completion.
    public static let completionFlag: UInt32 = 0x8000_0000

    /// `RNDIS_MSG_PACKET`
    public static let packet = Self(rawValue: 0x0000_0001)
    /// `RNDIS_MSG_INIT`
    public static let initialize = Self(rawValue: 0x0000_0002)
    /// `RNDIS_MSG_INIT_C`
    public static let initializeComplete = Self(rawValue: 0x8000_0002)
    /// `RNDIS_MSG_HALT`: no completion.
    public static let halt = Self(rawValue: 0x0000_0003)
    /// `RNDIS_MSG_QUERY`
    public static let query = Self(rawValue: 0x0000_0004)
    /// `RNDIS_MSG_QUERY_C`
    public static let queryComplete = Self(rawValue: 0x8000_0004)
    /// `RNDIS_MSG_SET`
    public static let set = Self(rawValue: 0x0000_0005)
    /// `RNDIS_MSG_SET_C`
    public static let setComplete = Self(rawValue: 0x8000_0005)
    /// `RNDIS_MSG_RESET`
    public static let reset = Self(rawValue: 0x0000_0006)
    /// `RNDIS_MSG_RESET_C`
    public static let resetComplete = Self(rawValue: 0x8000_0006)
    /// `RNDIS_MSG_INDICATE`: device → host, unsolicited.
    public static let indicateStatus = Self(rawValue: 0x0000_0007)
    /// `RNDIS_MSG_KEEPALIVE`
    public static let keepalive = Self(rawValue: 0x0000_0008)
    /// `RNDIS_MSG_KEEPALIVE_C`
    public static let keepaliveComplete = Self(rawValue: 0x8000_0008)
    /// `RNDIS_MSG_BUS`
    public static let bus = Self(rawValue: 0xFF00_0001)

    public var isCompletion: Bool { rawValue & Self.completionFlag != 0 }

    public var description: String {
        switch self {
        case .packet: return "PACKET"
        case .initialize: return "INIT"
        case .initializeComplete: return "INIT_C"
        case .halt: return "HALT"
        case .query: return "QUERY"
        case .queryComplete: return "QUERY_C"
        case .set: return "SET"
        case .setComplete: return "SET_C"
        case .reset: return "RESET"
        case .resetComplete: return "RESET_C"
        case .indicateStatus: return "INDICATE"
        case .keepalive: return "KEEPALIVE"
        case .keepaliveComplete: return "KEEPALIVE_C"
        default: return "RNDIS message 0x\(String(rawValue, radix: 16))"
        }
    }
}
