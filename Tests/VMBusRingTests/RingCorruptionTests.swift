import Testing
import VMBusProtocol
@testable import VMBusRing

/// A peer that scribbles over the ring puts it in a permanent error state; nothing traps (PROTOCOL.md §13).
@Suite struct RingCorruptionTests {
    /// Raw descriptor bytes: type, offset8, len8, flags, then a zero transaction id.
    func descriptor(type: UInt16, offset8: UInt16, len8: UInt16, flags: UInt16) -> [UInt8] {
        var b: [UInt8] = []
        for v in [type, offset8, len8, flags] { b += [UInt8(v & 0xFF), UInt8(v >> 8)] }
        return b + [UInt8](repeating: 0, count: 8)
    }

    /// Publishes `bytes` as if a peer had written them at offset 0, with write_index = `writeIndex`.
    func forge(_ ring: TestRing, _ bytes: [UInt8], writeIndex: UInt32) {
        ring.pokeData(0, bytes)
        ring.setControlWord(0, writeIndex)
    }

    func expectStaysCorrupt(_ ring: IncomingRing, _ expected: RingCorruption) {
        #expect(ring.isCorrupt)
        #expect(ring.corruption == expected)
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.beginRead() }
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.isEmpty() }
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.bytesAvailable }
        #expect(ring.unmaskInterrupts(), "a corrupt ring reports work so the caller sees the error")
    }

    @Test(arguments: [UInt32(4096), 4100, 12, 0xFFFF_FFF8])
    func anInvalidWriteIndexCorruptsTheIncomingRing(index: UInt32) throws {
        let ring = try TestRing(dataPages: 1)
        ring.setControlWord(0, index)
        #expect(throws: RingError.corrupt(.writeIndex(index, dataSize: 4096))) { _ = try ring.reader.beginRead() }
        expectStaysCorrupt(ring.reader, .writeIndex(index, dataSize: 4096))
    }

    @Test(arguments: [UInt32(4096), 3, 0x8000_0000])
    func anInvalidReadIndexCorruptsTheOutgoingRing(index: UInt32) throws {
        let ring = try TestRing(dataPages: 1)
        ring.setControlWord(4, index)
        let expected = RingCorruption.readIndex(index, dataSize: 4096)
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.writer.beginWrite() }
        #expect(ring.writer.isCorrupt)
        ring.setControlWord(4, 0)  // even after the peer "repairs" it, the ring stays in the error state
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.writer.beginWrite() }
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.writer.freeBytes() }
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.writer.waitSpaceNeeded(bytes: 64) }
    }

    @Test func aReadIndexChangedMidBatchToAnInvalidValueIsCaughtWhenReloaded() throws {
        let ring = try TestRing(dataPages: 1)
        var batch = try ring.writer.beginWrite()
        ring.setControlWord(4, 17)
        // Enough cached room: no reload yet.
        try append(ring.writer, &batch, [1])
        // A packet that needs a reload sees the bad index.
        #expect(throws: RingError.corrupt(.readIndex(17, dataSize: 4096))) {
            try append(ring.writer, &batch, [UInt8](repeating: 0, count: 4048))
        }
        #expect(!ring.writer.commit(batch), "a corrupt ring publishes nothing")
        #expect(ring.controlWord(0) == 0)
    }

    @Test func anOwnIndexOutOfRangeIsAlsoCorruption() throws {
        let ring = try TestRing(dataPages: 1)
        ring.setControlWord(0, 4104)
        #expect(throws: RingError.corrupt(.writeIndex(4104, dataSize: 4096))) { _ = try ring.writer.beginWrite() }
        let other = try TestRing(dataPages: 1)
        other.setControlWord(4, 9)
        #expect(throws: RingError.corrupt(.readIndex(9, dataSize: 4096))) { _ = try other.reader.beginRead() }
    }

    @Test func len8SmallerThanOffset8IsCorruption() throws {
        let ring = try TestRing(dataPages: 1)
        forge(ring, descriptor(type: 6, offset8: 3, len8: 2, flags: 0) + [UInt8](repeating: 0, count: 16), writeIndex: 32)
        var batch = try ring.reader.beginRead()
        let expected = RingCorruption.invalidDescriptor(offset: 0, field: "vmpacket_descriptor.len8", value: 2)
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.reader.next(&batch, into: PacketBuffer()) }
        expectStaysCorrupt(ring.reader, expected)
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.reader.next(&batch, into: PacketBuffer()) }
        #expect(!ring.reader.commit(batch))
        #expect(ring.controlWord(4) == 0, "nothing was consumed")
    }

    @Test(arguments: [UInt16(0), 1])
    func offset8BelowTheDescriptorIsCorruption(offset8: UInt16) throws {
        let ring = try TestRing(dataPages: 1)
        forge(ring, descriptor(type: 6, offset8: offset8, len8: 2, flags: 0) + [0, 0, 0, 0, 0, 0, 0, 0], writeIndex: 24)
        var batch = try ring.reader.beginRead()
        let expected = RingCorruption.invalidDescriptor(offset: 0, field: "vmpacket_descriptor.offset8", value: UInt64(offset8))
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.reader.next(&batch, into: PacketBuffer()) }
        expectStaysCorrupt(ring.reader, expected)
    }

    @Test(arguments: [UInt16(0), 1, 5, 8, 10, 12, 0xFFFF])
    func anUnknownPacketTypeIsCorruption(type: UInt16) throws {
        let ring = try TestRing(dataPages: 1)
        forge(ring, descriptor(type: type, offset8: 2, len8: 2, flags: 0) + [0, 0, 0, 0, 0, 0, 0, 0], writeIndex: 24)
        var batch = try ring.reader.beginRead()
        let expected = RingCorruption.invalidDescriptor(offset: 0, field: "vmpacket_descriptor.type", value: UInt64(type))
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.reader.next(&batch, into: PacketBuffer()) }
        expectStaysCorrupt(ring.reader, expected)
    }

    @Test(arguments: [UInt16(2), 3, 0x8000])
    func unknownFlagsAreCorruption(flags: UInt16) throws {
        let ring = try TestRing(dataPages: 1)
        forge(ring, descriptor(type: 11, offset8: 2, len8: 2, flags: flags) + [0, 0, 0, 0, 0, 0, 0, 0], writeIndex: 24)
        var batch = try ring.reader.beginRead()
        let expected = RingCorruption.invalidDescriptor(offset: 0, field: "vmpacket_descriptor.flags", value: UInt64(flags))
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.reader.next(&batch, into: PacketBuffer()) }
        expectStaysCorrupt(ring.reader, expected)
    }

    @Test func len8BeyondTheAvailableBytesIsCorruption() throws {
        let ring = try TestRing(dataPages: 1)
        // Claims 5 words (40 bytes) but only 40 bytes are published: no room for the trailer.
        forge(ring, descriptor(type: 6, offset8: 2, len8: 5, flags: 0) + [UInt8](repeating: 0, count: 24), writeIndex: 40)
        var batch = try ring.reader.beginRead()
        let expected = RingCorruption.packetExceedsAvailable(offset: 0, length: 40, available: 40)
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.reader.next(&batch, into: PacketBuffer()) }
        expectStaysCorrupt(ring.reader, expected)
    }

    @Test func len8LargerThanTheWholeRingIsCorruption() throws {
        let ring = try TestRing(dataPages: 1)
        forge(ring, descriptor(type: 6, offset8: 2, len8: 0xFFFF, flags: 0) + [0, 0, 0, 0, 0, 0, 0, 0], writeIndex: 24)
        var batch = try ring.reader.beginRead()
        let expected = RingCorruption.packetExceedsAvailable(offset: 0, length: 0xFFFF * 8, available: 24)
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.reader.next(&batch, into: PacketBuffer(capacity: 1 << 20)) }
        expectStaysCorrupt(ring.reader, expected)
    }

    @Test func fewerBytesThanADescriptorAndTrailerIsCorruption() throws {
        let ring = try TestRing(dataPages: 1)
        forge(ring, descriptor(type: 6, offset8: 2, len8: 2, flags: 0), writeIndex: 16)
        var batch = try ring.reader.beginRead()
        let expected = RingCorruption.truncatedPacket(offset: 0, available: 16)
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.reader.next(&batch, into: PacketBuffer()) }
        expectStaysCorrupt(ring.reader, expected)
    }

    @Test func goodPacketsBeforeACorruptOneAreDelivered() throws {
        let ring = try TestRing(dataPages: 1)
        try send(ring.writer, [1, 2, 3])
        try send(ring.writer, [4])
        ring.pokeData(32, descriptor(type: 6, offset8: 2, len8: 1, flags: 0))
        var batch = try ring.reader.beginRead()
        let buffer = PacketBuffer()
        let first = try #require(try ring.reader.next(&batch, into: buffer))
        #expect(buffer.payloadArray(of: first)[0] == 1)
        #expect(throws: RingError.self) { _ = try ring.reader.next(&batch, into: buffer) }
        #expect(ring.reader.isCorrupt)
    }

    @Test func anInvalidWriteIndexSeenWhileCommittingCorruptsTheIncomingRing() throws {
        let ring = try TestRing(dataPages: 1)
        try send(ring.writer, [1])
        ring.writer.setPendingSendSize(64)
        var batch = try ring.reader.beginRead()
        _ = try ring.reader.next(&batch, into: PacketBuffer())
        ring.setControlWord(0, 4097)
        #expect(!ring.reader.commit(batch))
        #expect(ring.reader.corruption == .writeIndex(4097, dataSize: 4096))
    }
}
