/// CRC-32C (Castagnoli; reflected polynomial 0x82F63B78, initial and final value all ones): the checksum MS-VHDX
/// puts in its headers, region tables and log entries.
enum CRC32C {
    static let table: [UInt32] = (0..<256).map { (n: Int) -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? (c >> 1) ^ 0x82F6_3B78 : c >> 1 }
        return c
    }

    /// Continues a running CRC (start with `~0`) over `bytes`, treating `zeroed` (an index range of the bytes) as
    /// zeros: the structure's own checksum field.
    static func update(_ crc: UInt32, _ bytes: UnsafeRawBufferPointer, zeroed: Range<Int> = 0..<0) -> UInt32 {
        var c = crc
        table.withUnsafeBufferPointer { t in
            for i in 0..<bytes.count {
                let b = zeroed.contains(i) ? 0 : bytes[i]
                c = t[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8)
            }
        }
        return c
    }

    /// The checksum of `bytes` with the 4-byte field at `field` counted as zero.
    static func checksum(_ bytes: [UInt8], fieldAt field: Int = 4) -> UInt32 {
        bytes.withUnsafeBytes { ~update(~0, $0, zeroed: field..<(field + 4)) }
    }
}
