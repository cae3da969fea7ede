import VMBusNetProtocol

/// LSOv2 (`TCP_LARGESEND_PKTINFO`): a guest hands over one TCP segment of up to ~64 KiB and the host either
/// cuts it into frames of at most `mss` payload bytes before it leaves, the way a NIC's TSO does (headers
/// copied, IPv4 total length and id, IPv6 payload length, TCP sequence number and flags adjusted per segment,
/// and the checksums computed), or, for a backend that takes GSO frames, passes it on whole with the lengths and
/// the partial checksum a GSO frame carries.
///
/// The guest's IP lengths and TCP checksum are not trusted: Linux sends LSOv2 with the IPv4 total length (or
/// IPv6 payload length) 0 and the pseudo-header sum without the length, as NDIS asks; both are rewritten.
public enum LargeSendOffload {
    /// The smallest MSS taken: below it a guest could make one request cost thousands of frames.
    static let minimumMSS = 64
    /// What NetVSP offers as `ip4_maxsz`/`ip6_maxsz` (OpenVMM's figure).
    public static let maxOffloadSize: UInt32 = 62_780

    /// Segments `source[start ..< start + length]` into `out` (at least `maxFrame` bytes) and calls `emit`
    /// with each frame. False (nothing emitted) if the headers do not add up.
    static func segment(_ lso: NDISTCPLSOInfo, source: [UInt8], start: Int, length: Int, maxFrame: Int,
                        into out: inout [UInt8], _ emit: (UnsafeRawBufferPointer) -> Void) -> Bool {
        guard let layout = TCPFrameLayout(source, start: start, length: length, ipv6: lso.ipVersion == NDISTCPLSOInfo.ipVersion6,
                                          l4: Int(lso.tcpHeaderOffset)) else { return false }
        return segment(layout, mss: Int(lso.mss), source: source, start: start, length: length, maxFrame: maxFrame,
                       into: &out, emit)
    }

    /// The same for a frame described by a GSO `offload` (one a TAP handed over).
    public static func segment(_ offload: FrameOffload, source: [UInt8], start: Int, length: Int, maxFrame: Int,
                        into out: inout [UInt8], _ emit: (UnsafeRawBufferPointer) -> Void) -> Bool {
        guard offload.segmentation != .none,
              let layout = TCPFrameLayout(source, start: start, length: length, ipv6: offload.segmentation == .tcpIPv6,
                                          l4: offload.checksumStart) else { return false }
        return segment(layout, mss: offload.segmentSize, source: source, start: start, length: length,
                       maxFrame: maxFrame, into: &out, emit)
    }

    private static func segment(_ layout: TCPFrameLayout, mss requested: Int, source: [UInt8], start: Int, length: Int,
                                maxFrame: Int, into out: inout [UInt8], _ emit: (UnsafeRawBufferPointer) -> Void) -> Bool {
        let headers = layout.headers
        guard out.count >= maxFrame, headers < maxFrame else { return false }
        let mss = min(requested, maxFrame - headers)
        guard mss >= minimumMSS else { return false }
        let l3 = layout.l3, l4 = layout.l4, ipv6 = layout.ipv6
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
                ChecksumOffload.put16(&out, l3 + 4, UInt16(truncatingIfNeeded: layout.tcpHeader + n))
            } else {
                ChecksumOffload.put16(&out, l3 + 2, UInt16(truncatingIfNeeded: layout.ipHeader + layout.tcpHeader + n))
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

    /// Makes the LSOv2 send at `frame[start ..< start + length]` a GSO frame in place (IP lengths of the whole
    /// frame, the IPv4 header checksum, the TCP field holding the pseudo-header sum) and says how to cut it, at
    /// an MSS that keeps each segment within `maxFrame`. Nil if the headers do not add up or the frame is too
    /// large for one IP packet.
    static func leaveForReceiver(_ lso: NDISTCPLSOInfo, frame: inout [UInt8], start: Int, length: Int,
                                 maxFrame: Int) -> FrameOffload? {
        let ipv6 = lso.ipVersion == NDISTCPLSOInfo.ipVersion6
        guard let layout = TCPFrameLayout(frame, start: start, length: length, ipv6: ipv6, l4: Int(lso.tcpHeaderOffset))
        else { return nil }
        let headers = layout.headers, l3 = start + layout.l3, l4 = start + layout.l4
        guard headers < maxFrame else { return nil }
        let mss = min(Int(lso.mss), maxFrame - headers)
        guard mss >= minimumMSS else { return nil }
        let l4Length = length - layout.l4
        var pseudo: UInt32
        if ipv6 {
            guard length - layout.l3 - 40 <= 0xFFFF else { return nil }
            ChecksumOffload.put16(&frame, l3 + 4, UInt16(length - layout.l3 - 40))
            pseudo = ChecksumOffload.add(frame, l3 + 8, 32, 0)
        } else {
            guard length - layout.l3 <= 0xFFFF else { return nil }
            ChecksumOffload.put16(&frame, l3 + 2, UInt16(length - layout.l3))
            ChecksumOffload.setIPv4HeaderChecksum(&frame, l3, layout.ipHeader)
            pseudo = ChecksumOffload.add(frame, l3 + 12, 8, 0)
        }
        pseudo += 6 + UInt32(l4Length & 0xFFFF) + UInt32(l4Length >> 16)
        ChecksumOffload.put16(&frame, l4 + 16, ChecksumOffload.fold(pseudo))
        let cut = length - headers > mss
        return FrameOffload(checksumStart: layout.l4, checksumOffset: 16,
                            segmentation: !cut ? .none : ipv6 ? .tcpIPv6 : .tcpIPv4,
                            segmentSize: cut ? mss : 0, headerLength: cut ? headers : 0,
                            explicitCongestion: cut && frame[l4 + 13] & 0x80 != 0)
    }
}

/// Where a TCP frame's headers are, checked against the frame: Ethernet (one 802.1Q tag allowed), a fixed
/// IPv6 header or an IPv4 header with options, then TCP with options. Offsets are from the frame's start.
struct TCPFrameLayout {
    let l3: Int
    let ipv6: Bool
    let ipHeader: Int
    let l4: Int
    let tcpHeader: Int
    var headers: Int { l4 + tcpHeader }

    /// `l4`: where the sender says TCP starts (0: right after IP); it must be right after IP, since IPv6
    /// extension headers are not walked.
    init?(_ frame: [UInt8], start: Int, length: Int, ipv6: Bool, l4 given: Int) {
        guard length >= 14, start >= 0, start + length <= frame.count else { return nil }
        var l3 = 14
        if ChecksumOffload.u16(frame, start + 12) == 0x8100 { l3 += 4 }
        guard l3 + (ipv6 ? 40 : 20) <= length, frame[start + l3] >> 4 == (ipv6 ? 6 : 4) else { return nil }
        let ipHeader = ipv6 ? 40 : Int(frame[start + l3] & 0xF) * 4
        guard ipHeader >= 20 else { return nil }
        let l4 = given != 0 ? given : l3 + ipHeader
        guard l4 == l3 + ipHeader, l4 + 20 <= length else { return nil }
        // IPv6's next header (IPv4's protocol) must be TCP: a GSO frame of anything else is not cut here.
        guard frame[start + l3 + (ipv6 ? 6 : 9)] == 6 else { return nil }
        let tcpHeader = Int(frame[start + l4 + 12] >> 4) * 4
        guard tcpHeader >= 20, l4 + tcpHeader <= length else { return nil }
        self.l3 = l3
        self.ipv6 = ipv6
        self.ipHeader = ipHeader
        self.l4 = l4
        self.tcpHeader = tcpHeader
    }
}
