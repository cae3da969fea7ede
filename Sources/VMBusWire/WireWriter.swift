/// A little-endian writer that appends to a byte array it owns.
///
/// Reuse one writer's storage on hot paths: ``reset()`` keeps the capacity, so encoding does not allocate once
/// the buffer has grown to the largest message.
public struct WireWriter: Sendable {
    public private(set) var bytes: [UInt8]

    public init(capacity: Int = 256) {
        bytes = []
        bytes.reserveCapacity(capacity)
    }

    /// Takes over `storage`, emptied but with its capacity kept.
    public init(reusing storage: consuming [UInt8]) {
        storage.removeAll(keepingCapacity: true)
        bytes = storage
    }

    public var count: Int { bytes.count }

    /// Empties the buffer and keeps its capacity.
    public mutating func reset() { bytes.removeAll(keepingCapacity: true) }

    @inline(__always)
    public mutating func writeUInt8(_ v: UInt8) { bytes.append(v) }
    @inline(__always)
    public mutating func writeUInt16(_ v: UInt16) {
        bytes.append(UInt8(truncatingIfNeeded: v))
        bytes.append(UInt8(truncatingIfNeeded: v >> 8))
    }
    @inline(__always)
    public mutating func writeUInt32(_ v: UInt32) {
        for i in 0..<4 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt32(i)))) }
    }
    @inline(__always)
    public mutating func writeUInt64(_ v: UInt64) {
        for i in 0..<8 { bytes.append(UInt8(truncatingIfNeeded: v >> (8 * UInt64(i)))) }
    }
    public mutating func writeBytes<C: Collection>(_ b: C) where C.Element == UInt8 { bytes.append(contentsOf: b) }
    /// Appends `count` zero bytes (reserved fields, padding).
    public mutating func writeZeros(_ count: Int) {
        for _ in 0..<count { bytes.append(0) }
    }
    /// Pads with zeros up to a multiple of `alignment` bytes.
    public mutating func pad(toMultipleOf alignment: Int) {
        let r = bytes.count % alignment
        if r != 0 { writeZeros(alignment - r) }
    }
    public mutating func write<T: WireEncodable>(_ value: T) { value.encode(into: &self) }

    /// Overwrites bytes already written (for lengths known only at the end).
    public mutating func setUInt16(_ v: UInt16, at offset: Int) {
        bytes[offset] = UInt8(truncatingIfNeeded: v)
        bytes[offset + 1] = UInt8(truncatingIfNeeded: v >> 8)
    }
    public mutating func setUInt32(_ v: UInt32, at offset: Int) {
        for i in 0..<4 { bytes[offset + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(i))) }
    }
}
