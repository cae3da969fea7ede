import VMBusWire

/// One of the two MS-VHDX headers (4 KiB, at 64 KiB and 128 KiB). The current one is the valid header with the
/// higher sequence number; an update rewrites the other one with the next number, so a torn write leaves the
/// previous header current.
public struct VHDXHeader: Equatable, Sendable {
    public static let size = 4096
    public static let signature = [UInt8].signature("head")
    public static let currentVersion: UInt16 = 1
    public static let currentLogVersion: UInt16 = 0

    public var sequenceNumber: UInt64
    /// Changed before the first write to the file in each session.
    public var fileWriteGUID: GUID
    /// Changed before the first change a reader of the virtual disk could see; a differencing child records its
    /// parent's value and refuses a parent whose value moved.
    public var dataWriteGUID: GUID
    /// Zero when the log holds nothing to replay; otherwise the entries carrying this value are live.
    public var logGUID: GUID
    public var logVersion: UInt16 = VHDXHeader.currentLogVersion
    public var version: UInt16 = VHDXHeader.currentVersion
    public var logLength: UInt32
    public var logOffset: UInt64

    public init(sequenceNumber: UInt64, fileWriteGUID: GUID, dataWriteGUID: GUID, logGUID: GUID = .zero,
                logLength: UInt32, logOffset: UInt64) {
        self.sequenceNumber = sequenceNumber
        self.fileWriteGUID = fileWriteGUID
        self.dataWriteGUID = dataWriteGUID
        self.logGUID = logGUID
        self.logLength = logLength
        self.logOffset = logOffset
    }

    /// Decodes and validates a header read from `offset`: signature, CRC-32C over the 4 KiB, version 1, and a log
    /// in 1 MiB units.
    public init(decoding b: [UInt8], at offset: UInt64) throws(BackendError) {
        func bad(_ why: String) -> BackendError { .corrupt(structure: "VHDX header", offset: offset, why: why) }
        guard b.count == Self.size else { throw bad("\(b.count) bytes") }
        try b.verifySignatureAndChecksum("head", bad)
        sequenceNumber = b.le64(8)
        fileWriteGUID = b.guid(16)
        dataWriteGUID = b.guid(32)
        logGUID = b.guid(48)
        logVersion = b.le16(64)
        version = b.le16(66)
        logLength = b.le32(68)
        logOffset = b.le64(72)
        guard version == Self.currentVersion else { throw bad("version \(version)") }
        guard logVersion == Self.currentLogVersion else { throw bad("log version \(logVersion)") }
        guard logLength % (1 << 20) == 0, logOffset % (1 << 20) == 0, logLength > 0,
              logOffset >= VHDXFileIdentifier.headerSectionSize, logOffset <= VHDXFileIdentifier.maximumFileOffset else {
            throw bad("log at \(logOffset), \(logLength) bytes: not in 1 MiB units past the header section")
        }
    }

    public var encoded: [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        b.put32(Self.signature, at: 0)
        b.put64(sequenceNumber, at: 8)
        b.put(fileWriteGUID, at: 16)
        b.put(dataWriteGUID, at: 32)
        b.put(logGUID, at: 48)
        b.put16(logVersion, at: 64)
        b.put16(version, at: 66)
        b.put32(logLength, at: 68)
        b.put64(logOffset, at: 72)
        b.put32(CRC32C.checksum(b), at: 4)
        return b
    }
}

func hex<T: BinaryInteger>(_ v: T) -> String { "0x" + String(v, radix: 16) }
