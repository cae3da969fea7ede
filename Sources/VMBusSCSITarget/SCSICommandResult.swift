import VMBusSCSI

/// How a command ended: SAM status, sense for CHECK CONDITION, and the data bytes moved.
public struct SCSICommandResult: Equatable, Sendable {
    public var status: UInt8
    public var sense: FixedSenseData?
    public var transferred: Int

    public static func good(_ transferred: Int = 0) -> Self {
        Self(status: SAMStatus.GOOD, sense: nil, transferred: transferred)
    }

    public static func checkCondition(_ key: UInt8, _ additional: AdditionalSense, information: UInt32? = nil) -> Self {
        Self(status: SAMStatus.CHECK_CONDITION, sense: FixedSenseData(key: key, additional, information: information),
             transferred: 0)
    }

    static let invalidOpcode = checkCondition(SenseKey.ILLEGAL_REQUEST, .invalidCommandOperationCode)
    static let invalidField = checkCondition(SenseKey.ILLEGAL_REQUEST, .invalidFieldInCDB)
    static let lbaOutOfRange = checkCondition(SenseKey.ILLEGAL_REQUEST, .lbaOutOfRange)
    static let writeProtected = checkCondition(SenseKey.DATA_PROTECT, .writeProtected)
}

/// What the LUN table answers: a result, or "no such LUN" (which StorVSP reports as SRB_STATUS_INVALID_LUN).
public enum SCSIOutcome: Equatable, Sendable {
    case completed(SCSICommandResult)
    case lunAbsent
}

/// A READ or WRITE that passed its checks: what the backend is asked to move.
public struct SCSIDiskTransfer: Equatable, Sendable {
    public var lba: UInt64
    /// Bytes from the start of the disk.
    public var offset: UInt64
    public var bytes: Int
    public var isWrite: Bool
    public var fua: Bool

    public init(lba: UInt64, offset: UInt64, bytes: Int, isWrite: Bool, fua: Bool) {
        self.lba = lba
        self.offset = offset
        self.bytes = bytes
        self.isWrite = isWrite
        self.fua = fua
    }
}

/// What ``SCSIDisk/prepareTransfer(_:data:dataLength:)`` found.
public enum SCSITransferStart: Equatable, Sendable {
    /// Not a READ or WRITE: run it with ``SCSIDisk/execute(_:data:dataLength:)``.
    case notReadWrite
    /// Answered without the backend (refused, or no blocks to move).
    case completed(SCSICommandResult)
    /// Ready for ``SCSIDisk/start(_:data:completion:)``.
    case transfer(SCSIDiskTransfer)
}

/// Which way a command's data moves.
public enum SCSIDataDirection: Sendable {
    case none
    /// From the device to the initiator (READ, INQUIRY).
    case toInitiator
    /// From the initiator to the device (WRITE, UNMAP's parameter list).
    case toDevice
}
