/// The VHD hard disk footer (Microsoft "Virtual Hard Disk Image Format Specification" v1.0): 512 bytes,
/// big-endian, at the end of every VHD (and copied at the start of a dynamic one).
public struct VHDFooter: Equatable, Sendable {
    public static let size = 512
    public static let cookie = Array("conectix".utf8)
    /// Features: bit 1 ("reserved") is always set.
    public static let featuresReserved: UInt32 = 0x0000_0002
    public static let fileFormatVersion: UInt32 = 0x0001_0000
    /// Data offset of a fixed disk: none.
    public static let noDataOffset: UInt64 = 0xFFFF_FFFF_FFFF_FFFF
    /// Seconds from 1970-01-01 to 2000-01-01, the VHD epoch.
    public static let epochOffset: UInt32 = 946_684_800
    /// The largest disk the format holds (the specification's 2040 GiB).
    public static let maximumSize: UInt64 = 2040 << 30

    public enum DiskType: UInt32, Sendable {
        case fixed = 2
        case dynamic = 3
        case differencing = 4
    }

    public var features: UInt32 = VHDFooter.featuresReserved
    public var version: UInt32 = VHDFooter.fileFormatVersion
    public var dataOffset: UInt64
    public var timestamp: UInt32 = 0
    /// "win " (Hyper-V): readers such as qemu then take the size from `currentSize`, not from the geometry.
    public var creatorApplication: [UInt8] = Array("win ".utf8)
    public var creatorVersion: UInt32 = 0x000A_0000
    /// "Wi2k"
    public var creatorHostOS: UInt32 = 0x5769_326B
    public var originalSize: UInt64
    public var currentSize: UInt64
    public var cylinders: UInt16
    public var heads: UInt8
    public var sectorsPerTrack: UInt8
    public var diskType: UInt32
    public var checksum: UInt32 = 0
    public var uniqueID: [UInt8]
    public var savedState: UInt8 = 0

    public init(size: UInt64, type: DiskType, dataOffset: UInt64, uniqueID: [UInt8], timestamp: UInt32) {
        self.dataOffset = dataOffset
        originalSize = size
        currentSize = size
        (cylinders, heads, sectorsPerTrack) = Self.geometry(forSize: size)
        diskType = type.rawValue
        self.uniqueID = uniqueID
        self.timestamp = timestamp
        checksum = Self.checksum(of: encodedBytes(checksum: 0))
    }

    public var type: DiskType? { DiskType(rawValue: diskType) }

    /// CHS geometry as the specification's appendix computes it from the size.
    public static func geometry(forSize size: UInt64) -> (UInt16, UInt8, UInt8) {
        var total = min(size / 512, 65535 * 16 * 255)
        var spt: UInt64, heads: UInt64, cth: UInt64
        if total >= 65535 * 16 * 63 {
            spt = 255; heads = 16; cth = total / spt
        } else {
            spt = 17
            cth = total / spt
            heads = max(4, (cth + 1023) / 1024)
            if cth >= heads * 1024 || heads > 16 { spt = 31; heads = 16; cth = total / spt }
            if cth >= heads * 1024 { spt = 63; heads = 16; cth = total / spt }
        }
        total = cth / heads
        return (UInt16(min(total, 65535)), UInt8(heads), UInt8(spt))
    }

    /// One's complement of the byte sum, the checksum field counted as zero.
    public static func checksum(of bytes: [UInt8]) -> UInt32 { onesComplementChecksum(bytes, skipping: 64..<68) }

    public var encoded: [UInt8] { encodedBytes(checksum: checksum) }

    private func encodedBytes(checksum: UInt32) -> [UInt8] {
        var w = BigEndianWriter(capacity: Self.size)
        w.bytes(Self.cookie)
        w.u32(features); w.u32(version); w.u64(dataOffset); w.u32(timestamp)
        w.bytes(Array(creatorApplication.prefix(4)) + [UInt8](repeating: 0x20, count: max(0, 4 - creatorApplication.count)))
        w.u32(creatorVersion); w.u32(creatorHostOS); w.u64(originalSize); w.u64(currentSize)
        w.u16(cylinders); w.u8(heads); w.u8(sectorsPerTrack)
        w.u32(diskType); w.u32(checksum)
        w.bytes(Array(uniqueID.prefix(16)) + [UInt8](repeating: 0, count: max(0, 16 - uniqueID.count)))
        w.u8(savedState)
        w.zeros(Self.size - w.count)
        return w.out
    }

    /// Parses and checks a footer read at `offset` (for the error message).
    public init(decoding b: [UInt8], at offset: UInt64) throws(BackendError) {
        func bad(_ why: String) -> BackendError { .corrupt(structure: "VHD footer", offset: offset, why: why) }
        guard b.count >= Self.size else { throw bad("\(b.count) bytes, not 512") }
        guard Array(b[0..<8]) == Self.cookie else { throw bad("cookie is not \"conectix\"") }
        let r = BigEndianReader(b)
        features = r.u32(8); version = r.u32(12); dataOffset = r.u64(16); timestamp = r.u32(24)
        creatorApplication = Array(b[28..<32]); creatorVersion = r.u32(32); creatorHostOS = r.u32(36)
        originalSize = r.u64(40); currentSize = r.u64(48)
        cylinders = r.u16(56); heads = b[58]; sectorsPerTrack = b[59]
        diskType = r.u32(60); checksum = r.u32(64); uniqueID = Array(b[68..<84]); savedState = b[84]
        guard Self.checksum(of: Array(b[0..<Self.size])) == checksum else { throw bad("checksum mismatch") }
        guard version >> 16 == 1 else { throw bad("file format version 0x\(String(version, radix: 16))") }
        guard type != nil else { throw bad("disk type \(diskType)") }
        guard currentSize % 512 == 0, currentSize > 0 else { throw bad("size \(currentSize) is not a positive multiple of 512") }
        guard currentSize <= Self.maximumSize else { throw bad("size \(currentSize) is past the format's 2040 GiB") }
    }
}

/// Big-endian field writer and reader for the VHD structures.
struct BigEndianWriter {
    var out: [UInt8]
    init(capacity: Int) { out = []; out.reserveCapacity(capacity) }
    var count: Int { out.count }
    mutating func u8(_ v: UInt8) { out.append(v) }
    mutating func u16(_ v: UInt16) { out.append(UInt8(v >> 8)); out.append(UInt8(truncatingIfNeeded: v)) }
    mutating func u32(_ v: UInt32) { u16(UInt16(v >> 16)); u16(UInt16(truncatingIfNeeded: v)) }
    mutating func u64(_ v: UInt64) { u32(UInt32(v >> 32)); u32(UInt32(truncatingIfNeeded: v)) }
    mutating func bytes(_ b: [UInt8]) { out += b }
    mutating func zeros(_ n: Int) { out += [UInt8](repeating: 0, count: max(0, n)) }
}

struct BigEndianReader {
    let b: [UInt8]
    init(_ b: [UInt8]) { self.b = b }
    func u16(_ o: Int) -> UInt16 { UInt16(b[o]) << 8 | UInt16(b[o + 1]) }
    func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) << 16 | UInt32(u16(o + 2)) }
    func u64(_ o: Int) -> UInt64 { UInt64(u32(o)) << 32 | UInt64(u32(o + 4)) }
}
