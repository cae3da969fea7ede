import VMBusNetProtocol
import VMBusNetVSC
import VMBusNetVSP

extension NetVSC.TransmitOffload {
    /// What to ask of the host for a frame the kernel left `offload` to do: `TCPIP_CHKSUM_PKTINFO` for a partial
    /// checksum (its field already holds the pseudo-header sum, as Linux's netvsc leaves it), an LSOv2 send for a
    /// GSO frame, whose headers are rewritten as netvsc's `netvsc_xmit` does (IPv4 total length and header
    /// checksum 0, IPv6 payload length 0, the TCP field the pseudo-header sum without the length). Nil if the
    /// headers do not add up for what the kernel asked.
    public init?(kernel offload: FrameOffload, rewriting frame: UnsafeMutableRawBufferPointer) {
        guard frame.count >= 14 else { return nil }
        let l3 = frame[12] == 0x81 && frame[13] == 0x00 ? 18 : 14
        guard frame.count >= l3 + 20 else { return nil }
        let version = frame[l3] >> 4
        guard version == 4 || version == 6 else { return nil }
        let ipv6 = version == 6
        let l4 = offload.checksumStart
        guard l4 >= l3 + (ipv6 ? 40 : 20), l4 + offload.checksumOffset + 2 <= frame.count else { return nil }
        guard offload.segmentation != .none else {
            var c = NDISTCPIPChecksumInfo()
            c.isIPv4 = !ipv6
            c.isIPv6 = ipv6
            switch offload.checksumOffset {
            case 16: c.tcpChecksum = true
            case 6: c.udpChecksum = true
            default: return nil
            }
            c.tcpHeaderOffset = UInt32(l4)
            self.init(checksum: c)
            return
        }
        guard (offload.segmentation == .tcpIPv6) == ipv6, offload.checksumOffset == 16, l4 + 20 <= frame.count,
              offload.segmentSize > 0 else { return nil }
        if ipv6 {
            Self.put16(frame, l3 + 4, 0)
        } else {
            Self.put16(frame, l3 + 2, 0)
            Self.put16(frame, l3 + 10, 0)
        }
        // The addresses, IPPROTO_TCP and a length of 0.
        let addresses = ipv6 ? frame[(l3 + 8)..<(l3 + 40)] : frame[(l3 + 12)..<(l3 + 20)]
        Self.put16(frame, l4 + 16, InternetChecksum.sum(UnsafeRawBufferPointer(rebasing: addresses), initial: 6))
        self = .tcpSegmentation(mss: offload.segmentSize, l4Offset: l4, ipv6: ipv6)
    }

    private static func put16(_ b: UnsafeMutableRawBufferPointer, _ at: Int, _ v: UInt16) {
        b[at] = UInt8(v >> 8)
        b[at + 1] = UInt8(truncatingIfNeeded: v)
    }
}
