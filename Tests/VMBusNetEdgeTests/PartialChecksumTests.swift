import Testing
import VMBusNetVSP

/// Finishing a checksum the kernel left partial (VIRTIO_NET_HDR_F_NEEDS_CSUM) as a TAP hands it over.
struct PartialChecksumTests {
    /// A UDP/IPv4 datagram in a frame after `lead` bytes (a vnet header, say), with only the pseudo-header
    /// sum in its checksum field, as Linux leaves CHECKSUM_PARTIAL.
    static func partialUDP(lead: Int, payload: Int) -> [UInt8] {
        let udpLength = 8 + payload
        var ip: [UInt8] = [0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]
        EdgeFrames.put16(&ip, 2, UInt16(20 + udpLength))
        EdgeFrames.put16(&ip, 10, EdgeFrames.checksum(ip))
        var udp: [UInt8] = [0x30, 0x39, 0x00, 0x35, UInt8(udpLength >> 8), UInt8(udpLength & 0xFF), 0, 0] + (0..<payload).map { UInt8($0 * 7 & 0xFF) }
        let pseudo: [UInt8] = [10, 0, 0, 1, 10, 0, 0, 2, 0, 17, UInt8(udpLength >> 8), UInt8(udpLength & 0xFF)]
        EdgeFrames.put16(&udp, 6, ~EdgeFrames.checksum(pseudo))
        return [UInt8](repeating: 0xEE, count: lead) + EdgeFrames.ethernet(to: [2, 0, 0, 0, 0, 2], from: [2, 0, 0, 0, 0, 1], type: 0x0800) + ip + udp
    }

    @Test func aPartialUDPChecksumIsCompletedToWhatAFullComputationGives() {
        for payload in [0, 1, 17, 1000] {
            var frame = Self.partialUDP(lead: 12, payload: payload)
            #expect(PartialChecksum.complete(&frame, frameStart: 12, frameEnd: frame.count, start: 34, offset: 6))
            let udp = Array(frame[(12 + 34)...])
            let pseudo: [UInt8] = [10, 0, 0, 1, 10, 0, 0, 2, 0, 17, UInt8(udp.count >> 8), UInt8(udp.count & 0xFF)]
            #expect(EdgeFrames.checksum(pseudo + udp) == 0, "payload \(payload): the datagram verifies")
            #expect(frame[..<12].allSatisfy { $0 == 0xEE }, "nothing before the frame touched")
        }
    }

    @Test func aChecksumFieldOutsideTheFrameIsRefused() {
        var frame = Self.partialUDP(lead: 0, payload: 4)
        let before = frame
        #expect(!PartialChecksum.complete(&frame, frameStart: 0, frameEnd: frame.count, start: frame.count - 1, offset: 0))
        #expect(!PartialChecksum.complete(&frame, frameStart: 0, frameEnd: frame.count + 1, start: 34, offset: 6))
        #expect(frame == before)
    }
}
