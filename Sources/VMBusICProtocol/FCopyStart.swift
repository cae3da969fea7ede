import VMBusWire

/// `struct hv_start_fcopy` (1088 bytes): START_FILE_COPY, naming the file, its directory, the flags and the
/// size.
///
/// `file_name` and `path_name` are `__u16[W_MAX_PATH]`. The host writes UTF-16LE; Linux's hv_fcopy.c
/// (Debian 12's 6.1) hands the daemon a copy with UTF-8 in the same arrays, at most 259 bytes and a NUL,
/// the rest zero. Pass the side's ``ICStringEncoding``.
public struct FCopyStart: Equatable, Sendable, WireCodable {
    public static let cName = "hv_start_fcopy"
    public static let wireSize = 1088
    /// `W_MAX_PATH`: elements of each name array.
    public static let maxPath = 260
    static let nameBytes = maxPath * 2

    public var hdr: FCopyHeader
    /// `file_name[260]`, raw.
    public var fileName: [UInt8]
    /// `path_name[260]`, raw.
    public var pathName: [UInt8]
    public var copyFlags: FCopyFlags
    public var fileSize: UInt64

    public init(hdr: FCopyHeader = FCopyHeader(operation: .startFileCopy), fileName: [UInt8] = [],
                pathName: [UInt8] = [], copyFlags: FCopyFlags = [], fileSize: UInt64 = 0) {
        self.hdr = hdr
        self.fileName = fixedField(fileName, Self.nameBytes)
        self.pathName = fixedField(pathName, Self.nameBytes)
        self.copyFlags = copyFlags
        self.fileSize = fileSize
    }

    /// A request with the names in `encoding`; names that do not fit throw.
    public init(fileName name: String, pathName path: String, encoding: ICStringEncoding,
                copyFlags: FCopyFlags, fileSize: UInt64) throws(WireError) {
        self.init(copyFlags: copyFlags, fileSize: fileSize)
        fileName = try Self.encodeName(name, encoding, "file_name")
        pathName = try Self.encodeName(path, encoding, "path_name")
    }

    private static func capacity(_ encoding: ICStringEncoding) -> Int {
        encoding == .utf16LE ? nameBytes : maxPath
    }

    private static func encodeName(_ s: String, _ encoding: ICStringEncoding,
                                   _ field: String) throws(WireError) -> [UInt8] {
        fixedField(try ICString.encode(s, as: encoding, capacity: capacity(encoding), field: field).bytes, nameBytes)
    }

    /// `file_name` up to its NUL. By default a name without a NUL in its 260 elements (or 260 bytes of
    /// UTF-8) throws; `.tolerated` lets the array end it, as Linux does.
    public func fileNameString(encoding: ICStringEncoding,
                               termination: ICStringTermination = .required) throws(WireError) -> String {
        try ICString.decode(Array(fileName.prefix(Self.capacity(encoding))), as: encoding, termination: termination,
                            fieldName: "file_name")
    }

    /// `path_name` up to its NUL, checked as ``fileNameString(encoding:termination:)``.
    public func pathNameString(encoding: ICStringEncoding,
                               termination: ICStringTermination = .required) throws(WireError) -> String {
        try ICString.decode(Array(pathName.prefix(Self.capacity(encoding))), as: encoding, termination: termination,
                            fieldName: "path_name")
    }

    /// The copy Linux hands hv_fcopy_daemon: header operation only, names converted to UTF-8, flags and
    /// size kept, everything else zero.
    public func daemonCopy() throws(WireError) -> FCopyStart {
        var out = FCopyStart(hdr: FCopyHeader(operation: hdr.operation), copyFlags: copyFlags, fileSize: fileSize)
        out.fileName = try Self.utf8Copy(fileNameString(encoding: .utf16LE, termination: .tolerated))
        out.pathName = try Self.utf8Copy(pathNameString(encoding: .utf16LE, termination: .tolerated))
        return out
    }

    /// A name as Linux writes it for the daemon: at most 259 bytes of UTF-8 (whole characters), a NUL, zeros.
    private static func utf8Copy(_ name: String) throws(WireError) -> [UInt8] {
        fixedField(try ICString.encode(name, as: .utf8, capacity: maxPath, overflow: .truncate).bytes, nameBytes)
    }

    public init(from r: inout WireReader) throws(WireError) {
        try r.require(Self.wireSize)
        hdr = try FCopyHeader(from: &r)
        fileName = try r.readBytes(Self.nameBytes)
        pathName = try r.readBytes(Self.nameBytes)
        copyFlags = FCopyFlags(rawValue: try r.readUInt32())
        fileSize = try r.readUInt64()
    }

    public func encode(into w: inout WireWriter) {
        hdr.encode(into: &w)
        w.writeField(fileName, Self.nameBytes)
        w.writeField(pathName, Self.nameBytes)
        w.writeUInt32(copyFlags.rawValue)
        w.writeUInt64(fileSize)
    }
}
