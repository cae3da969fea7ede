import VMBusWire

/// `struct vmscsi_request`: the SRB a VSTOR EXECUTE_SRB packet carries at offset 12, and the completion the
/// host returns in the same place. 52 bytes from protocol 5.1 (Win8) on, 36 before (no Win8 extension).
///
/// The CDB (request) and the sense data (completion) share bytes 16–35 (`union { cdb[16]; sense_data[20]; }`),
/// so both live in ``dataArea``. Fixed-size storage: encoding and decoding never allocate.
public struct VMSCSIRequest: Equatable, Sendable {
    public static let cName = "vmscsi_request"
    /// `sizeof(struct vmscsi_request)`
    public static let wireSize = 52
    /// The Win8 extension (`reserve` … `queue_sort_ey`) that pre-5.1 protocols leave out: Linux's
    /// `vmscsi_size_delta`.
    public static let win8ExtensionSize = 16
    /// `STORVSC_MAX_CMD_LEN`
    public static let maxCDBLength = 16
    /// `STORVSC_SENSE_BUFFER_SIZE`
    public static let senseBufferSize = 20
    /// Offset of the CDB / sense union.
    public static let dataAreaOffset = 16

    /// `SRB_FLAGS_QUEUE_ACTION_ENABLE`
    public static let flagQueueActionEnable: UInt32 = 0x2
    /// `SRB_FLAGS_DISABLE_SYNCH_TRANSFER`
    public static let flagDisableSynchTransfer: UInt32 = 0x8
    /// `SRB_FLAGS_DATA_IN`
    public static let flagDataIn: UInt32 = 0x40
    /// `SRB_FLAGS_DATA_OUT`
    public static let flagDataOut: UInt32 = 0x80
    /// `SRB_FLAGS_NO_QUEUE_FREEZE`
    public static let flagNoQueueFreeze: UInt32 = 0x100
    /// `SP_UNTAGGED`
    public static let untagged: UInt8 = 0xFF
    /// `SRB_SIMPLE_TAG_REQUEST`
    public static let simpleTagRequest: UInt8 = 0x20

    /// `data_in`: which way data moves (Linux's `WRITE_TYPE`, `READ_TYPE`, `UNKNOWN_TYPE`).
    public enum DataDirection: UInt8, Sendable {
        /// To the device.
        case write = 0
        /// From the device.
        case read = 1
        /// No data.
        case none = 2
    }

    /// `length`: Linux puts `sizeof(struct vmscsi_request)` here.
    public var length: UInt16 = UInt16(VMSCSIRequest.wireSize)
    public var srbStatus: SRBStatus = .pending
    /// SAM status (`scsi_status`).
    public var scsiStatus: UInt8 = 0
    public var portNumber: UInt8 = 0
    public var pathID: UInt8 = 0
    public var targetID: UInt8 = 0
    public var lun: UInt8 = 0
    public var cdbLength: UInt8 = 0
    /// Request: the guest's sense buffer size. Completion: the valid sense bytes.
    public var senseInfoLength: UInt8 = 0
    /// `data_in`, raw: a hostile guest may send any byte, see ``dataDirection``.
    public var dataIn: UInt8 = DataDirection.none.rawValue
    public var reserved: UInt8 = 0
    /// Request: the buffer length. Completion: the bytes moved.
    public var dataTransferLength: UInt32 = 0
    /// Bytes 16–35: the CDB (first `cdbLength` bytes) or the sense data.
    public var dataArea: InlineArray<20, UInt8> = .init(repeating: 0)
    // The Win8 extension.
    public var reserve: UInt16 = 0
    public var queueTag: UInt8 = 0
    public var queueAction: UInt8 = 0
    public var srbFlags: UInt32 = 0
    /// Seconds.
    public var timeOutValue: UInt32 = 0
    /// `queue_sort_ey` (sic, in Linux).
    public var queueSortKey: UInt32 = 0

    public init() {}

    public var dataDirection: DataDirection? { DataDirection(rawValue: dataIn) }

    /// The CDB byte `i` (0..<16).
    public func cdb(_ i: Int) -> UInt8 { dataArea[i] }

    /// Stores `cdb` (at most 16 bytes) and its length.
    public mutating func setCDB(_ cdb: some Collection<UInt8>) {
        var i = 0
        for b in cdb.prefix(Self.maxCDBLength) { dataArea[i] = b; i += 1 }
        while i < Self.senseBufferSize { dataArea[i] = 0; i += 1 }
        cdbLength = UInt8(min(cdb.count, Self.maxCDBLength))
    }

    /// Decodes `size` bytes (52, or 36 for pre-Win8 protocols; fewer bytes present read as zero, as the host
    /// rule "read `min(payload, 52)`" asks).
    public init(from r: inout WireReader, size: Int = VMSCSIRequest.wireSize) throws(WireError) {
        let available = min(size, r.remaining)
        var raw = InlineArray<52, UInt8>(repeating: 0)
        for i in 0..<available { raw[i] = try r.readUInt8() }
        self.init(raw: raw)
    }

    init(raw b: InlineArray<52, UInt8>) {
        func u16(_ o: Int) -> UInt16 { UInt16(b[o]) | UInt16(b[o + 1]) << 8 }
        func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) | UInt32(u16(o + 2)) << 16 }
        length = u16(0)
        srbStatus = SRBStatus(rawValue: b[2])
        scsiStatus = b[3]
        portNumber = b[4]
        pathID = b[5]
        targetID = b[6]
        lun = b[7]
        cdbLength = b[8]
        senseInfoLength = b[9]
        dataIn = b[10]
        reserved = b[11]
        dataTransferLength = u32(12)
        for i in 0..<20 { dataArea[i] = b[16 + i] }
        reserve = u16(36)
        queueTag = b[38]
        queueAction = b[39]
        srbFlags = u32(40)
        timeOutValue = u32(44)
        queueSortKey = u32(48)
    }

    /// The 52 bytes as laid out on the wire.
    public var raw: InlineArray<52, UInt8> {
        var b = InlineArray<52, UInt8>(repeating: 0)
        func p16(_ v: UInt16, _ o: Int) {
            b[o] = UInt8(truncatingIfNeeded: v)
            b[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
        }
        func p32(_ v: UInt32, _ o: Int) {
            p16(UInt16(truncatingIfNeeded: v), o)
            p16(UInt16(truncatingIfNeeded: v >> 16), o + 2)
        }
        p16(length, 0)
        b[2] = srbStatus.rawValue
        b[3] = scsiStatus
        b[4] = portNumber
        b[5] = pathID
        b[6] = targetID
        b[7] = lun
        b[8] = cdbLength
        b[9] = senseInfoLength
        b[10] = dataIn
        b[11] = reserved
        p32(dataTransferLength, 12)
        for i in 0..<20 { b[16 + i] = dataArea[i] }
        p16(reserve, 36)
        b[38] = queueTag
        b[39] = queueAction
        p32(srbFlags, 40)
        p32(timeOutValue, 44)
        p32(queueSortKey, 48)
        return b
    }

    /// Encodes the first `size` bytes (52, or 36 before Win8).
    public func encode(into w: inout WireWriter, size: Int = VMSCSIRequest.wireSize) {
        let b = raw
        for i in 0..<min(size, Self.wireSize) { w.writeUInt8(b[i]) }
    }

    public static func == (a: Self, b: Self) -> Bool {
        guard a.length == b.length, a.srbStatus == b.srbStatus, a.scsiStatus == b.scsiStatus,
              a.portNumber == b.portNumber, a.pathID == b.pathID, a.targetID == b.targetID, a.lun == b.lun,
              a.cdbLength == b.cdbLength, a.senseInfoLength == b.senseInfoLength, a.dataIn == b.dataIn,
              a.reserved == b.reserved, a.dataTransferLength == b.dataTransferLength, a.reserve == b.reserve,
              a.queueTag == b.queueTag, a.queueAction == b.queueAction, a.srbFlags == b.srbFlags,
              a.timeOutValue == b.timeOutValue, a.queueSortKey == b.queueSortKey else { return false }
        for i in 0..<20 where a.dataArea[i] != b.dataArea[i] { return false }
        return true
    }
}
