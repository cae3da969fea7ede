/// SCSI operation codes, named as in Linux's `include/scsi/scsi_proto.h`.
public enum SCSIOpcode {
    public static let TEST_UNIT_READY: UInt8 = 0x00
    public static let REQUEST_SENSE: UInt8 = 0x03
    public static let READ_6: UInt8 = 0x08
    public static let WRITE_6: UInt8 = 0x0A
    public static let INQUIRY: UInt8 = 0x12
    public static let MODE_SENSE: UInt8 = 0x1A
    public static let START_STOP: UInt8 = 0x1B
    public static let READ_CAPACITY: UInt8 = 0x25
    public static let READ_10: UInt8 = 0x28
    public static let WRITE_10: UInt8 = 0x2A
    public static let SYNCHRONIZE_CACHE: UInt8 = 0x35
    public static let WRITE_SAME: UInt8 = 0x41
    public static let UNMAP: UInt8 = 0x42
    public static let MODE_SENSE_10: UInt8 = 0x5A
    public static let READ_16: UInt8 = 0x88
    public static let WRITE_16: UInt8 = 0x8A
    public static let SYNCHRONIZE_CACHE_16: UInt8 = 0x91
    public static let WRITE_SAME_16: UInt8 = 0x93
    public static let SERVICE_ACTION_IN_16: UInt8 = 0x9E
    /// Service action of SERVICE ACTION IN (16).
    public static let SAI_READ_CAPACITY_16: UInt8 = 0x10
    public static let REPORT_LUNS: UInt8 = 0xA0
    public static let READ_12: UInt8 = 0xA8
    public static let WRITE_12: UInt8 = 0xAA

    /// The CDB length the opcode's group code implies (SAM), or nil for vendor-specific groups.
    public static func cdbLength(of opcode: UInt8) -> Int? {
        switch opcode >> 5 {
        case 0: return 6
        case 1, 2: return 10
        case 4: return 16
        case 5: return 12
        default: return nil
        }
    }
}

/// SAM status codes (`SAM_STAT_*`).
public enum SAMStatus {
    public static let GOOD: UInt8 = 0x00
    public static let CHECK_CONDITION: UInt8 = 0x02
    public static let BUSY: UInt8 = 0x08
    public static let RESERVATION_CONFLICT: UInt8 = 0x18
    public static let TASK_SET_FULL: UInt8 = 0x28
}

/// Sense keys (SPC), named as Linux's `scsi_proto.h`.
public enum SenseKey {
    public static let NO_SENSE: UInt8 = 0x0
    public static let RECOVERED_ERROR: UInt8 = 0x1
    public static let NOT_READY: UInt8 = 0x2
    public static let MEDIUM_ERROR: UInt8 = 0x3
    public static let HARDWARE_ERROR: UInt8 = 0x4
    public static let ILLEGAL_REQUEST: UInt8 = 0x5
    public static let UNIT_ATTENTION: UInt8 = 0x6
    public static let DATA_PROTECT: UInt8 = 0x7
    public static let ABORTED_COMMAND: UInt8 = 0xB
}

/// Additional sense code and qualifier pairs the target reports.
public struct AdditionalSense: Equatable, Sendable {
    public var asc: UInt8
    public var ascq: UInt8
    public init(_ asc: UInt8, _ ascq: UInt8) { self.asc = asc; self.ascq = ascq }

    public static let none = Self(0x00, 0x00)
    /// LOGICAL UNIT COMMUNICATION FAILURE: the storage behind the disk cannot be reached.
    public static let logicalUnitCommunicationFailure = Self(0x08, 0x00)
    public static let writeError = Self(0x0C, 0x00)
    public static let unrecoveredReadError = Self(0x11, 0x00)
    public static let parameterListLengthError = Self(0x1A, 0x00)
    public static let invalidCommandOperationCode = Self(0x20, 0x00)
    public static let lbaOutOfRange = Self(0x21, 0x00)
    public static let invalidFieldInCDB = Self(0x24, 0x00)
    public static let logicalUnitNotSupported = Self(0x25, 0x00)
    public static let invalidFieldInParameterList = Self(0x26, 0x00)
    public static let writeProtected = Self(0x27, 0x00)
    public static let powerOnOrReset = Self(0x29, 0x00)
    public static let capacityDataChanged = Self(0x2A, 0x09)
    public static let savingParametersNotSupported = Self(0x39, 0x00)
    public static let reportedLUNsDataChanged = Self(0x3F, 0x0E)
    public static let internalTargetFailure = Self(0x44, 0x00)
}
