/// The few frames the edge tests build and look for: ARP and ICMP echo over IPv4.
enum EdgeFrames {
    static let broadcast: [UInt8] = [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF]

    static func ethernet(to: [UInt8], from: [UInt8], type: UInt16) -> [UInt8] {
        to + from + [UInt8(type >> 8), UInt8(type & 0xFF)]
    }

    /// ARP who-has `target` from `mac`/`ip`.
    static func arpRequest(from mac: [UInt8], ip: [UInt8], target: [UInt8]) -> [UInt8] {
        ethernet(to: broadcast, from: mac, type: 0x0806)
            + [0, 1, 0x08, 0, 6, 4, 0, 1] + mac + ip + [0, 0, 0, 0, 0, 0] + target
    }

    /// The sender MAC of an ARP reply for `ip`, or nil if `frame` is not one.
    static func arpReplyMAC(_ frame: [UInt8], for ip: [UInt8]) -> [UInt8]? {
        guard frame.count >= 42, frame[12] == 0x08, frame[13] == 0x06, frame[20] == 0, frame[21] == 2,
              Array(frame[28..<32]) == ip else { return nil }
        return Array(frame[22..<28])
    }

    /// An ICMP echo request with `payload` bytes of pattern, checksums filled.
    static func icmpEcho(to: [UInt8], from: [UInt8], source: [UInt8], destination: [UInt8], id: UInt16,
                         sequence: UInt16, payload: Int) -> [UInt8] {
        var icmp: [UInt8] = [8, 0, 0, 0, UInt8(id >> 8), UInt8(id & 0xFF), UInt8(sequence >> 8), UInt8(sequence & 0xFF)]
        icmp += (0..<payload).map { UInt8(truncatingIfNeeded: $0) }
        put16(&icmp, 2, checksum(icmp))
        let total = 20 + icmp.count
        var ip: [UInt8] = [0x45, 0, UInt8(total >> 8), UInt8(total & 0xFF), 0, 1, 0x40, 0, 64, 1, 0, 0]
        ip += source + destination
        put16(&ip, 10, checksum(ip))
        return ethernet(to: to, from: from, type: 0x0800) + ip + icmp
    }

    /// Whether `frame` is an ICMP echo reply with this id and sequence whose checksums add up.
    static func isEchoReply(_ frame: [UInt8], id: UInt16, sequence: UInt16) -> Bool {
        guard frame.count >= 42, frame[12] == 0x08, frame[13] == 0x00, frame[14] == 0x45, frame[23] == 1 else { return false }
        let total = Int(frame[16]) << 8 | Int(frame[17])
        guard 14 + total <= frame.count, checksum(Array(frame[14..<34])) == 0 else { return false }
        let icmp = Array(frame[34..<(14 + total)])
        return icmp[0] == 0 && checksum(icmp) == 0 && icmp[4] == UInt8(id >> 8) && icmp[5] == UInt8(id & 0xFF)
            && icmp[6] == UInt8(sequence >> 8) && icmp[7] == UInt8(sequence & 0xFF)
    }

    static func checksum(_ b: [UInt8]) -> UInt16 {
        var sum: UInt32 = 0
        var i = 0
        while i + 1 < b.count { sum += UInt32(b[i]) << 8 | UInt32(b[i + 1]); i += 2 }
        if i < b.count { sum += UInt32(b[i]) << 8 }
        while sum > 0xFFFF { sum = (sum & 0xFFFF) + (sum >> 16) }
        return ~UInt16(sum)
    }

    static func put16(_ b: inout [UInt8], _ at: Int, _ v: UInt16) {
        b[at] = UInt8(v >> 8)
        b[at + 1] = UInt8(v & 0xFF)
    }
}
