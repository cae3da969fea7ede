import VMBusNetProtocol

/// LSOv2 (`TCP_LARGESEND_PKTINFO`): a guest hands over one TCP segment of up to ~64 KiB and the host cuts it
/// into frames of at most `mss` payload bytes before it leaves, the way a NIC's TSO does: headers copied,
/// IPv4 total length and id, IPv6 payload length, TCP sequence number and flags adjusted per segment, and
/// the checksums computed.
enum LargeSendOffload {
    /// The smallest MSS taken: below it a guest could make one request cost thousands of frames.
    static let minimumMSS = 64
    /// What NetVSP offers as `ip4_maxsz`/`ip6_maxsz` (OpenVMM's figure).
    static let maxOffloadSize: UInt32 = 62_780

    /// Segments `source[start ..< start + length]` into `out` (at least `maxFrame` bytes) and calls `emit`
    /// with each frame. False (nothing emitted) if the headers do not add up.
    static func segment(_ lso: NDISTCPLSOInfo, source: [UInt8], start: Int, length: Int, maxFrame: Int,
                        into out: inout [UInt8], _ emit: (UnsafeRawBufferPointer) -> Void) -> Bool {
        guard length >= 14, out.count >= maxFrame else { return false }
        let end = start + length
        var l3 = 14
        if ChecksumOffload.u16(source, start + 12) == 0x8100 { l3 += 4 }
        let ipv6 = lso.ipVersion == NDISTCPLSOInfo.ipVersion6
        guard start + l3 + (ipv6 ? 40 : 20) <= end, source[start + l3] >> 4 == (ipv6 ? 6 : 4) else { return false }
        let ipHeader = ipv6 ? 40 : Int(source[start + l3] & 0xF) * 4
        guard ipHeader >= 20 else { return false }
        let l4 = lso.tcpHeaderOffset != 0 ? Int(lso.tcpHeaderOffset) : l3 + ipHeader
        // IPv6 extension headers are not walked: the TCP header must follow the fixed header.
        guard l4 == l3 + ipHeader, start + l4 + 20 <= end else { return false }
        let tcpHeader = Int(source[start + l4 + 12] >> 4) * 4
        let headers = l4 + tcpHeader
        guard tcpHeader >= 20, headers <= length, headers < maxFrame else { return false }
        let mss = min(Int(lso.mss), maxFrame - headers)
        guard mss >= minimumMSS else { return false }
        let payload = length - headers
        let sequence = UInt32(ChecksumOffload.u16(source, start + l4 + 4)) << 16 | UInt32(ChecksumOffload.u16(source, start + l4 + 6))
        let ipID = ChecksumOffload.u16(source, start + l3 + 4)
        let flags = source[start + l4 + 13]
        var checksum = NDISTCPIPChecksumInfo()
        checksum.isIPv4 = !ipv6
        checksum.isIPv6 = ipv6
        checksum.ipHeaderChecksum = !ipv6
        checksum.tcpChecksum = true
        checksum.tcpHeaderOffset = UInt32(l4)
        var offset = 0
        var index = 0
        repeat {
            let n = min(mss, payload - offset)
            let last = offset + n >= payload
            for i in 0..<headers { out[i] = source[start + i] }
            for i in 0..<n { out[headers + i] = source[start + headers + offset + i] }
            if ipv6 {
                ChecksumOffload.put16(&out, l3 + 4, UInt16(truncatingIfNeeded: tcpHeader + n))
            } else {
                ChecksumOffload.put16(&out, l3 + 2, UInt16(truncatingIfNeeded: ipHeader + tcpHeader + n))
                ChecksumOffload.put16(&out, l3 + 4, ipID &+ UInt16(truncatingIfNeeded: index))
            }
            let seq = sequence &+ UInt32(truncatingIfNeeded: offset)
            ChecksumOffload.put16(&out, l4 + 4, UInt16(seq >> 16))
            ChecksumOffload.put16(&out, l4 + 6, UInt16(truncatingIfNeeded: seq))
            var f = flags
            if !last { f &= ~0x09 }       // FIN and PSH only on the last segment
            if index > 0 { f &= ~0x80 }   // CWR only on the first
            out[l4 + 13] = f
            guard ChecksumOffload.apply(checksum, to: &out, start: 0, length: headers + n) else { return false }
            out.withUnsafeBytes { emit(UnsafeRawBufferPointer(rebasing: $0[0..<(headers + n)])) }
            offset += n
            index += 1
        } while offset < payload
        return true
    }
}
