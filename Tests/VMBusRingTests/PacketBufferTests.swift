import Testing
import VMBusProtocol
@testable import VMBusRing

@Suite struct PacketBufferTests {
    @Test func aBufferHoldsOnePacketAtATimeAndReadersKeepTheirSnapshot() throws {
        let ring = try TestRing()
        try send(ring.writer, [1, 1, 1, 1, 1, 1, 1, 1])
        try send(ring.writer, [2, 2, 2, 2, 2, 2, 2, 2])
        let buffer = PacketBuffer(capacity: 64)
        var batch = try ring.reader.beginRead()
        let first = try #require(try ring.reader.next(&batch, into: buffer))
        var reader = buffer.wireReader(for: first)
        let second = try #require(try ring.reader.next(&batch, into: buffer))
        // The reader made before the refill still sees the first packet (the refill copied the storage).
        #expect(try reader.readUInt64() == 0x0101_0101_0101_0101)
        #expect(buffer.payloadArray(of: second) == [2, 2, 2, 2, 2, 2, 2, 2])
        #expect(buffer.capacity == 64)
    }

    @Test func usingAReceivedPacketAfterItsBufferWasRefilledTraps() async {
        await #expect(processExitsWith: .failure) {
            let ring = try TestRing()
            try send(ring.writer, [1])
            try send(ring.writer, [2])
            let buffer = PacketBuffer()
            var batch = try ring.reader.beginRead()
            let first = try #require(try ring.reader.next(&batch, into: buffer))
            _ = try ring.reader.next(&batch, into: buffer)
            _ = buffer.payloadArray(of: first)
        }
    }
}
