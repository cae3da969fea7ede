/// What the guest learns of one LUN during discovery, parsed from the SCSI data the host returns. Each parser
/// checks the length it reads; a host that sends less gets a typed error, never a trap.
public struct LUNIdentity: Equatable, Sendable {
    public var lun: UInt8
    /// INQUIRY byte 0 bits 0-4 (0 = direct-access block device).
    public var deviceType: UInt8
    public var vendor: String
    public var product: String
    public var revision: String
    public var blockSize: Int
    public var blockCount: UInt64
    public var readOnly: Bool
    /// READ CAPACITY(16) LBPME: the disk accepts UNMAP.
    public var thinProvisioned: Bool
    /// VPD 0xB0 maximum unmap LBA count (0 when UNMAP is not offered).
    public var maxUnmapBlocks: UInt32
    public var serialNumber: String

    public var capacityBytes: UInt64 { blockCount &* UInt64(blockSize) }

    // MARK: Parsers

    /// REPORT LUNS data: the LUNs of single-level (peripheral) addressing below 256, sorted.
    public static func parseReportLUNs(_ d: [UInt8]) throws(StorVSCError) -> [UInt8] {
        guard d.count >= 8 else { throw .malformedCompletion("REPORT LUNS data of \(d.count) bytes") }
        let listLength = Int(be32(d, 0))
        let entries = min(listLength, d.count - 8) / 8
        var luns = Set<UInt8>()
        for i in 0..<entries {
            let o = 8 + 8 * i
            // Peripheral device addressing (method 00b, bus 0) with a LUN < 256; other forms are not disks we
            // can address with the one-byte `lun` of the SRB.
            guard d[o] == 0, d[o + 2...o + 7].allSatisfy({ $0 == 0 }) else { continue }
            luns.insert(d[o + 1])
        }
        return luns.sorted()
    }

    /// Standard INQUIRY data: nil when the LUN is absent (peripheral qualifier 3, type 0x1F), else
    /// (device type, vendor, product, revision).
    public static func parseInquiry(_ d: [UInt8]) throws(StorVSCError) -> (type: UInt8, vendor: String, product: String, revision: String)? {
        guard d.count >= 5 else { throw .malformedCompletion("INQUIRY data of \(d.count) bytes") }
        if d[0] == 0x7F { return nil }
        guard d[0] >> 5 == 0 else { return nil }  // qualifier: not connected / not supported
        func text(_ r: Range<Int>) -> String {
            guard d.count >= r.upperBound else { return "" }
            return String(decoding: d[r], as: UTF8.self).trimmingTrailingSpaces
        }
        return (d[0] & 0x1F, text(8..<16), text(16..<32), text(32..<36))
    }

    /// READ CAPACITY(16) data: block count, block size and LBPME.
    public static func parseReadCapacity16(_ d: [UInt8]) throws(StorVSCError) -> (blocks: UInt64, blockSize: Int, thin: Bool) {
        guard d.count >= 15 else { throw .malformedCompletion("READ CAPACITY(16) data of \(d.count) bytes") }
        let lastLBA = UInt64(be32(d, 0)) << 32 | UInt64(be32(d, 4))
        let size = Int(be32(d, 8))
        guard lastLBA < UInt64.max, size >= 512, size <= 65536, size & (size - 1) == 0 else {
            throw .malformedCompletion("READ CAPACITY(16): last LBA \(lastLBA), block size \(size)")
        }
        let (bytes, overflow) = (lastLBA + 1).multipliedReportingOverflow(by: UInt64(size))
        guard !overflow, bytes <= UInt64(Int64.max) else { throw .malformedCompletion("capacity past 2^63 bytes") }
        return (lastLBA + 1, size, d[14] & 0x80 != 0)
    }

    /// MODE SENSE(6) header: the WP bit of the device-specific parameter.
    public static func parseWriteProtect(modeSense6 d: [UInt8]) throws(StorVSCError) -> Bool {
        guard d.count >= 4 else { throw .malformedCompletion("MODE SENSE(6) data of \(d.count) bytes") }
        return d[2] & 0x80 != 0
    }

    /// VPD 0xB0 (block limits): the maximum unmap LBA count, 0 when absent.
    public static func parseMaxUnmapBlocks(blockLimits d: [UInt8]) -> UInt32 {
        guard d.count >= 24, d[1] == 0xB0 else { return 0 }
        return be32(d, 20)
    }

    /// VPD 0x80 (unit serial number).
    public static func parseSerialNumber(_ d: [UInt8]) -> String {
        guard d.count >= 4, d[1] == 0x80 else { return "" }
        let n = min(Int(d[2]) << 8 | Int(d[3]), d.count - 4)
        return String(decoding: d[4..<(4 + n)], as: UTF8.self).trimmingTrailingSpaces
    }

    static func be32(_ d: [UInt8], _ o: Int) -> UInt32 {
        UInt32(d[o]) << 24 | UInt32(d[o + 1]) << 16 | UInt32(d[o + 2]) << 8 | UInt32(d[o + 3])
    }
}

extension String {
    var trimmingTrailingSpaces: String {
        var s = Substring(self)
        while let last = s.last, last == " " || last == "\0" { s.removeLast() }
        return String(s)
    }
}
