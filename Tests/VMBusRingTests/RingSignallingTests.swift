import Testing
import VMBusProtocol
@testable import VMBusRing

/// When each end must ring the other's doorbell (PROTOCOL.md §5.2 step 4, §5.3 steps 3-5).
@Suite struct RingSignallingTests {
    // MARK: Writer -> reader ("data available")

    @Test func theWriterSignalsOnlyWhenTheRingGoesFromEmptyToNonEmpty() throws {
        let ring = try TestRing()
        #expect(try send(ring.writer, [1]) == true)
        #expect(try send(ring.writer, [2]) == false)
        #expect(try send(ring.writer, [3]) == false)
        _ = try receiveAll(ring.reader)
        #expect(try send(ring.writer, [4]) == true)
    }

    @Test func aBatchOfManyPacketsSignalsOnce() throws {
        let ring = try TestRing()
        var batch = try ring.writer.beginWrite()
        for i in 0..<10 { try append(ring.writer, &batch, [UInt8(i)]) }
        #expect(ring.writer.commit(batch) == true)
        var second = try ring.writer.beginWrite()
        for i in 0..<10 { try append(ring.writer, &second, [UInt8(i)]) }
        #expect(ring.writer.commit(second) == false)
    }

    @Test func theWriterDoesNotSignalWhileTheReaderHasInterruptsMasked() throws {
        let ring = try TestRing()
        ring.reader.maskInterrupts()
        #expect(try send(ring.writer, [1]) == false)
        _ = try receiveAll(ring.reader)
        #expect(try send(ring.writer, [2]) == false)
        #expect(ring.reader.unmaskInterrupts() == true, "the packet sent while masked must not be lost")
        _ = try receiveAll(ring.reader)
        #expect(ring.reader.unmaskInterrupts() == false)
        #expect(try send(ring.writer, [3]) == true)
    }

    /// Linux `hv_signal_on_write` compares the read index seen after the barrier with the batch's start: a
    /// reader that drained the older packets meanwhile is about to sleep and needs the doorbell.
    @Test func theWriterSignalsIfTheReaderCaughtUpWhileTheBatchWasBeingWritten() throws {
        let ring = try TestRing()
        try send(ring.writer, [1])
        var batch = try ring.writer.beginWrite()
        try append(ring.writer, &batch, [2])
        _ = try receiveAll(ring.reader)  // the reader drains up to where the batch starts
        #expect(ring.writer.commit(batch) == true)
    }

    @Test func unmaskInterruptsReportsDataThatRacedIn() throws {
        let ring = try TestRing()
        #expect(ring.reader.unmaskInterrupts() == false)
        ring.reader.maskInterrupts()
        _ = try send(ring.writer, [1])
        #expect(ring.reader.unmaskInterrupts() == true)
        #expect(ring.controlWord(8) == 0)
    }

    // MARK: Reader -> writer ("space available")

    /// Fills the ring with 128-byte packets (100-byte payloads) until one no longer fits; returns how many.
    func fill(_ ring: TestRing) throws -> Int {
        var batch = try ring.writer.beginWrite()
        var n = 0
        // Bounded: a ring that never reports full must fail the test, not hang it.
        while n <= ring.dataSize / 128 {
            guard try appendUnlessFull(ring.writer, &batch, [UInt8](repeating: 1, count: 100)) else { break }
            n += 1
        }
        _ = ring.writer.commit(batch)
        return n
    }

    /// Reads `count` packets in one batch and returns the commit's decision.
    func read(_ ring: TestRing, _ count: Int) throws -> Bool {
        var batch = try ring.reader.beginRead()
        let buffer = PacketBuffer()
        for _ in 0..<count { _ = try #require(try ring.reader.next(&batch, into: buffer)) }
        return ring.reader.commit(batch)
    }

    @Test func theReaderSignalsOnlyWhenFreeSpaceCrossesPendingSendSize() throws {
        let ring = try TestRing(dataPages: 1)   // 4096 bytes: 31 packets of 128 leave 128 free
        #expect(try fill(ring) == 31)
        #expect(try ring.writer.freeBytes() == 128)
        #expect(try ring.writer.waitSpaceNeeded(bytes: 384) == true)   // wants room for 384 bytes: free > 384
        #expect(ring.controlWord(12) == 384)
        #expect(try read(ring, 1) == false)  // 128 -> 256: still not enough
        #expect(try read(ring, 1) == false)  // 256 -> 384: "exactly full" is not enough
        #expect(try read(ring, 1) == true)   // 384 -> 512: crossed
        #expect(try read(ring, 1) == false)  // 512 -> 640: already above, no second signal
        ring.writer.clearPendingSendSize()
        #expect(try read(ring, 1) == false)
    }

    @Test func oneBatchThatJumpsOverTheThresholdSignals() throws {
        let ring = try TestRing(dataPages: 1)
        _ = try fill(ring)
        ring.writer.setPendingSendSize(1000)
        #expect(try read(ring, 20) == true)
    }

    @Test func theReaderNeverSignalsIfTheWriterDidNotSetTheFeatureBit() throws {
        let ring = try TestRing(dataPages: 1)
        ring.setControlWord(64, 0)
        _ = try fill(ring)
        ring.writer.setPendingSendSize(200)
        #expect(try read(ring, 5) == false)
    }

    @Test func theReaderDoesNotSignalWithoutPendingSendSize() throws {
        let ring = try TestRing(dataPages: 1)
        _ = try fill(ring)
        #expect(try read(ring, 31) == false)
    }

    /// OpenVMM masks the low 3 bits because some writers store "ring size - 1" to be woken when the ring is empty.
    @Test func pendingSendSizeLowThreeBitsAreMasked() throws {
        let ring = try TestRing(dataPages: 1)
        _ = try fill(ring)
        ring.setControlWord(12, 4095)           // means 4088
        #expect(try read(ring, 30) == false)    // free 3968
        #expect(try read(ring, 1) == true)      // free 4096 > 4088
        let other = try TestRing(dataPages: 1)
        _ = try fill(other)
        other.setControlWord(12, 7)             // masks to 0: no request at all
        #expect(try read(other, 31) == false)
    }

    @Test func interruptMaskDoesNotSuppressTheSpaceAvailableSignal() throws {
        let ring = try TestRing(dataPages: 1)
        _ = try fill(ring)
        ring.writer.setPendingSendSize(256)
        ring.reader.maskInterrupts()
        #expect(try read(ring, 2) == true)
    }

    @Test func waitSpaceNeededClearsTheRequestWhenThereIsAlreadyRoom() throws {
        let ring = try TestRing(dataPages: 1)
        #expect(try ring.writer.waitSpaceNeeded(bytes: 128) == false)
        #expect(ring.controlWord(12) == 0)
        _ = try fill(ring)
        #expect(try ring.writer.waitSpaceNeeded(bytes: 128) == true)
        #expect(ring.controlWord(12) == 128)
    }
}
