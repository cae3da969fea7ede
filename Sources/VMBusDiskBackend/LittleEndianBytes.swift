import VMBusWire

/// Little-endian field access for on-disk structures (VHDX). Callers check the length of what they read first;
/// these index the array directly.
extension Array where Element == UInt8 {
    func le16(_ o: Int) -> UInt16 { UInt16(self[o]) | UInt16(self[o + 1]) << 8 }
    func le32(_ o: Int) -> UInt32 { UInt32(le16(o)) | UInt32(le16(o + 2)) << 16 }
    func le64(_ o: Int) -> UInt64 { UInt64(le32(o)) | UInt64(le32(o + 4)) << 32 }
    func guid(_ o: Int) -> GUID {
        GUID(data1: le32(o), data2: le16(o + 4), data3: le16(o + 6),
             data4: (self[o + 8], self[o + 9], self[o + 10], self[o + 11], self[o + 12], self[o + 13], self[o + 14], self[o + 15]))
    }

    mutating func put16(_ v: UInt16, at o: Int) { self[o] = UInt8(v & 0xFF); self[o + 1] = UInt8(v >> 8) }
    mutating func put32(_ v: UInt32, at o: Int) { put16(UInt16(v & 0xFFFF), at: o); put16(UInt16(v >> 16), at: o + 2) }
    mutating func put64(_ v: UInt64, at o: Int) { put32(UInt32(v & 0xFFFF_FFFF), at: o); put32(UInt32(v >> 32), at: o + 4) }
    mutating func put(_ g: GUID, at o: Int) {
        put32(g.data1, at: o); put16(g.data2, at: o + 4); put16(g.data3, at: o + 6)
        for (i, b) in g.tailBytes.enumerated() { self[o + 8 + i] = b }
    }

    /// The four ASCII bytes of a VHDX signature as the little-endian number the structures store.
    static func signature(_ s: String) -> UInt32 { Array(s.utf8).le32(0) }

    /// Checks a VHDX structure that starts with a 4-byte signature and its CRC-32C (over all of it, the CRC
    /// field counted as zero); `bad` names the structure in the error.
    func verifySignatureAndChecksum(_ signature: String, _ bad: (String) -> BackendError) throws(BackendError) {
        guard count >= 8, le32(0) == [UInt8].signature(signature) else { throw bad("no \"\(signature)\" signature") }
        let crc = CRC32C.checksum(self)
        guard le32(4) == crc else { throw bad("checksum \(hex(le32(4))), computed \(hex(crc))") }
    }
}

extension GUID {
    /// A constant written the way the specification prints it: `{d1-d2-d3-d4}`, `d4` the last 8 bytes in order.
    init(_ d1: UInt32, _ d2: UInt16, _ d3: UInt16, _ d4: UInt64) {
        let b = (0..<8).map { UInt8(truncatingIfNeeded: d4 >> (56 - 8 * $0)) }
        self.init(data1: d1, data2: d2, data3: d3, data4: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]))
    }

    /// A random (version 4) GUID: VHDX's file, data and log write identifiers.
    static func random() -> GUID {
        var g = SystemRandomNumberGenerator()
        let a = g.next() as UInt64, b = g.next() as UInt64
        var bytes = [UInt8](repeating: 0, count: 16)
        bytes.put64(a, at: 0); bytes.put64(b, at: 8)
        bytes[7] = (bytes[7] & 0x0F) | 0x40
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return bytes.guid(0)
    }
}
