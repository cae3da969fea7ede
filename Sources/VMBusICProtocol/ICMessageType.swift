/// `ICMSGTYPE_*`: what an IC message carries (`icmsg_hdr.icmsgtype`). Open: a peer's unknown type survives
/// into the HV_E_FAIL answer Linux gives it.
public struct ICMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `ICMSGTYPE_NEGOTIATE`: every service starts with it.
    public static let negotiate = Self(rawValue: 0)
    /// `ICMSGTYPE_HEARTBEAT`
    public static let heartbeat = Self(rawValue: 1)
    /// `ICMSGTYPE_KVPEXCHANGE`
    public static let kvpExchange = Self(rawValue: 2)
    /// `ICMSGTYPE_SHUTDOWN`
    public static let shutdown = Self(rawValue: 3)
    /// `ICMSGTYPE_TIMESYNC`
    public static let timeSync = Self(rawValue: 4)
    /// `ICMSGTYPE_VSS`
    public static let vss = Self(rawValue: 5)
    /// `ICMSGTYPE_FCOPY` (6 is OpenVMM's `RDV`, which Linux does not define).
    public static let fcopy = Self(rawValue: 7)

    public var description: String {
        switch self {
        case .negotiate: return "ICMSGTYPE_NEGOTIATE"
        case .heartbeat: return "ICMSGTYPE_HEARTBEAT"
        case .kvpExchange: return "ICMSGTYPE_KVPEXCHANGE"
        case .shutdown: return "ICMSGTYPE_SHUTDOWN"
        case .timeSync: return "ICMSGTYPE_TIMESYNC"
        case .vss: return "ICMSGTYPE_VSS"
        case .fcopy: return "ICMSGTYPE_FCOPY"
        default: return "IC message type \(rawValue)"
        }
    }
}
