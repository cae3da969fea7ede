import Testing
import VMBusProtocol
@testable import VMBusRing

/// The control page must match Linux `struct hv_ring_buffer` byte for byte (PROTOCOL.md §5.1).
@Suite struct RingControlLayoutTests {
    @Test func initializeControlZeroesTheWordsAndSetsFeatureBitsAtOffset64() throws {
        let ring = try TestRing(dataPages: 1)
        for offset in stride(from: 0, to: 4096, by: 4) { ring.setControlWord(offset, 0xDEAD_BEEF) }
        OutgoingRing.initializeControl(ring.memory)
        #expect(ring.controlWord(0) == 0)
        #expect(ring.controlWord(4) == 0)
        #expect(ring.controlWord(8) == 0)
        #expect(ring.controlWord(12) == 0)
        #expect(ring.controlWord(64) == 1)
    }

    @Test func commitWritePublishesWriteIndexAtOffset0() throws {
        let ring = try TestRing()
        try send(ring.writer, [1, 2, 3, 4, 5, 6, 7, 8])
        #expect(ring.controlWord(0) == 16 + 8 + 8)
        #expect(ring.controlWord(4) == 0)
    }

    @Test func commitReadPublishesReadIndexAtOffset4() throws {
        let ring = try TestRing()
        try send(ring.writer, [UInt8](repeating: 9, count: 24))
        _ = try receiveAll(ring.reader)
        #expect(ring.controlWord(4) == 16 + 24 + 8)
        #expect(ring.controlWord(0) == 16 + 24 + 8)
    }

    @Test func maskInterruptsWritesInterruptMaskAtOffset8() throws {
        let ring = try TestRing()
        ring.reader.maskInterrupts()
        #expect(ring.controlWord(8) == 1)
        _ = ring.reader.unmaskInterrupts()
        #expect(ring.controlWord(8) == 0)
    }

    @Test func pendingSendSizeIsStoredAtOffset12RoundedUpTo8() throws {
        let ring = try TestRing()
        ring.writer.setPendingSendSize(100)
        #expect(ring.controlWord(12) == 104)
        ring.writer.clearPendingSendSize()
        #expect(ring.controlWord(12) == 0)
    }

    @Test func packetBytesStartAtOffset4096OfTheRing() throws {
        let ring = try TestRing()
        try send(ring.writer, [0xAA], type: .completion, flags: 1, transactionID: 0x1122_3344_5566_7788)
        let raw = ring.guest.base.advanced(by: 4096)
        let bytes = (0..<32).map { raw.load(fromByteOffset: $0, as: UInt8.self) }
        #expect(bytes == [
            11, 0, 2, 0, 3, 0, 1, 0,                            // type, offset8, len8, flags
            0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11,     // trans_id
            0xAA, 0, 0, 0, 0, 0, 0, 0,                          // payload, zero padding
            0, 0, 0, 0, 0, 0, 0, 0,                             // trailer: start offset 0 in the high half
        ])
    }
}

extension RingControlLayoutTests {
    @Test func controlSnapshotReportsTheFiveControlWords() throws {
        let ring = try TestRing()
        try send(ring.writer, [1])
        ring.reader.maskInterrupts()
        ring.writer.setPendingSendSize(64)
        #expect(ring.memory.controlSnapshot() == RingControlSnapshot(
            writeIndex: 32, readIndex: 0, interruptMask: 1, pendingSendSize: 64, featureBits: 1))
    }
}
