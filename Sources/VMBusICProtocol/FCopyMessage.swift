import VMBusWire

/// A file-copy message after dispatch on `hv_fcopy_hdr.operation`: the ICMSGTYPE_FCOPY body, its struct
/// chosen by the operation and decoded with that struct's checks.
public enum FCopyMessage: Equatable, Sendable {
    /// `START_FILE_COPY`
    case startFileCopy(FCopyStart)
    /// `WRITE_TO_FILE`
    case writeToFile(FCopyData)
    /// `COMPLETE_FCOPY`: the file is whole.
    case completeFCopy(FCopyHeader)
    /// `CANCEL_FCOPY`: the host gave up; the guest removes what it wrote.
    case cancelFCopy(FCopyHeader)

    /// Decodes a body. A body too short for its operation's struct is `.truncated`; an operation outside
    /// `enum hv_fcopy_op` is ``WireError/invalidValue(field:value:)`` (the daemon answers it with HV_E_FAIL).
    public init(body: [UInt8]) throws(WireError) {
        var r = WireReader(body)
        let operation = FCopyOperation(rawValue: try r.peekUInt32())
        switch operation {
        case .startFileCopy: self = .startFileCopy(try FCopyStart(from: &r))
        case .writeToFile: self = .writeToFile(try FCopyData(from: &r))
        case .completeFCopy: self = .completeFCopy(try FCopyHeader(from: &r))
        case .cancelFCopy: self = .cancelFCopy(try FCopyHeader(from: &r))
        default: throw .invalidValue(field: "hv_fcopy_hdr.operation", value: UInt64(operation.rawValue))
        }
    }

    /// The header every file-copy message starts with.
    public var header: FCopyHeader {
        switch self {
        case .startFileCopy(let m): return m.hdr
        case .writeToFile(let m): return m.hdr
        case .completeFCopy(let h), .cancelFCopy(let h): return h
        }
    }

    /// The body bytes: the whole C struct of the operation.
    public var wireBytes: [UInt8] {
        switch self {
        case .startFileCopy(let m): return m.wireBytes
        case .writeToFile(let m): return m.wireBytes
        case .completeFCopy(let h), .cancelFCopy(let h): return h.wireBytes
        }
    }
}
