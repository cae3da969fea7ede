import Testing
import VMBusStorVSC

@Suite struct LUNIdentityTests {
    @Test func reportLUNsKeepsPeripheralAddressesOnly() throws {
        var d: [UInt8] = [0, 0, 0, 32, 0, 0, 0, 0]
        d += [0, 0, 0, 0, 0, 0, 0, 0]     // LUN 0
        d += [0, 7, 0, 0, 0, 0, 0, 0]     // LUN 7
        d += [0x40, 1, 0, 0, 0, 0, 0, 0]  // flat addressing: not ours
        d += [0, 3, 0, 0, 0, 0, 0, 1]     // second level: not ours
        #expect(try LUNIdentity.parseReportLUNs(d) == [0, 7])
        // A list length past the data is clamped to it.
        #expect(try LUNIdentity.parseReportLUNs([0, 0, 0xFF, 0xFF, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0]) == [5])
        #expect(throws: StorVSCError.self) { _ = try LUNIdentity.parseReportLUNs([0, 0, 0]) }
    }

    @Test func inquiryAndCapacityAreChecked() throws {
        #expect(try LUNIdentity.parseInquiry([0x7F, 0, 0, 0, 0]) == nil)
        let inquiry = try #require(try LUNIdentity.parseInquiry([0, 0, 5, 2, 31, 0, 0, 0] + Array("Msft    Virtual Disk    1.0 ".utf8)))
        #expect(inquiry.vendor == "Msft" && inquiry.product == "Virtual Disk" && inquiry.revision == "1.0")
        #expect(throws: StorVSCError.self) { _ = try LUNIdentity.parseInquiry([0]) }
        let cap = try LUNIdentity.parseReadCapacity16([0, 0, 0, 0, 0, 0, 0x0F, 0xFF, 0, 0, 2, 0, 0, 0, 0x80])
        #expect(cap.blocks == 4096 && cap.blockSize == 512 && cap.thin)
        for bad in [[UInt8](repeating: 0, count: 14), [0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 100, 0, 0, 0],
                    [UInt8](repeating: 0xFF, count: 15)] {
            #expect(throws: StorVSCError.self) { _ = try LUNIdentity.parseReadCapacity16(bad) }
        }
    }
}
