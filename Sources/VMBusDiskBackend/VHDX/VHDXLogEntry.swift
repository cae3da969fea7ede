import VMBusWire

/// One MS-VHDX log entry: a header (64 bytes) and its descriptors (32 bytes each) in the first 4 KiB sector(s),
/// then one 4 KiB data sector per data descriptor. A data descriptor moves a whole 4 KiB sector of the file: its
/// first 8 and last 4 bytes live in the descriptor, the middle 4084 in the data sector, whose own first and last
/// 4 bytes carry the entry's sequence number (so a torn entry is detected). A zero descriptor zeroes a range.
public struct VHDXLogEntry: Equatable, Sendable {
    public static let sectorSize = 4096
    public static let headerSize = 64
    public static let descriptorSize = 32
    public static let signature = [UInt8].signature("loge")
    public static let dataDescriptorSignature = [UInt8].signature("desc")
    public static let zeroDescriptorSignature = [UInt8].signature("zero")
    public static let dataSectorSignature = [UInt8].signature("data")
    /// Descriptors that fit in one header sector with the header.
    public static let descriptorsPerHeaderSector = (sectorSize - headerSize) / descriptorSize

    public enum Descriptor: Equatable, Sendable {
        /// The 4 KiB sector at `fileOffset` becomes `sector`.
        case data(fileOffset: UInt64, sector: [UInt8])
        /// `length` bytes at `fileOffset` become zeros.
        case zero(fileOffset: UInt64, length: UInt64)

        var fileRange: (UInt64, UInt64) {
            switch self {
            case .data(let o, _): return (o, UInt64(VHDXLogEntry.sectorSize))
            case .zero(let o, let l): return (o, l)
            }
        }
    }

    public var sequenceNumber: UInt64
    /// Offset in the log of the first entry of the sequence this one ends.
    public var tail: UInt32
    public var logGUID: GUID
    /// The file's size when the entry was written: a shorter file lost flushed data.
    public var flushedFileOffset: UInt64
    /// The end of every structure the file holds once the entry is applied.
    public var lastFileOffset: UInt64
    public var descriptors: [Descriptor]

    public init(sequenceNumber: UInt64, tail: UInt32, logGUID: GUID, flushedFileOffset: UInt64, lastFileOffset: UInt64,
                descriptors: [Descriptor]) {
        self.sequenceNumber = sequenceNumber
        self.tail = tail
        self.logGUID = logGUID
        self.flushedFileOffset = flushedFileOffset
        self.lastFileOffset = lastFileOffset
        self.descriptors = descriptors
    }

    static func headerSectors(descriptorCount: Int) -> Int {
        (headerSize + descriptorCount * descriptorSize + sectorSize - 1) / sectorSize
    }

    /// Bytes the entry takes in the log.
    public var length: Int {
        let data = descriptors.reduce(0) { if case .data = $1 { return $0 + 1 } else { return $0 } }
        return (Self.headerSectors(descriptorCount: descriptors.count) + data) * Self.sectorSize
    }

    public var encoded: [UInt8] {
        let headerBytes = Self.headerSectors(descriptorCount: descriptors.count) * Self.sectorSize
        var b = [UInt8](repeating: 0, count: length)
        b.put32(Self.signature, at: 0)
        b.put32(UInt32(b.count), at: 8)
        b.put32(tail, at: 12)
        b.put64(sequenceNumber, at: 16)
        b.put32(UInt32(descriptors.count), at: 24)
        b.put(logGUID, at: 32)
        b.put64(flushedFileOffset, at: 48)
        b.put64(lastFileOffset, at: 56)
        var dataAt = headerBytes
        for (i, d) in descriptors.enumerated() {
            let o = Self.headerSize + i * Self.descriptorSize
            switch d {
            case .zero(let fileOffset, let length):
                b.put32(Self.zeroDescriptorSignature, at: o)
                b.put64(length, at: o + 8)
                b.put64(fileOffset, at: o + 16)
            case .data(let fileOffset, let sector):
                b.put32(Self.dataDescriptorSignature, at: o)
                b.put32(sector.le32(4092), at: o + 4)
                b.put64(sector.le64(0), at: o + 8)
                b.put64(fileOffset, at: o + 16)
                b.put32(Self.dataSectorSignature, at: dataAt)
                b.put32(UInt32(sequenceNumber >> 32), at: dataAt + 4)
                for j in 8..<4092 { b[dataAt + j] = sector[j] }
                b.put32(UInt32(sequenceNumber & 0xFFFF_FFFF), at: dataAt + 4092)
                dataAt += Self.sectorSize
            }
            b.put64(sequenceNumber, at: o + 24)
        }
        b.put32(CRC32C.checksum(b), at: 4)
        return b
    }

    /// Reads the entry that starts at `position` of the circular `log` (bytes of the whole log), or nil when
    /// none valid starts there: wrong signature, log GUID or sequence numbers, bad lengths, or a checksum that
    /// does not match (a torn write). An entry may wrap around the end of the log.
    public static func parse(log: [UInt8], at position: Int, logGUID: GUID) -> VHDXLogEntry? {
        let n = log.count
        guard n >= sectorSize, n % sectorSize == 0, position % sectorSize == 0, position < n else { return nil }
        func bytes(_ start: Int, _ count: Int) -> [UInt8] {
            (0..<count).map { log[(position + start + $0) % n] }
        }
        let head = bytes(0, headerSize)
        guard head.le32(0) == signature else { return nil }
        let length = Int(head.le32(8)), tail = head.le32(12), sequence = head.le64(16), count = Int(head.le32(24))
        guard length >= sectorSize, length % sectorSize == 0, length <= n, sequence != 0,
              Int(tail) % sectorSize == 0, Int(tail) < n, head.guid(32) == logGUID,
              headerSectors(descriptorCount: count) * sectorSize <= length else { return nil }
        let whole = bytes(0, length)
        guard whole.le32(4) == CRC32C.checksum(whole) else { return nil }
        var dataAt = headerSectors(descriptorCount: count) * sectorSize
        var descriptors: [Descriptor] = []
        for i in 0..<count {
            let o = headerSize + i * descriptorSize
            let fileOffset = whole.le64(o + 16)
            guard whole.le64(o + 24) == sequence, fileOffset % UInt64(sectorSize) == 0 else { return nil }
            switch whole.le32(o) {
            case zeroDescriptorSignature:
                let zeroLength = whole.le64(o + 8)
                guard zeroLength % UInt64(sectorSize) == 0 else { return nil }
                descriptors.append(.zero(fileOffset: fileOffset, length: zeroLength))
            case dataDescriptorSignature:
                guard dataAt + sectorSize <= length, whole.le32(dataAt) == dataSectorSignature,
                      UInt64(whole.le32(dataAt + 4)) << 32 | UInt64(whole.le32(dataAt + 4092)) == sequence else { return nil }
                var sector = Array(whole[dataAt..<(dataAt + sectorSize)])
                sector.put64(whole.le64(o + 8), at: 0)
                sector.put32(whole.le32(o + 4), at: 4092)
                descriptors.append(.data(fileOffset: fileOffset, sector: sector))
                dataAt += sectorSize
            default:
                return nil
            }
        }
        guard dataAt == length else { return nil }
        return VHDXLogEntry(sequenceNumber: sequence, tail: tail, logGUID: logGUID, flushedFileOffset: whole.le64(48),
                            lastFileOffset: whole.le64(56), descriptors: descriptors)
    }

    /// The active sequence of `log` (MS-VHDX 2.3.3): of the entries whose chain from their tail is complete
    /// (each next entry right after the previous one, sequence numbers counting up by one), the one with the
    /// highest sequence number, with the chain in order. Empty when nothing is live.
    public static func activeSequence(log: [UInt8], logGUID: GUID) -> [VHDXLogEntry] {
        var found: [Int: VHDXLogEntry] = [:]
        for p in stride(from: 0, to: log.count, by: sectorSize) {
            if let e = parse(log: log, at: p, logGUID: logGUID) { found[p] = e }
        }
        var best: [VHDXLogEntry] = []
        for (_, head) in found where head.sequenceNumber > (best.last?.sequenceNumber ?? 0) {
            var chain: [VHDXLogEntry] = []
            var p = Int(head.tail)
            while let e = found[p], chain.count <= found.count {
                if let last = chain.last, e.sequenceNumber != last.sequenceNumber + 1 { break }
                chain.append(e)
                if e.sequenceNumber == head.sequenceNumber { break }
                p = (p + e.length) % log.count
            }
            if chain.last?.sequenceNumber == head.sequenceNumber { best = chain }
        }
        return best
    }
}
