/// The dynamic disk header of a dynamic or differencing VHD: 1024 bytes, big-endian, at the footer's data offset.
public struct VHDDynamicHeader: Equatable, Sendable {
    public static let size = 1024
    public static let cookie = Array("cxsparse".utf8)
    public static let headerVersion: UInt32 = 0x0001_0000
    /// Hyper-V's and qemu's default.
    public static let defaultBlockSize: UInt32 = 2 << 20

    public var tableOffset: UInt64
    public var maxTableEntries: UInt32
    public var blockSize: UInt32
    public var checksum: UInt32 = 0

    public init(tableOffset: UInt64, maxTableEntries: UInt32, blockSize: UInt32) {
        self.tableOffset = tableOffset
        self.maxTableEntries = maxTableEntries
        self.blockSize = blockSize
        checksum = Self.checksum(of: encodedBytes(checksum: 0))
    }

    /// Bytes of a block's sector bitmap on disk: one bit per sector, padded to whole sectors.
    public var bitmapSize: Int { ((Int(blockSize) / 512 + 7) / 8 + 511) / 512 * 512 }

    public static func checksum(of bytes: [UInt8]) -> UInt32 { onesComplementChecksum(bytes, skipping: 36..<40) }

    public var encoded: [UInt8] { encodedBytes(checksum: checksum) }

    private func encodedBytes(checksum: UInt32) -> [UInt8] {
        var w = BigEndianWriter(capacity: Self.size)
        w.bytes(Self.cookie)
        w.u64(VHDFooter.noDataOffset); w.u64(tableOffset); w.u32(Self.headerVersion)
        w.u32(maxTableEntries); w.u32(blockSize); w.u32(checksum)
        w.zeros(Self.size - w.count)  // no parent: uuid, timestamp, name and locators all zero
        return w.out
    }

    public init(decoding b: [UInt8], at offset: UInt64) throws(BackendError) {
        func bad(_ why: String) -> BackendError { .corrupt(structure: "VHD dynamic header", offset: offset, why: why) }
        guard b.count >= Self.size else { throw bad("\(b.count) bytes, not 1024") }
        guard Array(b[0..<8]) == Self.cookie else { throw bad("cookie is not \"cxsparse\"") }
        let r = BigEndianReader(b)
        tableOffset = r.u64(16)
        guard r.u32(24) >> 16 == 1 else { throw bad("header version 0x\(String(r.u32(24), radix: 16))") }
        maxTableEntries = r.u32(28)
        blockSize = r.u32(32)
        checksum = r.u32(36)
        guard Self.checksum(of: Array(b[0..<Self.size])) == checksum else { throw bad("checksum mismatch") }
        guard blockSize >= 4096, blockSize <= 256 << 20, blockSize & (blockSize - 1) == 0 else {
            throw bad("block size \(blockSize) is not a power of two from 4 KiB to 256 MiB")
        }
        guard tableOffset % 512 == 0 else { throw bad("table offset \(tableOffset) is not sector-aligned") }
    }
}
