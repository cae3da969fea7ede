/// The Internet checksum's one's-complement sum (RFC 1071) over raw bytes, eight at a time: the sum of the
/// native (little-endian) 64-bit words, folded, is the byte-swapped sum of the big-endian 16-bit words, so the
/// loop needs no per-byte work. Every checksum the NICs finish in software goes through here.
public enum InternetChecksum {
    /// The sum of `bytes` as big-endian 16-bit words (an odd last byte padded with zero), plus `initial`,
    /// folded to 16 bits (not inverted).
    public static func sum(_ bytes: UnsafeRawBufferPointer, initial: UInt32 = 0) -> UInt16 {
        var acc: UInt64 = 0
        var i = 0
        let n = bytes.count
        while i + 8 <= n {
            let (s, o) = acc.addingReportingOverflow(bytes.loadUnaligned(fromByteOffset: i, as: UInt64.self))
            acc = s &+ (o ? 1 : 0)
            i += 8
        }
        if i < n {
            // The tail as the low bytes of one more little-endian word.
            var tail: UInt64 = 0
            var shift: UInt64 = 0
            while i < n {
                tail |= UInt64(bytes[i]) << shift
                shift += 8
                i += 1
            }
            let (s, o) = acc.addingReportingOverflow(tail)
            acc = s &+ (o ? 1 : 0)
        }
        let native = fold(acc)
        return fold(UInt64(native.byteSwapped) + UInt64(initial))
    }

    /// `sum` over `bytes[at ..< at + count]` of an array.
    public static func sum(_ bytes: [UInt8], at: Int, count: Int, initial: UInt32 = 0) -> UInt16 {
        bytes.withUnsafeBytes { sum(UnsafeRawBufferPointer(rebasing: $0[at..<(at + count)]), initial: initial) }
    }

    @inline(__always) static func fold(_ value: UInt64) -> UInt16 {
        var v = value
        while v > 0xFFFF { v = (v & 0xFFFF) + (v >> 16) }
        return UInt16(v)
    }
}
