import Testing
import VMBusMemory
import VMBusProtocol
@testable import VMBusRing

/// Each end keeps a private copy of the index it owns (Linux's `priv_read_index`): a peer that rewrites it in
/// shared memory corrupts the ring instead of making us read old packets again or overwrite unread ones.
@Suite struct RingOwnIndexTests {
    @Test func aRewrittenReadIndexIsCorruptionNotAReplay() throws {
        let ring = try TestRing(dataPages: 1)
        _ = try send(ring.writer, [1])
        _ = try send(ring.writer, [2])
        #expect(try receiveAll(ring.reader).packets.count == 2)
        ring.setControlWord(4, 0)
        let expected = RingCorruption.ownIndexChanged(field: "read_index", value: 0, expected: 64)
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.reader.beginRead() }
        #expect(ring.reader.corruption == expected)
    }

    @Test func aRewrittenWriteIndexOfOurOutgoingRingIsCorruption() throws {
        let ring = try TestRing(dataPages: 1)
        _ = try send(ring.writer, [1])
        ring.setControlWord(0, 0)
        let expected = RingCorruption.ownIndexChanged(field: "write_index", value: 0, expected: 32)
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.writer.beginWrite() }
        #expect(throws: RingError.corrupt(expected)) { _ = try ring.writer.freeBytes() }
    }

    @Test func aWriterThatMovesItsWriteIndexBackIsCaught() throws {
        let ring = try TestRing(dataPages: 1)
        for b: UInt8 in 1...3 { _ = try send(ring.writer, [b]) }
        #expect(try ring.reader.bytesAvailable == 96)
        ring.setControlWord(0, 32)
        #expect(throws: RingError.corrupt(.writeIndexRewound(32, previous: 96))) { _ = try ring.reader.beginRead() }
    }

    @Test func theIndicesAreAdoptedOnFirstUseSoARepositionedRingWorks() throws {
        let ring = try TestRing(dataPages: 1)
        ring.position(at: 4000)
        _ = try send(ring.writer, [1, 2, 3])
        #expect(try receiveAll(ring.reader).packets.map { $0.1[0] } == [1])
        #expect(ring.controlWord(4) == ring.controlWord(0))
    }

    @Test func packetsHandedOutBeforeACorruptOneAreCommitted() throws {
        let ring = try TestRing(dataPages: 1)
        _ = try send(ring.writer, [1])
        _ = try send(ring.writer, [2])
        _ = try send(ring.writer, [3])
        // The third descriptor gets an unknown type.
        ring.pokeData(64, [0x63, 0, 2, 0, 3, 0, 0, 0])
        var batch = try ring.reader.beginRead()
        let buffer = PacketBuffer()
        #expect(try ring.reader.next(&batch, into: buffer) != nil)
        #expect(try ring.reader.next(&batch, into: buffer) != nil)
        #expect(throws: RingError.self) { _ = try ring.reader.next(&batch, into: buffer) }
        #expect(!ring.reader.commit(batch), "a corrupt ring signals nobody")
        #expect(ring.controlWord(4) == 64, "the two delivered packets are consumed")
    }

    @Test func aRingOrGPARangeOnAReservedPageIsRefused() throws {
        let memory = try GuestMemory(pages: 8)
        memory.reserve(pfn: 3)
        #expect(memory.isReserved(pfn: 3) && !memory.isReserved(pfn: 2))
        #expect(throws: RingError.self) { _ = try memory.ringMemory(pfns: [2, 3, 4][...]) }
        _ = try memory.ringMemory(pfns: [2, 4, 5][...])
        var out = [UInt8](repeating: 0, count: 16)
        #expect(throws: MemoryError.reservedPage(pfn: 3)) {
            try out.withUnsafeMutableBytes { _ = try memory.copy(from: [GPARange(wholePages: [3])], to: $0) }
        }
    }
}
