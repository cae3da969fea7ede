/// An MS-VHDX block allocation table entry: a 3-bit state and a file offset in MiB (bits 20...63).
public struct VHDXBATEntry: Equatable, Sendable {
    // Payload block states.
    public static let PAYLOAD_BLOCK_NOT_PRESENT: UInt8 = 0
    public static let PAYLOAD_BLOCK_UNDEFINED: UInt8 = 1
    public static let PAYLOAD_BLOCK_ZERO: UInt8 = 2
    public static let PAYLOAD_BLOCK_UNMAPPED: UInt8 = 3
    /// The value of UNMAPPED in version 1.0 of the specification, which qemu still uses; read as UNMAPPED.
    public static let PAYLOAD_BLOCK_UNMAPPED_V1: UInt8 = 5
    public static let PAYLOAD_BLOCK_FULLY_PRESENT: UInt8 = 6
    public static let PAYLOAD_BLOCK_PARTIALLY_PRESENT: UInt8 = 7
    // Sector bitmap block states.
    public static let SB_BLOCK_NOT_PRESENT: UInt8 = 0
    public static let SB_BLOCK_PRESENT: UInt8 = 6

    public var raw: UInt64

    public init(raw: UInt64) { self.raw = raw }
    public init(state: UInt8, fileOffset: UInt64) { raw = fileOffset & ~0xF_FFFF | UInt64(state & 7) }

    public var state: UInt8 { UInt8(raw & 7) }
    /// Bytes; a multiple of 1 MiB.
    public var fileOffset: UInt64 { raw & ~0xF_FFFF }
}

/// How the BAT of a disk is laid out: one payload entry per block, and after every `chunkRatio` payload entries
/// the entry of the sector bitmap block (1 MiB, one bit per logical sector) that covers them.
public struct VHDXBATGeometry: Equatable, Sendable {
    public static let sectorBitmapBlockSize: UInt64 = 1 << 20
    /// Sectors one sector bitmap block describes: 2^23.
    public static let sectorsPerBitmapBlock: UInt64 = 1 << 23

    public let blockSize: UInt64
    public let logicalSectorSize: UInt64
    public let payloadBlocks: Int
    public let chunkRatio: Int
    public let totalEntries: Int

    public init(diskSize: UInt64, blockSize: UInt32, logicalSectorSize: UInt32, hasParent: Bool) {
        self.blockSize = UInt64(blockSize)
        self.logicalSectorSize = UInt64(logicalSectorSize)
        chunkRatio = Int(Self.sectorsPerBitmapBlock * UInt64(logicalSectorSize) / UInt64(blockSize))
        payloadBlocks = Int((diskSize + UInt64(blockSize) - 1) / UInt64(blockSize))
        let bitmapBlocks = (payloadBlocks + chunkRatio - 1) / chunkRatio
        totalEntries = hasParent ? bitmapBlocks * (chunkRatio + 1) : payloadBlocks + (payloadBlocks - 1) / chunkRatio
    }

    /// The BAT index of payload block `block`.
    public func payloadIndex(_ block: Int) -> Int { block + block / chunkRatio }
    /// The BAT index of the sector bitmap block of chunk `chunk`.
    public func bitmapIndex(_ chunk: Int) -> Int { chunk * (chunkRatio + 1) + chunkRatio }
    /// Whether BAT index `i` holds a sector bitmap entry.
    public func isBitmapIndex(_ i: Int) -> Bool { i % (chunkRatio + 1) == chunkRatio }
    /// The BAT region's size on disk: the entries, in whole MiB.
    public var regionLength: UInt64 { (UInt64(totalEntries) * 8 + (1 << 20) - 1) / (1 << 20) * (1 << 20) }
}
