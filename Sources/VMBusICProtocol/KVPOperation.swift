/// `enum hv_kvp_exchg_op` plus the daemon handshake codes: `hv_kvp_hdr.operation`. Open.
public struct KVPOperation: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `KVP_OP_GET`: the value of a key (host → guest; Linux answers from the daemon's pools).
    public static let get = Self(rawValue: 0)
    /// `KVP_OP_SET`
    public static let set = Self(rawValue: 1)
    /// `KVP_OP_DELETE`
    public static let delete = Self(rawValue: 2)
    /// `KVP_OP_ENUMERATE`: the key at an index of a pool.
    public static let enumerate = Self(rawValue: 3)
    /// `KVP_OP_GET_IP_INFO`: carried as ``KVPIPMessage`` on VMBus.
    public static let getIPInfo = Self(rawValue: 4)
    /// `KVP_OP_SET_IP_INFO`: carried as ``KVPIPMessage`` on VMBus.
    public static let setIPInfo = Self(rawValue: 5)
    /// `KVP_OP_COUNT`
    public static let count = Self(rawValue: 6)
    /// `KVP_OP_REGISTER` (a #define equal to `KVP_OP_GET_IP_INFO`): the old daemons' handshake, on the
    /// character device only.
    public static let register = Self(rawValue: 4)
    /// `KVP_OP_REGISTER1`: the handshake of daemons that can set IP settings.
    public static let register1 = Self(rawValue: 100)

    public var description: String {
        switch rawValue {
        case 0: return "KVP_OP_GET"
        case 1: return "KVP_OP_SET"
        case 2: return "KVP_OP_DELETE"
        case 3: return "KVP_OP_ENUMERATE"
        case 4: return "KVP_OP_GET_IP_INFO"
        case 5: return "KVP_OP_SET_IP_INFO"
        case 100: return "KVP_OP_REGISTER1"
        default: return "KVP operation \(rawValue)"
        }
    }
}
