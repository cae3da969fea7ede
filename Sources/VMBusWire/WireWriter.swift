/// A little-endian writer that appends to a byte array it owns.
///
/// Reuse one writer's storage on hot paths: ``reset()`` keeps the capacity, so encoding does not allocate once
/// the buffer has grown to the largest message.
///
/// Inlinable, as ``WireReader`` is: encoders in every module write through it.
public struct WireWriter: Sendable {
    @inlinable public var bytes: [UInt8] { storage }
    @usableFromInline var storage: [UInt8]

    @inlinable
    public init(capacity: Int = 256) {
        storage = []
        storage.reserveCapacity(capacity)
    }

    /// Takes over `storage`, emptied but with its capacity kept.
    @inlinable
    public init(reusing storage: consuming [UInt8]) {
        storage.removeAll(keepingCapacity: true)
        self.storage = storage
    }

    @inlinable public var count: Int { storage.count }

    /// Empties the buffer and keeps its capacity.
    @inlinable
    public mutating func reset() { storage.removeAll(keepingCapacity: true) }

    @inlinable @inline(__always)
    public mutating func writeUInt8(_ v: UInt8) { storage.append(v) }
    @inlinable @inline(__always)
    public mutating func writeUInt16(_ v: UInt16) {
        storage.append(UInt8(truncatingIfNeeded: v))
        storage.append(UInt8(truncatingIfNeeded: v >> 8))
    }
    @inlinable @inline(__always)
    public mutating func writeUInt32(_ v: UInt32) {
        for i in 0..<4 { storage.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
    }
    @inlinable @inline(__always)
    public mutating func writeUInt64(_ v: UInt64) {
        for i in 0..<8 { storage.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
    @inlinable
    public mutating func writeBytes<C: Collection>(_ b: C) where C.Element == UInt8 { storage.append(contentsOf: b) }
    /// Appends `count` zero bytes (reserved fields, padding).
    @inlinable
    public mutating func writeZeros(_ count: Int) {
        for _ in 0..<count { storage.append(0) }
    }
    /// Pads with zeros up to a multiple of `alignment` bytes.
    @inlinable
    public mutating func pad(toMultipleOf alignment: Int) {
        let r = storage.count % alignment
        if r != 0 { writeZeros(alignment - r) }
    }
    @inlinable
    public mutating func write<T: WireEncodable>(_ value: T) { value.encode(into: &self) }

    /// Overwrites bytes already written (for lengths known only at the end).
    @inlinable
    public mutating func setUInt16(_ v: UInt16, at offset: Int) {
        storage[offset] = UInt8(truncatingIfNeeded: v)
        storage[offset + 1] = UInt8(truncatingIfNeeded: v >> 8)
    }
    @inlinable
    public mutating func setUInt32(_ v: UInt32, at offset: Int) {
        for i in 0..<4 { storage[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }
}
