import Testing
import VMBusWire

@Suite struct GUIDTests {
    /// HV_NIC_GUID and its wire bytes as Linux 6.12 stores them (constants.txt).
    let nicString = "f8615163-df3e-46c5-913f-f2d2f965ed0e"
    let nicWire: [UInt8] = [0x63, 0x51, 0x61, 0xf8, 0x3e, 0xdf, 0xc5, 0x46, 0x91, 0x3f, 0xf2, 0xd2, 0xf9, 0x65, 0xed, 0x0e]

    @Test func theFirstThreeFieldsGoOnTheWireLittleEndian() throws {
        let guid = try #require(GUID(nicString))
        #expect(guid.wireBytes == nicWire)
        #expect(try GUID(wireBytes: nicWire) == guid)
        #expect(GUID.wireSize == 16)
    }

    @Test func theStringFormRoundTripsInLowerCase() throws {
        let guid = try #require(GUID("{F8615163-DF3E-46C5-913F-F2D2F965ED0E}"))
        #expect(guid.description == nicString)
        #expect(GUID(guid.description) == guid)
        #expect(GUID.zero.description == "00000000-0000-0000-0000-000000000000")
    }

    @Test(arguments: [
        "", "f8615163-df3e-46c5-913f-f2d2f965ed0", "f8615163-df3e-46c5-913f-f2d2f965ed0e0",
        "f8615163df3e-46c5-913f-f2d2f965ed0e-", "g8615163-df3e-46c5-913f-f2d2f965ed0e",
        "+8615163-df3e-46c5-913f-f2d2f965ed0e", "f8615163-+f3e-46c5-913f-f2d2f965ed0e",
        "f8615163-df3e-46c5-913f-f2d2f965ed+e", "{f8615163-df3e-46c5-913f-f2d2f965ed0e",
        "f8615163-df3e-46c5-913f-f2d2f965ed0e}", "f8615163-df3e-46c5-913ff2d2-f965ed0e",
    ])
    func malformedStringsAreRejected(_ text: String) {
        #expect(GUID(text) == nil)
    }

    @Test func equalityAndHashingUseAllSixteenBytes() throws {
        let a = try #require(GUID(nicString))
        var b = a
        b.data4.7 ^= 1
        #expect(a != b)
        #expect(Set([a, a, b]).count == 2)
    }

    @Test func orderingFollowsTheWireBytes() throws {
        // data1 0x00000002 is wire bytes 02 00 00 00, which sorts after 01 00 00 01 (data1 0x01000001).
        let small = try #require(GUID("01000001-0000-0000-0000-000000000000"))
        let large = try #require(GUID("00000002-0000-0000-0000-000000000000"))
        #expect(small < large)
        #expect(!(large < small))
    }

    @Test func aShortBufferIsTruncatedNotATrap() {
        #expect(throws: WireError.self) { try GUID(wireBytes: Array(nicWire.prefix(15))) }
    }
}
