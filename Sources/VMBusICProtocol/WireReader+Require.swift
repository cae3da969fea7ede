import VMBusWire

extension WireReader {
    /// Throws `.truncated` unless `count` more bytes are there, so a struct is refused as a whole before any
    /// of it is read or allocated.
    mutating func require(_ count: Int) throws(WireError) {
        guard remaining >= count else { throw .truncated(offset: consumed, needed: count, available: remaining) }
    }
}

extension WireWriter {
    /// `bytes` cut or zero-padded to exactly `count` bytes: fixed C arrays are always written whole.
    mutating func writeField(_ bytes: [UInt8], _ count: Int) {
        if bytes.count >= count {
            writeBytes(bytes.prefix(count))
        } else {
            writeBytes(bytes)
            writeZeros(count - bytes.count)
        }
    }
}

/// `bytes` cut or zero-padded to `count`.
func fixedField(_ bytes: [UInt8], _ count: Int) -> [UInt8] {
    bytes.count >= count ? Array(bytes.prefix(count)) : bytes + Array(repeating: 0, count: count - bytes.count)
}

extension FixedWidthInteger {
    /// The value's bytes, least significant first.
    var littleEndianBytes: [UInt8] {
        (0..<(Self.bitWidth / 8)).map { UInt8(truncatingIfNeeded: self >> (8 * $0)) }
    }
}
