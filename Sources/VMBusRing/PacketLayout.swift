import VMBusProtocol

/// Where a packet's bytes go, by offset from the packet's start: the ring's data area in general (wrapping, page by
/// page), or one plain range when the packet fits in one. ``PacketLayout/write(into:)`` is written once against
/// this and specialised for both.
protocol PacketBytes {
    /// Stores a little-endian word at 8-aligned packet offset `offset`.
    mutating func storeWord(_ value: UInt64, at offset: Int)
    /// Copies `count` bytes from `source` to packet offset `offset`.
    mutating func copyIn(_ source: UnsafeRawPointer, count: Int, at offset: Int)
}

struct RingPacketBytes: PacketBytes {
    let memory: RingMemory
    let start: Int
    @inline(__always) func storeWord(_ value: UInt64, at offset: Int) {
        memory.storeWord(value, at: memory.advance(start, by: offset))
    }
    @inline(__always) func copyIn(_ source: UnsafeRawPointer, count: Int, at offset: Int) {
        memory.copyIn(to: memory.advance(start, by: offset), from: source, count: count)
    }
}

struct ContiguousPacketBytes: PacketBytes {
    let base: UnsafeMutableRawPointer
    @inline(__always) func storeWord(_ value: UInt64, at offset: Int) {
        (base + offset).storeBytes(of: value.littleEndian, as: UInt64.self)
    }
    @inline(__always) func copyIn(_ source: UnsafeRawPointer, count: Int, at offset: Int) {
        (base + offset).copyMemory(from: source, byteCount: count)
    }
}

/// One packet as Linux lays it out: descriptor, type-specific header, payload parts, zero padding, trailer.
struct PacketLayout {
    let descriptor: UInt64
    let transactionID: UInt64
    let header: UnsafeRawBufferPointer
    let payloadParts: (UnsafeRawBufferPointer, UnsafeRawBufferPointer)
    /// Descriptor, header and payload padded to 8 (where the trailer goes).
    let packetLength: Int
    /// The packet's data offset in the ring (the trailer records it).
    let start: Int

    @inline(__always)
    func write<B: PacketBytes>(into bytes: inout B) {
        bytes.storeWord(descriptor, at: 0)
        bytes.storeWord(transactionID, at: 8)
        var at = PacketDescriptor.wireSize
        if header.count > 0, let h = header.baseAddress {
            bytes.copyIn(h, count: header.count, at: at)
            at += header.count
        }
        let payloadCount = payloadParts.0.count + payloadParts.1.count
        if payloadCount & 7 != 0 {
            // Zero the last payload word first; the payload copy then leaves only the padding zero.
            bytes.storeWord(0, at: at + (payloadCount & ~7))
        }
        if payloadParts.0.count > 0, let p = payloadParts.0.baseAddress {
            bytes.copyIn(p, count: payloadParts.0.count, at: at)
            at += payloadParts.0.count
        }
        if payloadParts.1.count > 0, let p = payloadParts.1.baseAddress {
            bytes.copyIn(p, count: payloadParts.1.count, at: at)
        }
        // Trailer: the packet's start offset in the high 32 bits (Linux `prev_indices`).
        bytes.storeWord(UInt64(start) << 32, at: packetLength)
    }
}
