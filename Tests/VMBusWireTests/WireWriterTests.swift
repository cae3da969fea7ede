import Testing
import VMBusWire

@Suite struct WireWriterTests {
    @Test func writesIntegersLittleEndian() {
        var w = WireWriter()
        w.writeUInt8(0x01)
        w.writeUInt16(0x0302)
        w.writeUInt32(0x0706_0504)
        w.writeUInt64(0x0F0E_0D0C_0B0A_0908)
        #expect(w.bytes == Array(1...15))
        #expect(w.count == 15)
    }

    @Test func zerosAndPaddingAppendZeroBytes() {
        var w = WireWriter()
        w.writeUInt8(7)
        w.pad(toMultipleOf: 8)
        #expect(w.bytes == [7, 0, 0, 0, 0, 0, 0, 0])
        w.pad(toMultipleOf: 8)
        #expect(w.count == 8)
        w.writeZeros(3)
        #expect(w.count == 11)
    }

    @Test func setOverwritesBytesAlreadyWritten() {
        var w = WireWriter()
        w.writeZeros(8)
        w.setUInt16(0xBEEF, at: 1)
        w.setUInt32(0x1122_3344, at: 4)
        #expect(w.bytes == [0, 0xEF, 0xBE, 0, 0x44, 0x33, 0x22, 0x11])
    }

    @Test func resetEmptiesTheBufferButKeepsItsCapacity() {
        var w = WireWriter(capacity: 16)
        w.writeBytes([1, 2, 3])
        w.reset()
        #expect(w.count == 0)
        #expect(w.bytes.capacity >= 16)
        let reused = WireWriter(reusing: [1, 2, 3, 4])
        #expect(reused.count == 0)
    }

    @Test func readerDecodesWhatTheWriterEncoded() throws {
        var w = WireWriter()
        for v in [UInt64.min, 1, 0x8000_0000_0000_0000, .max] { w.writeUInt64(v) }
        var r = WireReader(w.bytes)
        for v in [UInt64.min, 1, 0x8000_0000_0000_0000, .max] { #expect(try r.readUInt64() == v) }
    }
}
