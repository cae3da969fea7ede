/// `SRB_STATUS_*`: how the port driver (the host) finished a request. Bits 0–5 are the code; bit 6
/// (`SRB_STATUS_QUEUE_FROZEN`) and bit 7 (`SRB_STATUS_AUTOSENSE_VALID`) are flags.
public struct SRBStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    public static let pending = Self(rawValue: 0x00)
    /// `SRB_STATUS_SUCCESS`
    public static let success = Self(rawValue: 0x01)
    /// `SRB_STATUS_ABORTED`
    public static let aborted = Self(rawValue: 0x02)
    /// `SRB_STATUS_ERROR`: the SCSI status (and sense, if autosense is valid) says what.
    public static let error = Self(rawValue: 0x04)
    /// `SRB_STATUS_BUSY`
    public static let busy = Self(rawValue: 0x05)
    /// `SRB_STATUS_INVALID_REQUEST`
    public static let invalidRequest = Self(rawValue: 0x06)
    /// `SRB_STATUS_NO_DEVICE`
    public static let noDevice = Self(rawValue: 0x08)
    /// `SRB_STATUS_TIMEOUT`
    public static let timeout = Self(rawValue: 0x09)
    /// `SRB_STATUS_SELECTION_TIMEOUT`
    public static let selectionTimeout = Self(rawValue: 0x0A)
    /// `SRB_STATUS_BUS_RESET`
    public static let busReset = Self(rawValue: 0x0E)
    /// `SRB_STATUS_DATA_OVERRUN`: also used for underruns; the transfer length says how much moved.
    public static let dataOverrun = Self(rawValue: 0x12)
    /// `SRB_STATUS_REQUEST_FLUSHED`
    public static let requestFlushed = Self(rawValue: 0x16)
    /// `SRB_STATUS_INVALID_LUN`: Linux removes the LUN.
    public static let invalidLUN = Self(rawValue: 0x20)
    /// `SRB_STATUS_INVALID_TARGET_ID`
    public static let invalidTargetID = Self(rawValue: 0x21)
    /// `SRB_STATUS_INTERNAL_ERROR`
    public static let internalError = Self(rawValue: 0x30)

    /// `SRB_STATUS_QUEUE_FROZEN`
    public static let queueFrozenFlag: UInt8 = 0x40
    /// `SRB_STATUS_AUTOSENSE_VALID`: sense bytes follow. Never set on SUCCESS: Linux compares the whole byte
    /// with SUCCESS and would treat 0x81 as a failure.
    public static let autosenseValidFlag: UInt8 = 0x80

    /// The code without the flag bits.
    public var code: SRBStatus { SRBStatus(rawValue: rawValue & 0x3F) }
    public var autosenseValid: Bool { rawValue & Self.autosenseValidFlag != 0 }
    public func withAutosense() -> SRBStatus { SRBStatus(rawValue: rawValue | Self.autosenseValidFlag) }

    /// The NTSTATUS Hyper-V puts in the packet's `status` for this SRB status (OpenVMM's mapping).
    public var ntStatus: NTStatus {
        switch code {
        case .success: return .success
        case .invalidLUN, .noDevice: return .deviceDoesNotExist
        case .busy: return .deviceBusy
        case .dataOverrun: return .bufferOverflow
        default: return .ioDeviceError
        }
    }

    public var description: String {
        let name: String
        switch code {
        case .pending: name = "PENDING"
        case .success: name = "SUCCESS"
        case .aborted: name = "ABORTED"
        case .error: name = "ERROR"
        case .busy: name = "BUSY"
        case .invalidRequest: name = "INVALID_REQUEST"
        case .noDevice: name = "NO_DEVICE"
        case .timeout: name = "TIMEOUT"
        case .selectionTimeout: name = "SELECTION_TIMEOUT"
        case .busReset: name = "BUS_RESET"
        case .dataOverrun: name = "DATA_OVERRUN"
        case .requestFlushed: name = "REQUEST_FLUSHED"
        case .invalidLUN: name = "INVALID_LUN"
        case .invalidTargetID: name = "INVALID_TARGET_ID"
        case .internalError: name = "INTERNAL_ERROR"
        default: name = "0x" + String(code.rawValue, radix: 16)
        }
        return autosenseValid ? name + "+AUTOSENSE_VALID" : name
    }
}

/// The NTSTATUS values a storage VSP puts in `vstor_packet.status`. Open.
public struct NTStatus: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `STATUS_SUCCESS`
    public static let success = Self(rawValue: 0)
    /// `STATUS_BUFFER_OVERFLOW` (a warning: data moved, not all of it)
    public static let bufferOverflow = Self(rawValue: 0x8000_0005)
    /// `STATUS_DEVICE_BUSY`
    public static let deviceBusy = Self(rawValue: 0x8000_0011)
    /// `STATUS_UNSUCCESSFUL`
    public static let unsuccessful = Self(rawValue: 0xC000_0001)
    /// `STATUS_INVALID_PARAMETER`
    public static let invalidParameter = Self(rawValue: 0xC000_000D)
    /// `STATUS_INVALID_DEVICE_REQUEST`: an operation this VSP does not serve, or not in this state.
    public static let invalidDeviceRequest = Self(rawValue: 0xC000_0010)
    /// `STATUS_REVISION_MISMATCH`: the answer to a QUERY_PROTOCOL_VERSION the host does not speak.
    public static let revisionMismatch = Self(rawValue: 0xC000_0059)
    /// `STATUS_DEVICE_DOES_NOT_EXIST`
    public static let deviceDoesNotExist = Self(rawValue: 0xC000_00C0)
    /// `STATUS_IO_DEVICE_ERROR`
    public static let ioDeviceError = Self(rawValue: 0xC000_0185)

    public var isSuccess: Bool { rawValue == 0 }
    public var description: String { "0x" + String(rawValue, radix: 16, uppercase: true) }
}
