/// `HV_STATUS_*`: a hypercall result code (the low 16 bits of the hypercall return value). Open.
public struct HvStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `HV_STATUS_SUCCESS`
    public static let success = Self(rawValue: 0)
    /// `HV_STATUS_INVALID_HYPERCALL_CODE`
    public static let invalidHypercallCode = Self(rawValue: 2)
    /// `HV_STATUS_INVALID_HYPERCALL_INPUT`
    public static let invalidHypercallInput = Self(rawValue: 3)
    /// `HV_STATUS_INVALID_ALIGNMENT`
    public static let invalidAlignment = Self(rawValue: 4)
    /// `HV_STATUS_INVALID_PARAMETER`
    public static let invalidParameter = Self(rawValue: 5)
    /// `HV_STATUS_ACCESS_DENIED`
    public static let accessDenied = Self(rawValue: 6)
    /// `HV_STATUS_OPERATION_DENIED`
    public static let operationDenied = Self(rawValue: 8)
    /// `HV_STATUS_INSUFFICIENT_MEMORY`: transient for HvPostMessage, retry with back-off.
    public static let insufficientMemory = Self(rawValue: 11)
    /// `HV_STATUS_INVALID_PORT_ID`
    public static let invalidPortID = Self(rawValue: 17)
    /// `HV_STATUS_INVALID_CONNECTION_ID`: for INITIATE_CONTACT, try the next connection id.
    public static let invalidConnectionID = Self(rawValue: 18)
    /// `HV_STATUS_INSUFFICIENT_BUFFERS`: transient for HvPostMessage, retry with back-off.
    public static let insufficientBuffers = Self(rawValue: 19)
    /// `HV_STATUS_TIME_OUT`
    public static let timeOut = Self(rawValue: 120)
    /// `HV_STATUS_VTL_ALREADY_ENABLED`
    public static let vtlAlreadyEnabled = Self(rawValue: 134)

    /// Whether Linux's `vmbus_post_msg` retries the post (insufficient memory or buffers).
    public var isTransient: Bool { self == .insufficientMemory || self == .insufficientBuffers }

    public var description: String {
        switch self {
        case .success: return "HV_STATUS_SUCCESS"
        case .invalidHypercallCode: return "HV_STATUS_INVALID_HYPERCALL_CODE"
        case .invalidHypercallInput: return "HV_STATUS_INVALID_HYPERCALL_INPUT"
        case .invalidAlignment: return "HV_STATUS_INVALID_ALIGNMENT"
        case .invalidParameter: return "HV_STATUS_INVALID_PARAMETER"
        case .accessDenied: return "HV_STATUS_ACCESS_DENIED"
        case .operationDenied: return "HV_STATUS_OPERATION_DENIED"
        case .insufficientMemory: return "HV_STATUS_INSUFFICIENT_MEMORY"
        case .invalidPortID: return "HV_STATUS_INVALID_PORT_ID"
        case .invalidConnectionID: return "HV_STATUS_INVALID_CONNECTION_ID"
        case .insufficientBuffers: return "HV_STATUS_INSUFFICIENT_BUFFERS"
        case .timeOut: return "HV_STATUS_TIME_OUT"
        case .vtlAlreadyEnabled: return "HV_STATUS_VTL_ALREADY_ENABLED"
        default: return "HV_STATUS \(rawValue)"
        }
    }
}
