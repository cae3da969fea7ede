/// `enum vstor_packet_operation`: what a VSTOR packet asks or answers. Open, so an unknown operation a peer
/// sends survives into the error that answers it.
public struct VStorOperation: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `VSTOR_OPERATION_COMPLETE_IO`: every completion the host sends carries it.
    public static let completeIO = Self(rawValue: 1)
    /// `VSTOR_OPERATION_REMOVE_DEVICE`: host → guest, a LUN went away.
    public static let removeDevice = Self(rawValue: 2)
    /// `VSTOR_OPERATION_EXECUTE_SRB`: a SCSI command.
    public static let executeSRB = Self(rawValue: 3)
    /// `VSTOR_OPERATION_RESET_LUN`
    public static let resetLUN = Self(rawValue: 4)
    /// `VSTOR_OPERATION_RESET_ADAPTER`
    public static let resetAdapter = Self(rawValue: 5)
    /// `VSTOR_OPERATION_RESET_BUS`: Linux sends it from its host-reset error handler.
    public static let resetBus = Self(rawValue: 6)
    /// `VSTOR_OPERATION_BEGIN_INITIALIZATION`
    public static let beginInitialization = Self(rawValue: 7)
    /// `VSTOR_OPERATION_END_INITIALIZATION`
    public static let endInitialization = Self(rawValue: 8)
    /// `VSTOR_OPERATION_QUERY_PROTOCOL_VERSION`
    public static let queryProtocolVersion = Self(rawValue: 9)
    /// `VSTOR_OPERATION_QUERY_PROPERTIES`
    public static let queryProperties = Self(rawValue: 10)
    /// `VSTOR_OPERATION_ENUMERATE_BUS`: host → guest, the LUN set changed (rescan).
    public static let enumerateBus = Self(rawValue: 11)
    /// `VSTOR_OPERATION_FCHBA_DATA`: Fibre Channel WWNs.
    public static let fcHBAData = Self(rawValue: 12)
    /// `VSTOR_OPERATION_CREATE_SUB_CHANNELS`
    public static let createSubChannels = Self(rawValue: 13)
    /// 14: defined by OpenVMM (`EVENT_NOTIFICATION`), not by Linux, which ignores operations it does not know.
    public static let eventNotification = Self(rawValue: 14)

    /// `VSTOR_OPERATION_MAXIMUM`
    public static let maximum = Self(rawValue: 14)

    public var description: String {
        switch self {
        case .completeIO: return "COMPLETE_IO"
        case .removeDevice: return "REMOVE_DEVICE"
        case .executeSRB: return "EXECUTE_SRB"
        case .resetLUN: return "RESET_LUN"
        case .resetAdapter: return "RESET_ADAPTER"
        case .resetBus: return "RESET_BUS"
        case .beginInitialization: return "BEGIN_INITIALIZATION"
        case .endInitialization: return "END_INITIALIZATION"
        case .queryProtocolVersion: return "QUERY_PROTOCOL_VERSION"
        case .queryProperties: return "QUERY_PROPERTIES"
        case .enumerateBus: return "ENUMERATE_BUS"
        case .fcHBAData: return "FCHBA_DATA"
        case .createSubChannels: return "CREATE_SUB_CHANNELS"
        case .eventNotification: return "EVENT_NOTIFICATION"
        default: return "operation \(rawValue)"
        }
    }
}
