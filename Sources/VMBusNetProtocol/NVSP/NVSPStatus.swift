/// The status word of NVSP completions (the anonymous `NVSP_STAT_*` enum of `hyperv_net.h`). Linux treats
/// anything but SUCCESS as failure; OpenVMM refuses an INIT with NONE (0).
public struct NVSPStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `NVSP_STAT_NONE`
    public static let none = Self(rawValue: 0)
    /// `NVSP_STAT_SUCCESS`
    public static let success = Self(rawValue: 1)
    /// `NVSP_STAT_FAIL`
    public static let fail = Self(rawValue: 2)
    /// `NVSP_STAT_PROTOCOL_TOO_NEW`
    public static let protocolTooNew = Self(rawValue: 3)
    /// `NVSP_STAT_PROTOCOL_TOO_OLD`
    public static let protocolTooOld = Self(rawValue: 4)
    /// `NVSP_STAT_INVALID_RNDIS_PKT`
    public static let invalidRNDISPacket = Self(rawValue: 5)
    /// `NVSP_STAT_BUSY`
    public static let busy = Self(rawValue: 6)
    /// `NVSP_STAT_PROTOCOL_UNSUPPORTED`
    public static let protocolUnsupported = Self(rawValue: 7)
    /// `NVSP_STAT_MAX`
    public static let max = Self(rawValue: 8)

    public var description: String {
        switch self {
        case .none: return "NONE"
        case .success: return "SUCCESS"
        case .fail: return "FAIL"
        case .protocolTooNew: return "PROTOCOL_TOO_NEW"
        case .protocolTooOld: return "PROTOCOL_TOO_OLD"
        case .invalidRNDISPacket: return "INVALID_RNDIS_PKT"
        case .busy: return "BUSY"
        case .protocolUnsupported: return "PROTOCOL_UNSUPPORTED"
        default: return "status \(rawValue)"
        }
    }
}
