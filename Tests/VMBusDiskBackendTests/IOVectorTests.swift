import Testing
import VMBusDiskBackend

@Suite struct IOVectorTests {
    @Test func copiesCrossSegmentBoundariesAtAnyOffset() throws {
        let s = try Segments([3, 5, 1, 7])
        #expect(s.vector.totalLength == 16)
        #expect(s.vector.count == 4)
        let data = pattern(16, seed: 1)
        s.fill(data)
        #expect(s.bytes == data)
        for offset in 0...16 {
            var out = [UInt8](repeating: 0xEE, count: 16)
            let n = out.withUnsafeMutableBytes { s.vector.copy(toBuffer: $0, fromOffset: offset) }
            #expect(n == 16 - offset)
            #expect(Array(out.prefix(n)) == Array(data[offset...]))
        }
        s.vector.zero(offset: 2, length: 7)
        #expect(s.bytes[2..<9].allSatisfy { $0 == 0 } && s.bytes[9] == data[9] && s.bytes[1] == data[1])
        #expect(s.vector.isZero(offset: 2, length: 7))
        #expect(!s.vector.isZero(offset: 1, length: 7))
    }

    @Test func theCapacityIsFixed() throws {
        let v = IOVector(capacity: 2)
        let b = UnsafeMutableRawBufferPointer.allocate(byteCount: 8, alignment: 8)
        defer { b.deallocate() }
        try v.append(b)
        try v.append(base: b.baseAddress! + 4, length: 0)  // empty segments take no slot
        try v.append(b)
        #expect(throws: BackendError.bufferTooSmall(needed: 3, available: 2)) { try v.append(b) }
        v.reset()
        #expect(v.count == 0 && v.totalLength == 0)
        try v.append(b)
        #expect(v.totalLength == 8)
    }
}
