/// A bounds-checked little-endian reader over bytes that were already copied out of shared memory.
///
/// Verbs follow SwiftNIO's `ByteBuffer`: `read*` advances, `get*(at:)` reads at an absolute offset and
/// `peek*` reads at the current index without moving it. A short read throws ``WireError/truncated(offset:needed:available:)``
/// and leaves the index where it was. VMBus is little-endian throughout, so there is no endianness parameter.
///
/// Everything is inlinable: every decoder in the package reads through it, from other modules, and a call per
/// field (with a retain of `bytes`) cost more than the read itself on the data path.
public struct WireReader: Sendable {
    public let bytes: [UInt8]
    /// Absolute index of the first byte of this reader's window in `bytes`.
    public let start: Int
    /// Absolute index one past the last readable byte.
    public let end: Int
    /// Absolute index of the next byte to read.
    @inlinable public var index: Int { cursor }
    @usableFromInline var cursor: Int

    @inlinable
    public init(_ bytes: [UInt8]) {
        self.bytes = bytes
        self.start = 0
        self.end = bytes.count
        self.cursor = 0
    }

    /// A reader over `bytes[start..<end]`; offsets in errors stay absolute.
    @inlinable
    public init(_ bytes: [UInt8], start: Int, end: Int) {
        precondition(start >= 0 && start <= end && end <= bytes.count, "reader window out of bounds")
        self.bytes = bytes
        self.start = start
        self.end = end
        self.cursor = start
    }

    /// Bytes left to read.
    @inlinable public var remaining: Int { end - index }
    /// Bytes consumed since the start of the window.
    @inlinable public var consumed: Int { index - start }

    @inlinable @inline(__always)
    func check(_ offset: Int, _ count: Int) throws(WireError) {
        guard count >= 0, offset >= start, offset <= end, end - offset >= count else {
            throw .truncated(offset: offset - start, needed: count, available: max(0, end - offset))
        }
    }

    @inlinable @inline(__always)
    public func getUInt8(at offset: Int) throws(WireError) -> UInt8 {
        try check(offset, 1)
        return bytes[offset]
    }

    @inlinable @inline(__always)
    public func getUInt16(at offset: Int) throws(WireError) -> UInt16 {
        try check(offset, 2)
        return bytes.withUnsafeBytes { UInt16(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt16.self)) }
    }

    @inlinable @inline(__always)
    public func getUInt32(at offset: Int) throws(WireError) -> UInt32 {
        try check(offset, 4)
        return bytes.withUnsafeBytes { UInt32(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt32.self)) }
    }

    @inlinable @inline(__always)
    public func getUInt64(at offset: Int) throws(WireError) -> UInt64 {
        try check(offset, 8)
        return bytes.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
    }

    @inlinable @inline(__always)
    public mutating func readUInt8() throws(WireError) -> UInt8 {
        let v = try getUInt8(at: index); cursor += 1; return v
    }
    @inlinable @inline(__always)
    public mutating func readUInt16() throws(WireError) -> UInt16 {
        let v = try getUInt16(at: index); cursor += 2; return v
    }
    @inlinable @inline(__always)
    public mutating func readUInt32() throws(WireError) -> UInt32 {
        let v = try getUInt32(at: index); cursor += 4; return v
    }
    @inlinable @inline(__always)
    public mutating func readUInt64() throws(WireError) -> UInt64 {
        let v = try getUInt64(at: index); cursor += 8; return v
    }
    @inlinable @inline(__always)
    public func peekUInt32() throws(WireError) -> UInt32 { try getUInt32(at: index) }

    /// Reads `count` bytes into a new array.
    @inlinable
    public mutating func readBytes(_ count: Int) throws(WireError) -> [UInt8] {
        try check(index, count)
        let out = Array(bytes[index..<(index + count)])
        cursor += count
        return out
    }

    /// Skips `count` bytes (reserved fields).
    @inlinable
    public mutating func skip(_ count: Int) throws(WireError) {
        try check(index, count)
        cursor += count
    }

    /// Reads a nested value.
    @inlinable
    public mutating func read<T: WireDecodable>(_ type: T.Type) throws(WireError) -> T {
        try T(from: &self)
    }

    /// A reader over the next `count` bytes; this reader advances past them.
    @inlinable
    public mutating func readSubReader(_ count: Int) throws(WireError) -> WireReader {
        try check(index, count)
        let sub = WireReader(bytes, start: index, end: index + count)
        cursor += count
        return sub
    }
}
