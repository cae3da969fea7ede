import VMBusWire

extension WireReader {
    /// A reader over `count` bytes that start `offset` bytes after this reader's window start, for the
    /// offset/length pairs NVSP and RNDIS carry. Both come from the peer, so the region is checked against the
    /// window before anything reads it; a region that pokes out of the message throws `.truncated`.
    func region(at offset: Int, count: Int) throws(WireError) -> WireReader {
        guard offset >= 0, count >= 0, offset <= end - start, count <= end - start - offset else {
            throw .truncated(offset: offset, needed: count, available: max(0, end - start - max(0, offset)))
        }
        // In bounds by the guard above, so the initializer's own check cannot fire.
        return WireReader(bytes, start: start + offset, end: start + offset + count)
    }

    /// The bytes of the whole window, copied (control path only).
    func windowBytes() -> [UInt8] { Array(bytes[start..<end]) }
}

extension UInt32 {
    /// The `width`-bit field at bit `low` (C bitfields of a little-endian u32, lowest bit first).
    @inline(__always)
    func bits(_ low: Int, _ width: Int) -> UInt32 { (self >> UInt32(low)) & ((1 << UInt32(width)) - 1) }

    /// Replaces the `width`-bit field at bit `low`; bits of `value` beyond the width are dropped.
    @inline(__always)
    mutating func setBits(_ low: Int, _ width: Int, _ value: UInt32) {
        let mask: UInt32 = ((1 << UInt32(width)) - 1) << UInt32(low)
        self = (self & ~mask) | ((value << UInt32(low)) & mask)
    }

    @inline(__always)
    func bit(_ n: Int) -> Bool { self & (1 << UInt32(n)) != 0 }

    @inline(__always)
    mutating func setBit(_ n: Int, _ on: Bool) { setBits(n, 1, on ? 1 : 0) }
}
