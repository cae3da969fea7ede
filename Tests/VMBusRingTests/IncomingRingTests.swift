import Testing
import VMBusProtocol
import VMBusWire
@testable import VMBusRing

@Suite struct IncomingRingTests {
    @Test func nextReturnsNilOnAnEmptyRingAndCommitDoesNothing() throws {
        let ring = try TestRing()
        var batch = try ring.reader.beginRead()
        #expect(try ring.reader.next(&batch, into: PacketBuffer()) == nil)
        #expect(!ring.reader.commit(batch))
        #expect(ring.controlWord(4) == 0)
        #expect(try ring.reader.isEmpty())
        #expect(try ring.reader.bytesAvailable == 0)
    }

    @Test func nextCopiesDescriptorHeaderAndPayloadIntoThePacketBuffer() throws {
        let ring = try TestRing()
        let header: [UInt8] = [0, 0, 0, 0, 1, 0, 0, 0]
        try send(ring.writer, Array(1...20), type: .dataUsingGPADirect, flags: 1, transactionID: 42, header: header)
        #expect(try ring.reader.bytesAvailable == 16 + 8 + 24 + 8)
        let buffer = PacketBuffer(capacity: 128)
        var batch = try ring.reader.beginRead()
        let p = try #require(try ring.reader.next(&batch, into: buffer))
        #expect(p.descriptor == PacketDescriptor(type: .dataUsingGPADirect, offset8: 3, len8: 6, flags: 1, transactionID: 42))
        #expect(p.length == 48)
        #expect(p.payloadOffset == 24)
        #expect(p.payloadLength == 24)
        #expect(p.headerRange == 16..<24)
        #expect(buffer.bytes(p.headerRange) == header)
        #expect(buffer.payloadArray(of: p) == Array(1...20) + [0, 0, 0, 0])
        var reader = buffer.wireReader(for: p)
        #expect(try reader.readUInt32() == 0x0403_0201)
        #expect(reader.remaining == 20)
        var whole = buffer.wireReader(wholePacket: p)
        #expect(try whole.read(PacketDescriptor.self) == p.descriptor)
        var out = [UInt8](repeating: 0, count: 8)
        let n = out.withUnsafeMutableBytes { buffer.copy(payloadOf: p, to: $0.baseAddress!, maxCount: 8, skipping: 18) }
        #expect(n == 6)
        #expect(Array(out[0..<6]) == [19, 20, 0, 0, 0, 0])
        buffer.withUnsafeBytes(of: p) { #expect($0.count == 48) }
        #expect(try ring.reader.next(&batch, into: buffer) == nil)
        #expect(batch.packetCount == 1)
        _ = ring.reader.commit(batch)
        #expect(try ring.reader.isEmpty())
    }

    @Test func aDroppedReadBatchLeavesThePacketsInTheRing() throws {
        let ring = try TestRing()
        try send(ring.writer, [1])
        try send(ring.writer, [2])
        do {
            var batch = try ring.reader.beginRead()
            _ = try ring.reader.next(&batch, into: PacketBuffer())
        }
        #expect(ring.controlWord(4) == 0)
        let got = try receiveAll(ring.reader)
        #expect(got.packets.map { $0.1[0] } == [1, 2])
    }

    @Test func aPacketLargerThanTheBufferIsRefusedWithoutConsumingIt() throws {
        let ring = try TestRing()
        try send(ring.writer, [UInt8](repeating: 7, count: 100))
        var batch = try ring.reader.beginRead()
        #expect(throws: RingError.tooLarge(120)) { try ring.reader.next(&batch, into: PacketBuffer(capacity: 64)) }
        #expect(!ring.reader.isCorrupt)
        let big = PacketBuffer(capacity: 120)
        let p = try #require(try ring.reader.next(&batch, into: big))
        #expect(big.payloadArray(of: p) == [UInt8](repeating: 7, count: 100) + [0, 0, 0, 0])
    }

    @Test func theWriteIndexIsReloadedWhenTheBatchRunsOut() throws {
        let ring = try TestRing()
        var batch = try ring.reader.beginRead()
        let buffer = PacketBuffer()
        #expect(try ring.reader.next(&batch, into: buffer) == nil)
        try send(ring.writer, [5])
        let p = try #require(try ring.reader.next(&batch, into: buffer))
        #expect(buffer.payloadArray(of: p)[0] == 5)
    }

    @Test func theTrailerIsIgnored() throws {
        let ring = try TestRing()
        try send(ring.writer, [1, 2, 3, 4, 5, 6, 7, 8])
        ring.pokeData(24, [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
        try send(ring.writer, [9])
        let got = try receiveAll(ring.reader)
        #expect(got.packets.map { $0.1[0] } == [1, 9])
    }
}
