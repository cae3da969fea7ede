import Testing
import VMBusNetTAP
import VMBusNetVSC
import VMBusNetVSP

/// The virtio-net header both ways, and what the guest edge asks of the host for a frame its kernel left
/// partial or unsegmented.
struct VirtioNetHeaderTests {
    @Test func anOffloadSurvivesTheHeaderBothWays() throws {
        let cases = [FrameOffload(checksumStart: 34, checksumOffset: 16),
                     FrameOffload(checksumStart: 34, checksumOffset: 6),
                     FrameOffload(checksumStart: 34, checksumOffset: 16, segmentation: .tcpIPv4, segmentSize: 1448, headerLength: 66),
                     FrameOffload(checksumStart: 54, checksumOffset: 16, segmentation: .tcpIPv6, segmentSize: 1428, headerLength: 74,
                                  explicitCongestion: true)]
        for offload in cases {
            let header = VirtioNetHeader(offload)
            let decoded = try #require(VirtioNetHeader(header.bytes))
            #expect(decoded == header)
            #expect(try decoded.offload(frameLength: 9000)?.get() == offload)
        }
        // Byte for byte as Linux lays out struct virtio_net_hdr_mrg_rxbuf (little-endian fields).
        let gso = VirtioNetHeader(cases[2])
        #expect(gso.bytes == [1, 1, 66, 0, 0xA8, 0x05, 34, 0, 16, 0, 0, 0])
        #expect(VirtioNetHeader().offload(frameLength: 60) == nil, "a complete frame")
    }

    @Test func whatCannotBeDoneIsRefused() {
        var udp = VirtioNetHeader()
        udp.flags = VirtioNetHeader.needsChecksum
        udp.gsoType = VirtioNetHeader.gsoUDP
        udp.checksumStart = 34
        udp.checksumOffset = 6
        udp.gsoSize = 1400
        #expect(udp.offload(frameLength: 5000) == .failure(.unsupportedSegmentation(VirtioNetHeader.gsoUDP)))
        var outside = VirtioNetHeader()
        outside.flags = VirtioNetHeader.needsChecksum
        outside.checksumStart = 60
        outside.checksumOffset = 16
        #expect(outside.offload(frameLength: 70) == .failure(.checksumOutsideFrame))
        var noChecksum = VirtioNetHeader()
        noChecksum.gsoType = VirtioNetHeader.gsoTCPv4
        #expect(noChecksum.offload(frameLength: 5000) == .failure(.segmentationWithoutChecksum))
        var noSize = VirtioNetHeader(FrameOffload(checksumStart: 34, checksumOffset: 16, segmentation: .tcpIPv4, segmentSize: 1, headerLength: 54))
        noSize.gsoSize = 0
        #expect(noSize.offload(frameLength: 5000) == .failure(.badSegmentation))
    }

    /// A TCP/IPv4 frame as Linux's stack hands a GSO frame over: lengths of the whole frame, the TCP field the
    /// pseudo-header sum with the length.
    static func gsoFrame(payload: Int) -> [UInt8] {
        var f = [UInt8](repeating: 0, count: 54 + payload)
        f[12] = 0x08
        f[14] = 0x45
        f[16] = UInt8((40 + payload) >> 8); f[17] = UInt8((40 + payload) & 0xFF)
        f[23] = 6
        f[24] = 0x12; f[25] = 0x34
        f[26...29] = [10, 0, 0, 1]; f[30...33] = [10, 0, 0, 2]
        f[46] = 0x50
        f[50] = 0xAB; f[51] = 0xCD
        return f
    }

    @Test func aGSOFrameBecomesAnLSOv2SendRewrittenAsNetvscDoes() throws {
        var frame = Self.gsoFrame(payload: 4000)
        let offload = FrameOffload(checksumStart: 34, checksumOffset: 16, segmentation: .tcpIPv4, segmentSize: 1448, headerLength: 54)
        let request = try #require(frame.withUnsafeMutableBytes { NetVSC.TransmitOffload(kernel: offload, rewriting: $0) })
        #expect(request == .tcpSegmentation(mss: 1448, l4Offset: 34, ipv6: false))
        #expect(Array(frame[16...17]) == [0, 0], "IPv4 total length 0")
        #expect(Array(frame[24...25]) == [0, 0], "IPv4 header checksum 0")
        // 0x0A00 + 0x0001 + 0x0A00 + 0x0002 + 6: the pseudo-header without the length.
        #expect(Array(frame[50...51]) == [0x14, 0x09])
    }

    @Test func aPartialChecksumBecomesAChecksumRequestAndTheFieldIsLeftAlone() throws {
        var frame = Self.gsoFrame(payload: 100)
        let request = try #require(frame.withUnsafeMutableBytes {
            NetVSC.TransmitOffload(kernel: FrameOffload(checksumStart: 34, checksumOffset: 16), rewriting: $0)
        })
        #expect(request.checksum?.isIPv4 == true && request.checksum?.tcpChecksum == true)
        #expect(request.checksum?.tcpHeaderOffset == 34 && request.largeSend == nil)
        #expect(Array(frame[50...51]) == [0xAB, 0xCD])
        // Nonsense from the kernel side (a checksum inside the IP header, a GSO type for the other IP version)
        // asks for nothing.
        for bad in [FrameOffload(checksumStart: 20, checksumOffset: 16),
                    FrameOffload(checksumStart: 34, checksumOffset: 16, segmentation: .tcpIPv6, segmentSize: 1448, headerLength: 54),
                    FrameOffload(checksumStart: 34, checksumOffset: 9)] {
            #expect(frame.withUnsafeMutableBytes { NetVSC.TransmitOffload(kernel: bad, rewriting: $0) } == nil)
        }
    }
}
