/// `enum hv_kvp_exchg_pool`: `hv_kvp_hdr.pool`. Open, so a hostile pool number reaches the HV_E_FAIL answer.
public struct KVPPool: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `KVP_POOL_EXTERNAL`: written by the host, read by the guest.
    public static let external = Self(rawValue: 0)
    /// `KVP_POOL_GUEST`: written by the guest, read by the host.
    public static let guest = Self(rawValue: 1)
    /// `KVP_POOL_AUTO`: facts the guest publishes (OS, FQDN, addresses).
    public static let auto = Self(rawValue: 2)
    /// `KVP_POOL_AUTO_EXTERNAL`
    public static let autoExternal = Self(rawValue: 3)
    /// `KVP_POOL_AUTO_INTERNAL`
    public static let autoInternal = Self(rawValue: 4)
    /// `KVP_POOL_COUNT`
    public static let count = 5

    public static let all: [KVPPool] = [.external, .guest, .auto, .autoExternal, .autoInternal]

    /// One of the five pools.
    public var isValid: Bool { Int(rawValue) < Self.count }

    public var description: String {
        switch self {
        case .external: return "KVP_POOL_EXTERNAL"
        case .guest: return "KVP_POOL_GUEST"
        case .auto: return "KVP_POOL_AUTO"
        case .autoExternal: return "KVP_POOL_AUTO_EXTERNAL"
        case .autoInternal: return "KVP_POOL_AUTO_INTERNAL"
        default: return "KVP pool \(rawValue)"
        }
    }
}
