/// `enum hv_vss_op` plus the daemon handshake codes: `hv_vss_hdr.operation`. Open.
public struct VSSOperation: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `VSS_OP_CREATE`: Linux 6.12 answers HV_S_OK without acting, as for every operation it does not handle.
    public static let create = Self(rawValue: 0)
    /// `VSS_OP_DELETE`
    public static let delete = Self(rawValue: 1)
    /// `VSS_OP_HOT_BACKUP`: can the guest take a live backup? Linux 6.12 asks its daemon, then answers with
    /// the daemon's status and `vss_cf.flags` ``VSSCheckFeature/hbuNoAutoRecovery``.
    public static let hotBackup = Self(rawValue: 2)
    /// `VSS_OP_GET_DM_INFO`: Linux answers at once with `dm_info.flags` 0.
    public static let getDMInfo = Self(rawValue: 3)
    /// `VSS_OP_BU_COMPLETE`
    public static let buComplete = Self(rawValue: 4)
    /// `VSS_OP_FREEZE`: passed to the daemon (HV_E_FAIL at once when none has registered).
    public static let freeze = Self(rawValue: 5)
    /// `VSS_OP_THAW`: passed to the daemon, as FREEZE.
    public static let thaw = Self(rawValue: 6)
    /// `VSS_OP_AUTO_RECOVER`
    public static let autoRecover = Self(rawValue: 7)
    /// `VSS_OP_COUNT`
    public static let count = Self(rawValue: 8)
    /// `VSS_OP_REGISTER`: the old daemons' handshake, on the character device only.
    public static let register = Self(rawValue: 128)
    /// `VSS_OP_REGISTER1`: the handshake of daemons that expect a reply to it.
    public static let register1 = Self(rawValue: 129)

    public var description: String {
        switch self {
        case .create: return "VSS_OP_CREATE"
        case .delete: return "VSS_OP_DELETE"
        case .hotBackup: return "VSS_OP_HOT_BACKUP"
        case .getDMInfo: return "VSS_OP_GET_DM_INFO"
        case .buComplete: return "VSS_OP_BU_COMPLETE"
        case .freeze: return "VSS_OP_FREEZE"
        case .thaw: return "VSS_OP_THAW"
        case .autoRecover: return "VSS_OP_AUTO_RECOVER"
        case .register: return "VSS_OP_REGISTER"
        case .register1: return "VSS_OP_REGISTER1"
        default: return "VSS operation \(rawValue)"
        }
    }
}
