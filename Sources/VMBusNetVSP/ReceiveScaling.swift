import VMBusNetProtocol

/// The guest's RSS settings (`OID_GEN_RECEIVE_SCALE_PARAMETERS`) and the Toeplitz hash that spreads received
/// frames over the channels with them: a flow (same addresses and ports) always hashes to the same channel,
/// so its frames stay in order.
public struct ReceiveScaling: Equatable, Sendable {
    /// Channel index (0 = primary) per hash bucket.
    public var indirectionTable: [UInt32]
    public var hashKey: [UInt8]

    public init(indirectionTable: [UInt32], hashKey: [UInt8]) {
        self.indirectionTable = indirectionTable
        self.hashKey = hashKey
    }

    /// The channel for `frame`: Toeplitz over source and destination address, plus the ports for TCP
    /// (NDIS's TCP_IPV4 / IPV4 / TCP_IPV6 / IPV6 hash types); frames that are not IP go to the primary.
    func channel(for frame: UnsafeRawBufferPointer) -> Int {
        guard !indirectionTable.isEmpty, let hash = Self.hash(frame, key: hashKey) else { return 0 }
        return Int(indirectionTable[Int(hash % UInt32(indirectionTable.count))])
    }

    static func hash(_ f: UnsafeRawBufferPointer, key: [UInt8]) -> UInt32? {
        guard f.count >= 14 else { return nil }
        var l3 = 14
        var type = UInt16(f[12]) << 8 | UInt16(f[13])
        if type == 0x8100, f.count >= 18 {
            l3 = 18
            type = UInt16(f[16]) << 8 | UInt16(f[17])
        }
        var input = InlineArray<36, UInt8>(repeating: 0)
        var n = 0
        func take(_ at: Int, _ count: Int) {
            for i in 0..<count { input[n + i] = f[at + i] }
            n += count
        }
        let l4: Int
        let protocolNumber: UInt8
        switch type {
        case 0x0800:
            guard f.count >= l3 + 20, f[l3] >> 4 == 4 else { return nil }
            take(l3 + 12, 8)
            l4 = l3 + Int(f[l3] & 0xF) * 4
            protocolNumber = f[l3 + 9]
            // A fragment after the first has no ports.
            let fragment = (UInt16(f[l3 + 6]) << 8 | UInt16(f[l3 + 7])) & 0x1FFF
            if fragment != 0 { return toeplitz(input, n, key) }
        case 0x86DD:
            guard f.count >= l3 + 40 else { return nil }
            take(l3 + 8, 32)
            l4 = l3 + 40
            protocolNumber = f[l3 + 6]
        default:
            return nil
        }
        if protocolNumber == 6, f.count >= l4 + 4 { take(l4, 4) }
        return toeplitz(input, n, key)
    }

    /// The Toeplitz hash of the first `count` bytes of `input` under `key` (Microsoft's RSS specification):
    /// for each set input bit, XOR in the 32 key bits starting at that bit position.
    static func toeplitz(_ input: InlineArray<36, UInt8>, _ count: Int, _ key: [UInt8]) -> UInt32 {
        guard key.count >= 4 else { return 0 }
        var result: UInt32 = 0
        var window = UInt32(key[0]) << 24 | UInt32(key[1]) << 16 | UInt32(key[2]) << 8 | UInt32(key[3])
        for i in 0..<count {
            let byte = input[i]
            let next = i + 4 < key.count ? key[i + 4] : 0
            for bit in 0..<8 {
                if byte & (0x80 >> UInt8(bit)) != 0 { result ^= window }
                window = window << 1 | UInt32((next >> UInt8(7 - bit)) & 1)
            }
        }
        return result
    }
}
