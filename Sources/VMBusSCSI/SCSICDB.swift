/// A command descriptor block of at most 16 bytes, in fixed storage, with the big-endian field readers CDBs
/// need. Bytes past ``length`` read as zero.
public struct SCSICDB: Sendable {
    public static let maxLength = 16
    public private(set) var bytes: InlineArray<16, UInt8> = .init(repeating: 0)
    public let length: Int

    /// At most 16 bytes of `source` are kept; ``isTruncated`` says if there were more.
    public init(_ source: some Collection<UInt8>) {
        var i = 0
        for b in source.prefix(Self.maxLength) { bytes[i] = b; i += 1 }
        length = i
        isTruncated = source.count > Self.maxLength
    }

    public let isTruncated: Bool

    /// The first `length` bytes of `raw` (clamped to 0...16; the rest read as zero). No generic iteration:
    /// the data path builds CDBs with this.
    public init(raw: InlineArray<16, UInt8>, length: Int) {
        let n = max(0, min(length, Self.maxLength))
        for i in 0..<n { bytes[i] = raw[i] }
        self.length = n
        isTruncated = length > Self.maxLength
    }

    public var opcode: UInt8 { bytes[0] }
    public subscript(i: Int) -> UInt8 { i >= 0 && i < Self.maxLength ? bytes[i] : 0 }
    public func be16(_ o: Int) -> UInt16 { UInt16(self[o]) << 8 | UInt16(self[o + 1]) }
    public func be24(_ o: Int) -> UInt32 { UInt32(self[o]) << 16 | UInt32(self[o + 1]) << 8 | UInt32(self[o + 2]) }
    public func be32(_ o: Int) -> UInt32 { UInt32(be16(o)) << 16 | UInt32(be16(o + 2)) }
    public func be64(_ o: Int) -> UInt64 { UInt64(be32(o)) << 32 | UInt64(be32(o + 4)) }

    /// Whether the CDB is as long as its opcode's group needs.
    public var hasGroupLength: Bool {
        guard let need = SCSIOpcode.cdbLength(of: opcode) else { return false }
        return length >= need
    }
}

/// The block range of a READ or WRITE in any of its four forms.
public struct BlockTransfer: Equatable, Sendable {
    public var lba: UInt64
    public var blocks: UInt32
    /// Force Unit Access: on stable storage before completion.
    public var fua: Bool
    public var isWrite: Bool

    public init(lba: UInt64, blocks: UInt32, fua: Bool, isWrite: Bool) {
        self.lba = lba
        self.blocks = blocks
        self.fua = fua
        self.isWrite = isWrite
    }

    /// The transfer a READ/WRITE (6, 10, 12, 16) CDB describes; nil for other opcodes. READ(6) with a length
    /// of 0 moves 256 blocks (SBC).
    public init?(_ cdb: SCSICDB) {
        switch cdb.opcode {
        case SCSIOpcode.READ_6, SCSIOpcode.WRITE_6:
            let n = UInt32(cdb[4])
            self.init(lba: UInt64(cdb.be24(1) & 0x1F_FFFF), blocks: n == 0 ? 256 : n, fua: false,
                      isWrite: cdb.opcode == SCSIOpcode.WRITE_6)
        case SCSIOpcode.READ_10, SCSIOpcode.WRITE_10:
            self.init(lba: UInt64(cdb.be32(2)), blocks: UInt32(cdb.be16(7)), fua: cdb[1] & 0x08 != 0,
                      isWrite: cdb.opcode == SCSIOpcode.WRITE_10)
        case SCSIOpcode.READ_12, SCSIOpcode.WRITE_12:
            self.init(lba: UInt64(cdb.be32(2)), blocks: cdb.be32(6), fua: cdb[1] & 0x08 != 0,
                      isWrite: cdb.opcode == SCSIOpcode.WRITE_12)
        case SCSIOpcode.READ_16, SCSIOpcode.WRITE_16:
            self.init(lba: cdb.be64(2), blocks: cdb.be32(10), fua: cdb[1] & 0x08 != 0,
                      isWrite: cdb.opcode == SCSIOpcode.WRITE_16)
        default:
            return nil
        }
    }

    /// The READ(16) or WRITE(16) CDB for this transfer (what a guest sends).
    public var cdb16: [UInt8] {
        var c = [UInt8](repeating: 0, count: 16)
        c[0] = isWrite ? SCSIOpcode.WRITE_16 : SCSIOpcode.READ_16
        c[1] = fua ? 0x08 : 0
        for i in 0..<8 { c[2 + i] = UInt8(truncatingIfNeeded: lba >> (8 * UInt64(7 - i))) }
        for i in 0..<4 { c[10 + i] = UInt8(truncatingIfNeeded: blocks >> (8 * UInt32(3 - i))) }
        return c
    }
}
