import Testing
import VMBusWire

@Suite struct WireReaderTests {
    @Test func readsIntegersLittleEndianAndAdvances() throws {
        var r = WireReader([0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F])
        #expect(try r.readUInt8() == 0x01)
        #expect(try r.readUInt16() == 0x0302)
        #expect(try r.readUInt32() == 0x0706_0504)
        #expect(try r.readUInt64() == 0x0F0E_0D0C_0B0A_0908)
        #expect(r.remaining == 0)
        #expect(r.consumed == 15)
    }

    @Test func getAtReadsAnywhereWithoutMovingTheIndex() throws {
        let r = WireReader([0xAA, 0xBB, 0xCC, 0xDD, 0xEE])
        #expect(try r.getUInt32(at: 1) == 0xEEDD_CCBB)
        #expect(try r.getUInt16(at: 0) == 0xBBAA)
        #expect(r.index == 0)
        #expect(try r.peekUInt32() == 0xDDCC_BBAA)
        #expect(r.index == 0)
    }

    @Test func aShortReadThrowsTruncatedAndLeavesTheIndexAlone() throws {
        var r = WireReader([1, 2, 3])
        _ = try r.readUInt8()
        #expect(throws: WireError.truncated(offset: 1, needed: 4, available: 2)) { try r.readUInt32() }
        #expect(r.index == 1)
        #expect(throws: WireError.truncated(offset: 1, needed: 8, available: 2)) { try r.readUInt64() }
        #expect(throws: WireError.truncated(offset: 1, needed: 3, available: 2)) { try r.readBytes(3) }
        #expect(throws: WireError.truncated(offset: 1, needed: 5, available: 2)) { try r.skip(5) }
        #expect(r.index == 1)
        #expect(try r.readUInt16() == 0x0302)
    }

    @Test func negativeCountsAndOutOfWindowOffsetsAreTruncationNotTraps() {
        var r = WireReader([1, 2, 3, 4])
        #expect(throws: WireError.self) { try r.readBytes(-1) }
        #expect(throws: WireError.self) { try r.getUInt8(at: -1) }
        #expect(throws: WireError.self) { try r.getUInt8(at: 4) }
        #expect(throws: WireError.self) { try r.getUInt64(at: Int.max - 2) }
    }

    @Test func aSubReaderIsConfinedToItsWindowAndReportsWindowRelativeOffsets() throws {
        var r = WireReader([0, 1, 2, 3, 4, 5, 6, 7])
        try r.skip(2)
        var sub = try r.readSubReader(4)
        #expect(r.index == 6)
        #expect(sub.remaining == 4)
        #expect(try sub.readUInt16() == 0x0302)
        #expect(throws: WireError.truncated(offset: 2, needed: 4, available: 2)) { try sub.readUInt32() }
        #expect(try sub.readUInt16() == 0x0504)
        #expect(throws: WireError.self) { try sub.readUInt8() }
        #expect(throws: WireError.self) { try sub.getUInt8(at: 1) }
    }

    @Test func readBytesCopiesOut() throws {
        var r = WireReader([9, 8, 7, 6])
        #expect(try r.readBytes(0) == [])
        #expect(try r.readBytes(3) == [9, 8, 7])
        #expect(r.remaining == 1)
    }

    @Test func wireBytesInitializerDecodesFromTheStartAndAllowsTrailingBytes() throws {
        struct Pair: WireCodable, Equatable {
            static let wireSize = 4
            var a: UInt16, b: UInt16
            init(a: UInt16, b: UInt16) { self.a = a; self.b = b }
            init(from r: inout WireReader) throws(WireError) { a = try r.readUInt16(); b = try r.readUInt16() }
            func encode(into w: inout WireWriter) { w.writeUInt16(a); w.writeUInt16(b) }
        }
        #expect(try Pair(wireBytes: [1, 0, 2, 0, 0xFF]) == Pair(a: 1, b: 2))
        #expect(Pair(a: 0x0102, b: 0x0304).wireBytes == [0x02, 0x01, 0x04, 0x03])
        #expect(throws: WireError.self) { try Pair(wireBytes: [1, 0, 2]) }
    }

    @Test func errorsDescribeThemselvesWithTheNumbers() {
        #expect(WireError.truncated(offset: 3, needed: 4, available: 1).description.contains("offset 3"))
        #expect(WireError.invalidValue(field: "f", value: 255).description.contains("0xff"))
        #expect(WireError.countTooLarge(field: "n", count: 9, limit: 2).description.contains("limit 2"))
    }
}
