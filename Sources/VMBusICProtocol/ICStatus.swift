/// The HRESULT-style status codes of include/uapi/linux/hyperv.h: `icmsg_hdr.status` on VMBus, and the
/// `error` member the KVP, VSS and file-copy daemons write back through the character devices. Open.
public struct ICStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `HV_S_OK`
    public static let ok = Self(rawValue: 0)
    /// `HV_E_FAIL`: Linux's answer to unknown message types and invalid requests.
    public static let fail = Self(rawValue: 0x8000_4005)
    /// `HV_S_CONT`: KVP enumeration past the last key ("no more items"), though not a success code.
    public static let cont = Self(rawValue: 0x8007_0103)
    /// `HV_ERROR_NOT_SUPPORTED`
    public static let errorNotSupported = Self(rawValue: 0x8007_0032)
    /// `HV_ERROR_MACHINE_LOCKED`
    public static let errorMachineLocked = Self(rawValue: 0x8007_04F7)
    /// `HV_ERROR_DEVICE_NOT_CONNECTED`
    public static let errorDeviceNotConnected = Self(rawValue: 0x8007_048F)
    /// `HV_INVALIDARG`
    public static let invalidArg = Self(rawValue: 0x8007_0057)
    /// `HV_GUID_NOTFOUND`: a KVP key that is not in the pool.
    public static let guidNotFound = Self(rawValue: 0x8004_1002)
    /// `HV_ERROR_ALREADY_EXISTS`: file copy without OVER_WRITE onto an existing file.
    public static let errorAlreadyExists = Self(rawValue: 0x8007_0050)
    /// `HV_ERROR_DISK_FULL`
    public static let errorDiskFull = Self(rawValue: 0x8007_0070)

    public var description: String {
        switch self {
        case .ok: return "HV_S_OK"
        case .fail: return "HV_E_FAIL"
        case .cont: return "HV_S_CONT"
        case .errorNotSupported: return "HV_ERROR_NOT_SUPPORTED"
        case .errorMachineLocked: return "HV_ERROR_MACHINE_LOCKED"
        case .errorDeviceNotConnected: return "HV_ERROR_DEVICE_NOT_CONNECTED"
        case .invalidArg: return "HV_INVALIDARG"
        case .guidNotFound: return "HV_GUID_NOTFOUND"
        case .errorAlreadyExists: return "HV_ERROR_ALREADY_EXISTS"
        case .errorDiskFull: return "HV_ERROR_DISK_FULL"
        default: return "IC status 0x\(String(rawValue, radix: 16))"
        }
    }
}
