import VMBusWire

/// What exactly was wrong with a ring the peer shares with us.
///
/// Values are the raw numbers read from shared memory; ``description`` adds the prose. Once a ring has seen
/// corruption it stays in that state (``OutgoingRing/isCorrupt``, ``IncomingRing/isCorrupt``): the peer can no
/// longer be trusted and every later call throws the same ``RingError/corrupt(_:)``.
public enum RingCorruption: Equatable, Sendable, CustomStringConvertible {
    /// `write_index` (control page offset 0) is not below the data size or not a multiple of 8.
    case writeIndex(UInt32, dataSize: Int)
    /// `read_index` (control page offset 4) is not below the data size or not a multiple of 8.
    case readIndex(UInt32, dataSize: Int)
    /// The ring holds `available` bytes at ring offset `offset`: not empty, yet too few for a descriptor and trailer.
    case truncatedPacket(offset: Int, available: Int)
    /// The descriptor at ring offset `offset` broke a rule of `PacketDescriptor.validate()`: unknown type,
    /// `offset8 < 2`, `len8 < offset8` or a flag other than COMPLETION_REQUESTED (`field` names which).
    case invalidDescriptor(offset: Int, field: String, value: UInt64)
    /// The packet at ring offset `offset` claims `length` bytes (plus the 8-byte trailer), more than the
    /// `available` bytes the writer has published.
    case packetExceedsAvailable(offset: Int, length: Int, available: Int)
    /// Our own index (`read_index` of a ring we read, `write_index` of a ring we write; `field` names it) holds
    /// `value` in shared memory, but we last stored `expected`: the peer rewrote an index only we may write.
    case ownIndexChanged(field: String, value: UInt32, expected: Int)
    /// The writer's `write_index` moved back to `value` from `previous`: fewer bytes are published than before,
    /// which no writer can do without rewriting what we already read.
    case writeIndexRewound(UInt32, previous: Int)

    public var description: String {
        switch self {
        case .writeIndex(let v, let size):
            return "write_index 0x\(String(v, radix: 16)) is invalid for a data area of \(size) bytes"
        case .readIndex(let v, let size):
            return "read_index 0x\(String(v, radix: 16)) is invalid for a data area of \(size) bytes"
        case .truncatedPacket(let offset, let available):
            return "only \(available) bytes available at ring offset \(offset), less than a descriptor and trailer"
        case .invalidDescriptor(let offset, let field, let value):
            return "packet at ring offset \(offset): invalid value \(value) in \(field)"
        case .packetExceedsAvailable(let offset, let length, let available):
            return "packet at ring offset \(offset) claims \(length) bytes plus trailer, only \(available) available"
        case .ownIndexChanged(let field, let value, let expected):
            return "\(field) was rewritten by the peer to 0x\(String(value, radix: 16)); we last stored 0x\(String(expected, radix: 16))"
        case .writeIndexRewound(let value, let previous):
            return "write_index moved back to 0x\(String(value, radix: 16)) from 0x\(String(previous, radix: 16))"
        }
    }
}

/// Why a ring operation did not happen.
///
/// ``full(needed:available:)`` and ``tooLarge(_:)`` leave the ring usable; ``corrupt(_:)`` is final for the ring;
/// ``badMemory(_:)`` comes only from building a ``RingMemory``.
public enum RingError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The peer corrupted the ring; the ring refuses all further work.
    case corrupt(RingCorruption)
    /// The packet needs `needed` bytes (descriptor, header, payload, padding and trailer) but only `available` are
    /// free. The ring is never filled completely, so a write needs `available > needed`.
    case full(needed: Int, available: Int)
    /// A packet of this many bytes can never be written to this ring (outgoing), or does not fit the caller's
    /// ``PacketBuffer`` (incoming; nothing was consumed, retry with a larger buffer).
    case tooLarge(Int)
    /// The memory given for a ring is unusable (size, alignment or page list).
    case badMemory(String)

    public var description: String {
        switch self {
        case .corrupt(let c): return "ring corrupt: \(c)"
        case .full(let needed, let available): return "ring full: \(needed) bytes needed, \(available) free"
        case .tooLarge(let n): return "packet of \(n) bytes is too large"
        case .badMemory(let why): return "unusable ring memory: \(why)"
        }
    }
}

extension RingCorruption {
    /// Maps the error of `PacketDescriptor.validate()` to the corruption it reveals at ring offset `offset`.
    static func descriptor(_ error: WireError, at offset: Int) -> RingCorruption {
        switch error {
        case .invalidValue(let field, let value):
            return .invalidDescriptor(offset: offset, field: field, value: value)
        case .truncated(_, let needed, let available):
            return .invalidDescriptor(offset: offset, field: "truncated \(needed)", value: UInt64(available))
        case .countTooLarge(let field, let count, _):
            return .invalidDescriptor(offset: offset, field: field, value: UInt64(count))
        }
    }
}
