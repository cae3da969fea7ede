import VMBusProtocol
import VMBusWire

/// One packet that ``IncomingRing/next(_:into:)`` copied into a ``PacketBuffer``.
///
/// Offsets are relative to the start of the buffer, where the 16-byte descriptor sits. The packet stays valid
/// until the next packet is copied into the same buffer; the buffer's accessors check that (a stale
/// `ReceivedPacket` is a programming error and traps).
public struct ReceivedPacket: Equatable, Sendable {
    /// The descriptor, validated (known type, `offset8 >= 2`, `len8 >= offset8`, known flags).
    public let descriptor: PacketDescriptor
    /// Bytes copied, descriptor included (`len8 * 8`; the trailer is not copied).
    public let length: Int
    /// Where the payload starts (`offset8 * 8`); bytes 16 up to here are the type-specific header
    /// (transfer-page or GPA-direct ranges).
    public let payloadOffset: Int
    /// Payload bytes (`(len8 - offset8) * 8`, so a multiple of 8; the true length is the device protocol's).
    public let payloadLength: Int
    /// Which fill of the buffer this packet is.
    @usableFromInline let generation: UInt64

    /// The range of the payload in the buffer.
    public var payloadRange: Range<Int> { payloadOffset..<(payloadOffset + payloadLength) }
    /// The range of the type-specific header between the descriptor and the payload (often empty).
    public var headerRange: Range<Int> { PacketDescriptor.wireSize..<payloadOffset }
}

/// A private, reusable, fixed-capacity buffer that incoming packets are copied into (Linux's `pkt_buffer`).
///
/// The ring copies each packet here once, so nothing is parsed in shared memory and the peer cannot change
/// bytes after they were checked. The capacity is the largest packet the channel accepts, descriptor included
/// (Linux's `max_pkt_size`, 4096 by default). One buffer holds one packet at a time; reuse it for every packet
/// so the data path does not allocate.
public final class PacketBuffer: @unchecked Sendable {
    /// The largest packet (descriptor included) this buffer takes.
    public let capacity: Int
    /// Backing bytes, always `capacity` long. An array so that ``wireReader(for:)`` can share it without copying.
    /// Not checked for exclusivity at run time (one packet, one thread at a time): see IncomingRing.corruption.
    @exclusivity(unchecked) @usableFromInline var storage: [UInt8]
    @exclusivity(unchecked) @usableFromInline private(set) var generation: UInt64 = 0

    /// Linux's default `max_pkt_size` (`VMBUS_DEFAULT_MAX_PKT_SIZE`).
    public static let defaultCapacity = 4096

    /// A buffer for packets of up to `capacity` bytes, descriptor included (at least 16).
    public init(capacity: Int = PacketBuffer.defaultCapacity) {
        precondition(capacity >= PacketDescriptor.wireSize, "a packet buffer must hold at least a descriptor")
        self.capacity = capacity
        self.storage = [UInt8](repeating: 0, count: capacity)
    }

    /// Starts a new fill: invalidates earlier `ReceivedPacket`s and gives the ring the bytes to write.
    @inline(__always)
    func fill<R>(_ body: (UnsafeMutableRawBufferPointer) throws(RingError) -> R) throws(RingError) -> R {
        generation &+= 1
        // Array's closure-taking methods are `rethrows` (untyped): carry the typed error out in a Result.
        return try storage.withUnsafeMutableBytes { raw in Result { () throws(RingError) -> R in try body(raw) } }.get()
    }

    @inlinable @inline(__always)
    func check(_ packet: ReceivedPacket) {
        precondition(packet.generation == generation, "ReceivedPacket used after its PacketBuffer was refilled")
    }

    /// Calls `body` with the bytes of `packet` (descriptor, header and payload). The pointer must not escape.
    ///
    /// Inlinable, as is the next one: unspecialised, each call instantiated `Result<R, E>`'s metadata at run
    /// time (about 650 instructions, twice per channel request; Scripts/callgrind-ring).
    @inlinable
    public func withUnsafeBytes<R, E: Error>(
        of packet: ReceivedPacket, _ body: (UnsafeRawBufferPointer) throws(E) -> R
    ) throws(E) -> R {
        check(packet)
        return try storage.withUnsafeBytes { raw in
            Result { () throws(E) -> R in try body(UnsafeRawBufferPointer(rebasing: raw[0..<packet.length])) }
        }.get()
    }

    /// Calls `body` with the whole buffer (`capacity` bytes; only the current packet's bytes are meaningful).
    @inlinable
    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try storage.withUnsafeBytes { raw in Result { () throws(E) -> R in try body(raw) } }.get()
    }

    /// Copies bytes `range` of the current packet into a new array (control paths and tests; allocates).
    public func bytes(_ range: Range<Int>) -> [UInt8] {
        precondition(range.lowerBound >= 0 && range.upperBound <= capacity, "range outside the packet buffer")
        return Array(storage[range])
    }

    /// The payload of `packet` as a new array (control paths; allocates).
    public func payloadArray(of packet: ReceivedPacket) -> [UInt8] {
        check(packet)
        return Array(storage[packet.payloadRange])
    }

    /// Copies up to `maxCount` payload bytes of `packet` to `destination`, starting `skipping` bytes into the
    /// payload; returns how many were copied (fewer when the payload is shorter).
    @discardableResult
    public func copy(
        payloadOf packet: ReceivedPacket, to destination: UnsafeMutableRawPointer, maxCount: Int, skipping: Int = 0
    ) -> Int {
        check(packet)
        precondition(maxCount >= 0 && skipping >= 0, "negative count")
        let n = max(0, min(maxCount, packet.payloadLength - skipping))
        guard n > 0 else { return 0 }
        storage.withUnsafeBytes { raw in
            destination.copyMemory(from: raw.baseAddress! + packet.payloadOffset + skipping, byteCount: n)
        }
        return n
    }

    /// A reader over the payload of `packet`. It shares the buffer's storage without copying; let it go before
    /// the next packet is read into this buffer, or that read will copy the storage once (an allocation).
    public func wireReader(for packet: ReceivedPacket) -> WireReader {
        check(packet)
        return WireReader(storage, start: packet.payloadOffset, end: packet.payloadOffset + packet.payloadLength)
    }

    /// A reader over the whole packet, descriptor first (type-specific headers such as transfer-page ranges).
    /// Same sharing rule as ``wireReader(for:)``.
    public func wireReader(wholePacket packet: ReceivedPacket) -> WireReader {
        check(packet)
        return WireReader(storage, start: 0, end: packet.length)
    }
}
