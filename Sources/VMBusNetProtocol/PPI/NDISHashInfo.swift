/// The hash function and the header fields it covered (`NDIS_HASH_*` of `hyperv_net.h`): the hash-info PPI on
/// receive and `hashinfo` of ``NDISReceiveScaleParameters``.
public struct NDISHashInfo: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `NDIS_HASH_FUNC_TOEPLITZ`
    public static let toeplitz = Self(rawValue: 0x0000_0001)
    /// `NDIS_HASH_IPV4`
    public static let ipv4 = Self(rawValue: 0x0000_0100)
    /// `NDIS_HASH_TCP_IPV4`
    public static let tcpIPv4 = Self(rawValue: 0x0000_0200)
    /// `NDIS_HASH_IPV6`
    public static let ipv6 = Self(rawValue: 0x0000_0400)
    /// `NDIS_HASH_IPV6_EX`
    public static let ipv6Ex = Self(rawValue: 0x0000_0800)
    /// `NDIS_HASH_TCP_IPV6`
    public static let tcpIPv6 = Self(rawValue: 0x0000_1000)
    /// `NDIS_HASH_TCP_IPV6_EX`
    public static let tcpIPv6Ex = Self(rawValue: 0x0000_2000)

    /// What Linux asks for in its RSS parameters.
    public static let linuxRSS: Self = [.toeplitz, .ipv4, .tcpIPv4, .ipv6, .tcpIPv6]

    /// The hash function bits (the low byte).
    public var function: UInt32 { rawValue & 0xFF }
}
