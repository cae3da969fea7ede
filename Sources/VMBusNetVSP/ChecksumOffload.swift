import VMBusNetProtocol

/// The checksums a guest leaves to the host (`TCPIP_CHKSUM_PKTINFO` on transmit), filled in before a frame
/// leaves for the backend, which may be a wire that checks them.
///
/// The L4 checksum is computed from scratch (pseudo-header, then the segment with its checksum field taken as
/// zero), so whatever the guest left in the field (Linux leaves the pseudo-header sum of CHECKSUM_PARTIAL)
/// does not matter. A frame whose headers do not add up is passed on unchanged and counted by the caller.
enum ChecksumOffload {
    /// Applies `info` to the frame at `frame[start ..< start + length]`; false if the headers were unusable.
    static func apply(_ info: NDISTCPIPChecksumInfo, to frame: inout [UInt8], start: Int, length: Int) -> Bool {
        guard info.isIPv4 || info.isIPv6 else { return true }
        guard let walk = walk(info, &frame, start: start, length: length) else { return false }
        guard let (l4, l4Length, pseudo) = walk else { return true }
        return finishL4(info, &frame, l4, l4Length, pseudo)
    }

    /// Leaves the L4 checksum `info` asks for partial instead, for a backend whose receiver finishes it (see
    /// ``FrameOffload``): the IPv4 header checksum is computed, the L4 field gets the pseudo-header sum. Nil if
    /// the headers were unusable or no L4 checksum was asked for.
    static func leavePartial(_ info: NDISTCPIPChecksumInfo, in frame: inout [UInt8], start: Int, length: Int) -> FrameOffload? {
        guard info.isIPv4 || info.isIPv6, let walk = walk(info, &frame, start: start, length: length),
              let (l4, l4Length, pseudo) = walk else { return nil }
        let offset = info.tcpChecksum ? 16 : 6
        guard l4 + offset + 2 <= l4 + l4Length else { return nil }
        put16(&frame, l4 + offset, fold(pseudo))
        return FrameOffload(checksumStart: l4 - start, checksumOffset: offset)
    }

    /// Finds the L4 segment `info` names and sums its pseudo-header, computing the IPv4 header checksum on the
    /// way if asked: nil if the headers do not add up, .some(nil) if no L4 checksum is asked for.
    private static func walk(_ info: NDISTCPIPChecksumInfo, _ frame: inout [UInt8], start: Int,
                             length: Int) -> (l4: Int, length: Int, pseudo: UInt32)?? {
        guard length >= 14, start >= 0, start + length <= frame.count else { return nil }
        var l3 = start + 14
        // One 802.1Q tag may sit in the frame (Linux normally puts it in a PPI instead).
        if u16(frame, start + 12) == 0x8100 { l3 += 4 }
        let end = start + length
        if info.isIPv4 {
            guard l3 + 20 <= end, frame[l3] >> 4 == 4 else { return nil }
            let ihl = Int(frame[l3] & 0xF) * 4
            guard ihl >= 20, l3 + ihl <= end else { return nil }
            if info.ipHeaderChecksum { setIPv4HeaderChecksum(&frame, l3, ihl) }
            guard info.tcpChecksum || info.udpChecksum else { return .some(nil) }
            let total = Int(u16(frame, l3 + 2))
            guard total >= ihl, l3 + total <= end else { return nil }
            let l4 = info.tcpHeaderOffset != 0 ? start + Int(info.tcpHeaderOffset) : l3 + ihl
            guard l4 >= l3 + ihl, l4 <= l3 + total else { return nil }
            let l4Length = l3 + total - l4
            var pseudo = add(frame, l3 + 12, 8, 0)
            pseudo += UInt32(info.tcpChecksum ? 6 : 17) + UInt32(l4Length)
            return (l4, l4Length, pseudo)
        }
        guard l3 + 40 <= end, frame[l3] >> 4 == 6 else { return nil }
        guard info.tcpChecksum || info.udpChecksum else { return .some(nil) }
        let payload = Int(u16(frame, l3 + 4))
        guard l3 + 40 + payload <= end else { return nil }
        let l4 = info.tcpHeaderOffset != 0 ? start + Int(info.tcpHeaderOffset) : l3 + 40
        guard l4 >= l3 + 40, l4 <= l3 + 40 + payload else { return nil }
        let l4Length = l3 + 40 + payload - l4
        var pseudo = add(frame, l3 + 8, 32, 0)
        pseudo += UInt32(info.tcpChecksum ? 6 : 17) + UInt32(l4Length & 0xFFFF) + UInt32(l4Length >> 16)
        return (l4, l4Length, pseudo)
    }

    /// Computes the IPv4 header checksum of the `ihl`-byte header at `l3`.
    static func setIPv4HeaderChecksum(_ frame: inout [UInt8], _ l3: Int, _ ihl: Int) {
        frame[l3 + 10] = 0
        frame[l3 + 11] = 0
        put16(&frame, l3 + 10, ~fold(add(frame, l3, ihl, 0)))
    }

    private static func finishL4(_ info: NDISTCPIPChecksumInfo, _ frame: inout [UInt8], _ l4: Int, _ length: Int,
                                 _ pseudo: UInt32) -> Bool {
        let field = info.tcpChecksum ? l4 + 16 : l4 + 6
        guard field + 2 <= l4 + length else { return false }
        frame[field] = 0
        frame[field + 1] = 0
        var sum = ~fold(add(frame, l4, length, pseudo))
        // UDP sends "no checksum" as 0, so a computed 0 goes out as its other form (RFC 768).
        if !info.tcpChecksum && sum == 0 { sum = 0xFFFF }
        put16(&frame, field, sum)
        return true
    }

    /// One's-complement sum of `count` bytes at `at` (big-endian words, an odd last byte padded), added to
    /// `initial`; folded, so callers may keep adding to it.
    static func add(_ b: [UInt8], _ at: Int, _ count: Int, _ initial: UInt32) -> UInt32 {
        UInt32(InternetChecksum.sum(b, at: at, count: count, initial: initial))
    }

    static func fold(_ s: UInt32) -> UInt16 {
        var sum = s
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return UInt16(sum)
    }

    @inline(__always) static func u16(_ b: [UInt8], _ at: Int) -> UInt16 { UInt16(b[at]) << 8 | UInt16(b[at + 1]) }

    @inline(__always) static func put16(_ b: inout [UInt8], _ at: Int, _ v: UInt16) {
        b[at] = UInt8(v >> 8)
        b[at + 1] = UInt8(truncatingIfNeeded: v)
    }
}
