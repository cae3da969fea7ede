import Testing
import VMBusProtocol
@testable import VMBusRing

@Suite struct OutgoingRingTests {
    @Test func appendLaysOutDescriptorHeaderPayloadPaddingAndTrailerLikeLinux() throws {
        let ring = try TestRing()
        ring.position(at: 64)
        let header: [UInt8] = Array(1...16)
        let payload: [UInt8] = Array(101...111)  // 11 bytes: 5 bytes of padding
        try send(ring.writer, payload, type: .dataUsingGPADirect, flags: 1, transactionID: 0xABCD, header: header)
        let d = ring.dataBytes()
        let packet = Array(d[64..<(64 + 56)])
        // 16 + 16 + 11 = 43 -> len8 = 6 (48 bytes); offset8 = (16 + 16) / 8 = 4.
        #expect(Array(packet[0..<16]) == [9, 0, 4, 0, 6, 0, 1, 0, 0xCD, 0xAB, 0, 0, 0, 0, 0, 0])
        #expect(Array(packet[16..<32]) == header)
        #expect(Array(packet[32..<43]) == payload)
        #expect(Array(packet[43..<48]) == [0, 0, 0, 0, 0])
        #expect(Array(packet[48..<56]) == [0, 0, 0, 0, 64, 0, 0, 0])  // trailer: start offset << 32
        #expect(ring.controlWord(0) == 64 + 56)
    }

    @Test func paddingIsZeroEvenWhenTheRingHeldOtherBytes() throws {
        let ring = try TestRing(dataPages: 1)
        ring.pokeData(0, [UInt8](repeating: 0xFF, count: 4096))
        try send(ring.writer, [1, 2, 3])
        let d = ring.dataBytes()
        #expect(Array(d[16..<24]) == [1, 2, 3, 0, 0, 0, 0, 0])
        #expect(Array(d[24..<32]) == [0, 0, 0, 0, 0, 0, 0, 0])
        #expect(d[32] == 0xFF)
    }

    @Test func payloadPartsAreWrittenExactlyLikeOneConcatenatedPayload() throws {
        let a = try TestRing(), b = try TestRing()
        let p1: [UInt8] = Array(0..<13), p2: [UInt8] = Array(50..<77)
        try send(a.writer, p1 + p2, transactionID: 5)
        var batch = try b.writer.beginWrite()
        try p1.withUnsafeBytes { x in
            try p2.withUnsafeBytes { y in
                try b.writer.append(&batch, type: .dataInband, flags: 0, transactionID: 5,
                                    header: UnsafeRawBufferPointer(start: nil, count: 0), payloadParts: (x, y))
            }
        }
        _ = b.writer.commit(batch)
        #expect(a.dataBytes() == b.dataBytes())
        #expect(a.controlWord(0) == b.controlWord(0))
    }

    @Test func packetsWrapAroundTheEndOfTheDataArea() throws {
        let ring = try TestRing(dataPages: 1)
        ring.position(at: 4096 - 24)
        let payload: [UInt8] = Array(1...40)
        try send(ring.writer, payload, transactionID: 77)
        let d = ring.dataBytes()
        #expect(Array(d[(4096 - 24)..<(4096 - 16)]) == [6, 0, 2, 0, 7, 0, 0, 0])
        #expect(Array(d[(4096 - 8)..<4096]) == Array(payload[0..<8]))
        #expect(Array(d[0..<32]) == Array(payload[8..<40]))
        #expect(Array(d[32..<40]) == [0, 0, 0, 0, 0xE8, 0x0F, 0, 0])  // trailer: 4072 << 32
        #expect(ring.controlWord(0) == 40)
        let got = try receiveAll(ring.reader)
        #expect(got.packets.count == 1)
        #expect(got.packets[0].1 == payload)
        #expect(got.packets[0].0.transactionID == 77)
    }

    /// PROTOCOL.md §5.1: a write needs free space strictly greater than the packet (Linux `avail <= total`).
    @Test func theRingIsNeverFilledCompletely() throws {
        let ring = try TestRing(dataPages: 1)
        // free = 4096. A packet of exactly 4096 - 8 ring bytes fits, one of 4096 does not (and is too large).
        let big = 4096 - 8 - 16 - 8
        var batch = try ring.writer.beginWrite()
        #expect(throws: RingError.tooLarge(4096)) {
            try append(ring.writer, &batch, [UInt8](repeating: 1, count: big + 8))
        }
        try append(ring.writer, &batch, [UInt8](repeating: 1, count: big))
        _ = ring.writer.commit(batch)
        #expect(try ring.writer.freeBytes() == 8)
        _ = try receiveAll(ring.reader)
        #expect(try ring.writer.freeBytes() == 4096)

        // Now leave exactly 40 bytes free; a 40-byte packet (16 + 16 + 8) must fail, a 32-byte one fits.
        try send(ring.writer, [UInt8](repeating: 2, count: 4096 - 40 - 24))
        #expect(try ring.writer.freeBytes() == 40)
        #expect(throws: RingError.full(needed: 40, available: 40)) { try send(ring.writer, [UInt8](repeating: 3, count: 16)) }
        try send(ring.writer, [UInt8](repeating: 3, count: 8))
        #expect(try ring.writer.freeBytes() == 8)
        #expect(throws: RingError.full(needed: 24, available: 8)) { try send(ring.writer, []) }
    }

    @Test func aDroppedBatchRevertsEveryPacketItHeld() throws {
        let ring = try TestRing()
        do {
            var batch = try ring.writer.beginWrite()
            for i in 0..<5 { try append(ring.writer, &batch, [UInt8](repeating: UInt8(i), count: 30)) }
            #expect(batch.packetCount == 5)
            // Dropped without commit.
        }
        #expect(ring.controlWord(0) == 0)
        #expect(try ring.reader.isEmpty())
        var batch = try ring.writer.beginWrite()
        #expect(batch.startOffset == 0)
        try append(ring.writer, &batch, [9])
        #expect(!ring.writer.commit(try ring.writer.beginWrite()))  // an empty batch publishes nothing
        #expect(ring.writer.commit(batch))
        let got = try receiveAll(ring.reader)
        #expect(got.packets.map(\.1) == [[9, 0, 0, 0, 0, 0, 0, 0]])
    }

    @Test func aFullBatchLeavesTheAppendedPacketsIntact() throws {
        let ring = try TestRing(dataPages: 1)
        var batch = try ring.writer.beginWrite()
        var written = 0
        while written <= 4096 / 128 {
            do {
                try append(ring.writer, &batch, [UInt8](repeating: UInt8(written), count: 100))
                written += 1
            } catch {
                #expect(error == .full(needed: 128, available: 128))
                break
            }
        }
        #expect(written == 4096 / 128 - 1)
        _ = ring.writer.commit(batch)
        let got = try receiveAll(ring.reader)
        #expect(got.packets.count == written)
        for (i, p) in got.packets.enumerated() { #expect(p.1 == [UInt8](repeating: UInt8(i), count: 100) + [0, 0, 0, 0]) }
    }

    @Test func bytesNeededCountsDescriptorHeaderPaddedPayloadAndTrailer() {
        #expect(OutgoingRing.bytesNeeded(payloadCount: 0) == 24)
        #expect(OutgoingRing.bytesNeeded(payloadCount: 1) == 32)
        #expect(OutgoingRing.bytesNeeded(payloadCount: 8) == 32)
        #expect(OutgoingRing.bytesNeeded(headerCount: 16, payloadCount: 9) == 56)
    }

    @Test func packetsLargerThanLen8CanDescribeAreTooLarge() throws {
        let ring = try TestRing(dataPages: 200)
        #expect(ring.writer.maximumPacketBytes == 65535 * 8 + 8)
        let payload = UnsafeMutableRawBufferPointer.allocate(byteCount: 65535 * 8, alignment: 8)
        defer { payload.deallocate() }
        var batch = try ring.writer.beginWrite()
        #expect(throws: RingError.tooLarge(65538 * 8)) {
            try ring.writer.append(&batch, type: .dataInband, flags: 0, transactionID: 0,
                                   payload: UnsafeRawBufferPointer(payload))
        }
        try ring.writer.append(&batch, type: .dataInband, flags: 0, transactionID: 0,
                               payload: UnsafeRawBufferPointer(rebasing: payload[0..<(65535 * 8 - 16)]))
        #expect(ring.writer.commit(batch))
        #expect(ring.controlWord(0) == 65535 * 8 + 8)
    }
}
