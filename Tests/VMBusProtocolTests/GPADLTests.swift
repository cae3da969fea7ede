import VMBusLayoutTesting
import Testing
import VMBusProtocol
import VMBusWire

@Suite struct GPARangeTests {
    @Test func aRangeRoundTripsThroughItsWireForm() throws {
        let range = GPARange(byteCount: 5000, byteOffset: 100, pfns: [7, 8])
        try range.validate()
        #expect(range.encodedLength == 24)
        #expect(try GPARange(wireBytes: range.wireBytes) == range)
    }

    @Test(arguments: [
        (UInt32(1), UInt32(0), 1), (4096, 0, 1), (4097, 0, 2), (4096, 1, 2), (1, 0xFFF, 1), (2, 0xFFF, 2),
        (UInt32.max, 0, 1_048_576), (UInt32.max, 0xFFF, 1_048_577),
    ])
    func thePageCountIsTheCeilingOfOffsetPlusCount(_ count: UInt32, _ offset: UInt32, _ pages: Int) {
        #expect(GPARange.pageCount(byteCount: count, byteOffset: offset) == pages)
    }

    @Test func aZeroByteCountOrAnOffsetBeyondThePageIsInvalid() {
        #expect(GPARange.pageCount(byteCount: 0, byteOffset: 0) == nil)
        #expect(GPARange.pageCount(byteCount: 1, byteOffset: 0x1000) == nil)
        #expect(throws: WireError.invalidValue(field: "gpa_range.byte_count", value: 0)) {
            try GPARange(wireBytes: le(UInt32(0)) + le(UInt32(0)) + le(UInt64(1)))
        }
        #expect(throws: WireError.invalidValue(field: "gpa_range.byte_offset", value: 0x1000)) {
            try GPARange(wireBytes: le(UInt32(1)) + le(UInt32(0x1000)) + le(UInt64(1)))
        }
        #expect(throws: WireError.invalidValue(field: "gpa_range.byte_offset", value: 0x1000)) {
            try GPARange(byteCount: 1, byteOffset: 0x1000, pfns: [1]).validate()
        }
    }

    @Test func aPFNCountThatDisagreesWithTheByteCountIsInvalid() {
        #expect(throws: WireError.invalidValue(field: "gpa_range.pfn_array", value: 1)) {
            try GPARange(byteCount: 4097, byteOffset: 0, pfns: [1]).validate()
        }
        #expect(throws: WireError.invalidValue(field: "gpa_range.pfn_array", value: 3)) {
            try GPARange(byteCount: 4096, byteOffset: 0, pfns: [1, 2, 3]).validate()
        }
    }

    @Test func aHugeByteCountIsRefusedBeforeAnythingIsAllocated() {
        // 0xFFFFFFFF bytes at offset 0xFFF would need 1048577 PFNs; only one follows.
        let bytes = le(UInt32.max) + le(UInt32(0xFFF)) + le(UInt64(1))
        #expect(throws: WireError.countTooLarge(field: "gpa_range.pfn_array", count: 1_048_577, limit: 1)) {
            try GPARange(wireBytes: bytes)
        }
    }

    @Test func aRangeListChecksItsCountAgainstTheBytesLeft() throws {
        let ranges = [GPARange(wholePages: [1, 2]), GPARange(byteCount: 10, byteOffset: 4090, pfns: [3, 4])]
        var w = WireWriter()
        GPARange.encodeList(ranges, into: &w)
        #expect(GPARange.encodedLength(of: ranges) == w.count)
        var r = WireReader(w.bytes)
        #expect(try GPARange.decodeList(count: 2, from: &r) == ranges)
        #expect(r.remaining == 0)

        var huge = WireReader(w.bytes)
        #expect(throws: WireError.countTooLarge(field: "rangecount", count: Int(UInt32.max), limit: 3)) {
            try GPARange.decodeList(count: Int(UInt32.max), from: &huge)
        }
        var negative = WireReader(w.bytes)
        #expect(throws: WireError.self) { try GPARange.decodeList(count: -1, from: &negative) }
        var short = WireReader(Array(w.bytes.dropLast(8)))
        #expect(throws: WireError.self) { try GPARange.decodeList(count: 2, from: &short) }
    }

    @Test func wholePageRangesStartAtOffsetZero() {
        let range = GPARange(wholePages: [9, 10, 11])
        #expect(range.byteCount == 3 * 4096)
        #expect(range.byteOffset == 0)
        #expect(throws: Never.self) { try range.validate() }
    }
}

@Suite struct GPADLSplitTests {
    func pages(_ n: Int) -> [UInt64] { (0..<n).map { 0x10_0000 + UInt64($0) * 3 } }

    @Test(arguments: [1, 2, 25, 26, 27, 54, 55, 64, 100, 1000, 8190])
    func aSingleRangeIsSplitExactlyAsLinuxDoes(_ n: Int) throws {
        let range = GPARange(wholePages: pages(n))
        let (header, bodies) = GPADLMessages.split(childRelID: 0x11, gpadl: 0xE1E10, ranges: [range])
        #expect(header.childRelID == 0x11)
        #expect(header.gpadl == 0xE1E10)
        #expect(header.rangeCount == 1)
        #expect(Int(header.rangeBufferLength) == 8 + 8 * n)
        // Linux: up to 26 PFNs in the header, then 28 per body, msgnumber 0.
        let inHeader = min(n, 26)
        #expect(header.rangeData.count == 8 + 8 * inHeader)
        let expectedBodies = n <= 26 ? 0 : (n - 26 + 27) / 28
        #expect(bodies.count == expectedBodies)
        for (i, body) in bodies.enumerated() {
            #expect(body.messageNumber == 0)
            #expect(body.gpadl == 0xE1E10)
            let count = i == bodies.count - 1 ? (n - 26) - 28 * (bodies.count - 1) : 28
            #expect(body.data.count == 8 * count)
        }
        #expect(header.wireBytes.count <= 240)
        for body in bodies { #expect(body.wireBytes.count <= 240) }
        #expect(header.wireBytes.count == 20 + 8 + 8 * inHeader)
    }

    @Test func aSixtyFourPageRingPairTakesOneHeaderAndTwoBodies() {
        let (header, bodies) = GPADLMessages.split(childRelID: 1, gpadl: 2, ranges: [GPARange(wholePages: pages(64))])
        #expect(header.wireBytes.count == 236)
        #expect(bodies.map { $0.wireBytes.count } == [240, 16 + 80])
    }

    @Test func aSplitStreamReassemblesToTheSameRanges() throws {
        let ranges = [
            GPARange(byteCount: 100, byteOffset: 4000, pfns: [1, 2]),
            GPARange(wholePages: pages(40)),
            GPARange(byteCount: 1, byteOffset: 0, pfns: [99]),
        ]
        let (header, bodies) = GPADLMessages.split(childRelID: 5, gpadl: 6, ranges: ranges)
        var assembler = try GPADLAssembler(header: header)
        for (i, body) in bodies.enumerated() {
            #expect(try assembler.add(body: body) == (i == bodies.count - 1))
        }
        #expect(assembler.isComplete)
        #expect(try assembler.ranges() == ranges)
    }

    @Test func ungroupableRangesAreRefusedBeforeSplitting() {
        #expect(throws: GPADLError.noRanges) { try GPADLMessages.validateForSplit(ranges: []) }
        #expect(throws: GPADLError.tooLarge(rangeBufferLength: 8 + 8 * 8191, rangeCount: 1)) {
            try GPADLMessages.validateForSplit(ranges: [GPARange(wholePages: pages(8191))])
        }
        #expect(throws: GPADLError.self) {
            try GPADLMessages.validateForSplit(ranges: [GPARange(byteCount: 4096, byteOffset: 0, pfns: [])])
        }
        #expect(throws: Never.self) { try GPADLMessages.validateForSplit(ranges: [GPARange(wholePages: pages(8190))]) }
    }

    @Test func capacitiesMatchLinux() {
        #expect(GPADLMessages.headerCapacity == 8 + 26 * 8)
        #expect(GPADLMessages.bodyCapacity == 28 * 8)
        #expect(GPADLMessages.linuxFirstHandle == 0xE1E10)
    }
}

@Suite struct GPADLAssemblerTests {
    func header(buflen: UInt16, count: UInt16 = 1, data: [UInt8]) -> GPADLHeader {
        GPADLHeader(childRelID: 3, gpadl: 0x77, rangeBufferLength: buflen, rangeCount: count, rangeData: data)
    }

    func stream(_ ranges: [GPARange]) -> [UInt8] {
        var w = WireWriter()
        GPARange.encodeList(ranges, into: &w)
        return w.bytes
    }

    @Test func aHeaderThatHoldsEverythingIsCompleteAtOnce() throws {
        let range = GPARange(wholePages: [5, 6, 7])
        let assembler = try GPADLAssembler(header: header(buflen: 32, data: stream([range])))
        #expect(assembler.isComplete)
        #expect(assembler.childRelID == 3)
        #expect(try assembler.ranges() == [range])
    }

    @Test func maximumLengthMessagesAreTrimmedToWhatTheStreamStillNeeds() throws {
        // UEFI sends every GPADL message at full length; the tail beyond range_buflen is garbage.
        let range = GPARange(wholePages: (0..<30).map { UInt64($0) + 100 })
        let data = stream([range])
        var first = Array(data.prefix(216))
        first += [0xEE, 0xEE, 0xEE, 0xEE]  // 220 bytes: the last 4 are not a whole word
        var assembler = try GPADLAssembler(header: header(buflen: UInt16(data.count), data: first))
        #expect(assembler.receivedLength == 216)
        let rest = Array(data[216...]) + [UInt8](repeating: 0xEE, count: 224 - (data.count - 216))
        #expect(try assembler.add(body: GPADLBody(gpadl: 0x77, data: rest)))
        #expect(assembler.receivedLength == data.count)
        #expect(try assembler.ranges() == [range])
    }

    @Test func bodiesWithPartialWordsOnlyContributeWholeWords() throws {
        let range = GPARange(wholePages: [1, 2, 3])
        let data = stream([range])
        var assembler = try GPADLAssembler(header: header(buflen: UInt16(data.count), data: Array(data.prefix(12))))
        #expect(assembler.receivedLength == 8)
        #expect(try !assembler.add(body: GPADLBody(gpadl: 0x77, data: Array(data[8..<20]))))
        #expect(assembler.receivedLength == 16)
        #expect(try assembler.add(body: GPADLBody(gpadl: 0x77, data: Array(data[16...]))))
        #expect(try assembler.ranges() == [range])
    }

    @Test func aBodyAfterCompletionOrForAnotherHandleIsRefused() throws {
        var assembler = try GPADLAssembler(header: header(buflen: 16, data: stream([GPARange(wholePages: [1])])))
        #expect(throws: GPADLError.alreadyComplete(gpadl: 0x77)) { try assembler.add(body: GPADLBody(gpadl: 0x77, data: [])) }
        var other = try GPADLAssembler(header: header(buflen: 24, data: []))
        #expect(throws: GPADLError.gpadlMismatch(expected: 0x77, actual: 0x78)) {
            try other.add(body: GPADLBody(gpadl: 0x78, data: [UInt8](repeating: 0, count: 8)))
        }
    }

    @Test func rangesBeforeTheLastBodyAreRefused() throws {
        let assembler = try GPADLAssembler(header: header(buflen: 40, data: Array(stream([GPARange(wholePages: [1, 2, 3, 4])]).prefix(16))))
        #expect(!assembler.isComplete)
        #expect(assembler.remainingLength == 24)
        #expect(throws: GPADLError.incomplete(received: 16, expected: 40)) { try assembler.ranges() }
    }

    @Test func headerCountsThatCannotDescribeAStreamAreRefused() {
        #expect(throws: GPADLError.noRanges) { try GPADLAssembler(header: header(buflen: 16, count: 0, data: [])) }
        #expect(throws: GPADLError.rangeBufferLengthNotMultipleOf8(20)) { try GPADLAssembler(header: header(buflen: 20, data: [])) }
        #expect(throws: GPADLError.rangeBufferTooSmall(length: 8, rangeCount: 1)) { try GPADLAssembler(header: header(buflen: 8, data: [])) }
        #expect(throws: GPADLError.rangeBufferTooSmall(length: 32, rangeCount: 3)) { try GPADLAssembler(header: header(buflen: 32, count: 3, data: [])) }
        #expect(throws: GPADLError.rangeBufferTooSmall(length: 0, rangeCount: 1)) { try GPADLAssembler(header: header(buflen: 0, data: [])) }
    }

    @Test func aRangeBufferTooShortForItsRangesIsRefused() throws {
        // range_buflen says 24 bytes (two PFNs) but the range header asks for three pages.
        let data = le(UInt32(3 * 4096)) + le(UInt32(0)) + le(UInt64(1)) + le(UInt64(2))
        let assembler = try GPADLAssembler(header: header(buflen: 24, data: data))
        #expect(throws: GPADLError.invalidRange(.countTooLarge(field: "gpa_range.pfn_array", count: 3, limit: 2))) {
            try assembler.ranges()
        }
    }

    @Test func moreRangesThanTheStreamHoldsAreRefused() throws {
        let data = stream([GPARange(wholePages: [1]), GPARange(wholePages: [2])])
        let assembler = try GPADLAssembler(header: header(buflen: 32, count: 2, data: data))
        #expect(try assembler.ranges().count == 2)
        let tooMany = try GPADLAssembler(header: header(buflen: 48, count: 3, data: data + le(UInt64(0)) + le(UInt64(0))))
        #expect(throws: GPADLError.invalidRange(.invalidValue(field: "gpa_range.byte_count", value: 0))) { try tooMany.ranges() }
    }

    @Test func wordsLeftAfterTheLastRangeAreIgnoredAsOpenVMMDoes() throws {
        let data = stream([GPARange(wholePages: [1])]) + le(UInt64(0xDEAD))
        let assembler = try GPADLAssembler(header: header(buflen: 24, data: data))
        #expect(try assembler.ranges() == [GPARange(wholePages: [1])])
    }

    @Test func theLargestStreamNeverGrowsBeyondRangeBufLen() throws {
        // 65528 bytes announced; the header and 300 maximum-length bodies offer far more than that.
        var assembler = try GPADLAssembler(header: header(buflen: 0xFFF8, data: [UInt8](repeating: 0xFF, count: 220)))
        var complete = false
        for _ in 0..<300 where !complete {
            complete = try assembler.add(body: GPADLBody(gpadl: 0x77, data: [UInt8](repeating: 0xFF, count: 224)))
        }
        #expect(complete)
        #expect(assembler.receivedLength == 0xFFF8)
        // The all-ones range header (offset beyond the first page) is refused, nothing is allocated for it.
        #expect(throws: GPADLError.self) { try assembler.ranges() }
    }
}
