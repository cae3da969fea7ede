import Testing
import VMBusLayoutTesting
import VMBusProtocol
import VMBusWire

/// The in-place view must accept exactly what ``GPADirectPacketHeader`` accepts, and read the same ranges.
@Suite struct GPADirectPacketViewTests {
    let ranges = [GPARange(byteCount: 6000, byteOffset: 200, pfns: [0x100, 0x101]), GPARange(wholePages: [0x200])]

    func viewRanges(_ bytes: [UInt8]) throws(WireError) -> (GPADirectPacketView, [GPARange], Int) {
        var r = WireReader(bytes)
        let view = try GPADirectPacketView(from: &r)
        var out: [GPARange] = []
        view.forEachRange { out.append($0.gpaRange) }
        return (view, out, r.index)
    }

    @Test func aBuiltPacketReadsTheSameAsTheHeader() throws {
        let header = GPADirectPacketHeader(transactionID: 42, ranges: ranges, payloadLength: 13)
        let bytes = packet(header, descriptor: header.descriptor, payload: patternBytes(13, from: 1))
        let (view, read, index) = try viewRanges(bytes)
        #expect(view.descriptor == header.descriptor)
        #expect(view.rangeCount == 2)
        #expect(read == ranges)
        #expect(index == header.descriptor.payloadOffset)
        let first = try view.firstRange
        #expect(first.byteCount == 6000 && first.byteOffset == 200 && first.pfnCount == 2)
        #expect(try first.pfn(1) == 0x101)
        #expect(throws: WireError.self) { try first.pfn(2) }
        #expect(throws: WireError.self) { try first.pfn(-1) }
    }

    /// Whatever the view accepts re-encodes to the very bytes it read, fits in the packet and lies before the
    /// payload; the encoder is the independent reference.
    @Test func whatTheViewAcceptsOfMutatedPacketsIsExactlyWhatItRead() {
        let header = GPADirectPacketHeader(transactionID: 7, ranges: ranges, payloadLength: 16)
        let good = packet(header, descriptor: header.descriptor, payload: patternBytes(16, from: 9))
        // Every truncation, and every byte of the header and range area set to a few telling values.
        var variants = (0..<good.count).map { Array(good.prefix($0)) }
        for i in 0..<64 {
            for value: UInt8 in [0, 1, 0x7F, 0x80, 0xFF, good[i] ^ 1, good[i] &+ 8] {
                var bytes = good
                bytes[i] = value
                variants.append(bytes)
            }
        }
        var accepted = 0
        for (round, bytes) in variants.enumerated() {
            guard let (view, read, payloadIndex) = try? viewRanges(bytes) else { continue }
            accepted += 1
            var w = WireWriter()
            GPADirectPacketHeader(descriptor: view.descriptor, ranges: read).encode(into: &w)
            #expect(w.count <= payloadIndex, "round \(round): ranges run into the payload")
            #expect(view.descriptor.totalLength <= bytes.count, "round \(round): packet longer than its bytes")
            // Bytes 16..<20 are `reserved`, which the view ignores.
            var expected = Array(bytes.prefix(w.count))
            expected.replaceSubrange(16..<20, with: [0, 0, 0, 0])
            #expect(w.bytes == expected, "round \(round)")
            for r in read { #expect(GPARange.pageCount(byteCount: r.byteCount, byteOffset: r.byteOffset) == r.pfns.count) }
        }
        #expect(accepted > 0 && accepted < variants.count)
    }

    @Test func theSingleRangeBlockEncoderMatchesTheGeneralOne() throws {
        var w = WireWriter(capacity: 64)
        GPARange.encodeSingleRangeBlock(byteCount: 9000, byteOffset: 100, pfns: 0x40..<0x43, into: &w)
        var reference = WireWriter()
        reference.writeUInt32(0)
        reference.writeUInt32(1)
        GPARange(byteCount: 9000, byteOffset: 100, pfns: [0x40, 0x41, 0x42]).encode(into: &reference)
        #expect(w.bytes == reference.bytes)
        // Reuse keeps the capacity: the data path resets and re-encodes in place.
        w.reset()
        GPARange.encodeSingleRangeBlock(byteCount: 4096, byteOffset: 0, pfns: [7], into: &w)
        #expect(w.count == 24)
    }
}
