/// `enum hv_fcopy_op`: `hv_fcopy_hdr.operation`. Open.
public struct FCopyOperation: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `START_FILE_COPY`: ``FCopyStart``.
    public static let startFileCopy = Self(rawValue: 0)
    /// `WRITE_TO_FILE`: ``FCopyData``.
    public static let writeToFile = Self(rawValue: 1)
    /// `COMPLETE_FCOPY`: a bare ``FCopyHeader``.
    public static let completeFCopy = Self(rawValue: 2)
    /// `CANCEL_FCOPY`: a bare ``FCopyHeader``.
    public static let cancelFCopy = Self(rawValue: 3)

    public var description: String {
        switch self {
        case .startFileCopy: return "START_FILE_COPY"
        case .writeToFile: return "WRITE_TO_FILE"
        case .completeFCopy: return "COMPLETE_FCOPY"
        case .cancelFCopy: return "CANCEL_FCOPY"
        default: return "fcopy operation \(rawValue)"
        }
    }
}

/// `hv_start_fcopy.copy_flags`.
public struct FCopyFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `OVER_WRITE`: replace an existing file (else HV_ERROR_ALREADY_EXISTS).
    public static let overWrite = Self(rawValue: 0x1)
    /// `CREATE_PATH`: create missing directories (else HV_E_FAIL when the directory is missing).
    public static let createPath = Self(rawValue: 0x2)
}
