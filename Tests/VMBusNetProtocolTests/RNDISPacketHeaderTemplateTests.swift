import Testing
import VMBusNetProtocol
import VMBusWire

struct RNDISPacketHeaderTemplateTests {
    /// The template patches two lengths; everything else must be what a full encode writes, also after the
    /// template served other lengths.
    @Test(arguments: [
        RNDISPacketInfo(),
        RNDISPacketInfo(checksum: NDISTCPIPChecksumInfo()),
        RNDISPacketInfo(largeSend: .v2Transmit(mss: 1448, tcpHeaderOffset: 34, ipv6: false), vlan: NDISPacket8021QInfo()),
    ])
    func patchedHeadersEqualAFullEncodeForEveryLength(info: RNDISPacketInfo) {
        var template = RNDISPacketHeaderTemplate(info: info)
        for length in [60, 1514, 14, 9018, 65_535, 0, 61] {
            var w = WireWriter()
            RNDISPacket.encodeHeaders(into: &w, info: info, frameLength: length)
            #expect(template.bytes(frameLength: length) == w.bytes, "frame of \(length) bytes")
            #expect(template.count == w.count)
        }
    }
}
