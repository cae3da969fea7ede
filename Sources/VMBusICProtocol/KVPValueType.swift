/// `hv_kvp_exchg_msg_value.value_type`: the registry types of Windows. Open.
public struct KVPValueType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `REG_SZ`: a string; Linux answers every GET and ENUMERATE with it.
    public static let sz = Self(rawValue: 1)
    /// `REG_U32`: `value_u32`.
    public static let u32 = Self(rawValue: 4)
    /// `REG_U64`: `value_u64`.
    public static let u64 = Self(rawValue: 8)

    public var description: String {
        switch self {
        case .sz: return "REG_SZ"
        case .u32: return "REG_U32"
        case .u64: return "REG_U64"
        default: return "value type \(rawValue)"
        }
    }
}
