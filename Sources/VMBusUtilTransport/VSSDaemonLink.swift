import VMBusICProtocol
import VMBusWire

/// hv_vss_daemon's answer to a freeze, thaw or hot-backup check.
public struct VSSDaemonAnswer: Equatable, Sendable {
    /// HV_S_OK, or HV_E_FAIL when a filesystem did not freeze (the daemon thaws what it froze), it timed out or
    /// went away.
    public var status: ICStatus
    /// `vss_cf.flags` of a hot-backup answer (VSS_HBU_NO_AUTO_RECOVERY, as Linux answers).
    public var flags: UInt32

    public init(status: ICStatus, flags: UInt32 = 0) {
        self.status = status
        self.flags = flags
    }
}

/// The kernel side of `/dev/vmbus/hv_vss` (Linux's hv_snapshot.c, towards its daemon): the daemon registers
/// with a 12-byte `hv_vss_msg` saying VSS_OP_REGISTER1 (answered with the driver's version, a 32-bit
/// VSS_OP_REGISTER1) or the older VSS_OP_REGISTER (not answered); each request is then one `hv_vss_msg`, and
/// the answer is the same struct with the daemon's status in `error`.
public final class VSSDaemonLink: Sendable {
    public let device: UtilTransportDevice
    let session: DaemonSession
    public let timeoutNanoseconds: UInt64

    public init(device: UtilTransportDevice = UtilTransportDevice(name: "hv_vss"),
                timeoutNanoseconds: UInt64 = HV_UTIL_TIMEOUT * 1_000_000_000) {
        self.device = device
        self.timeoutNanoseconds = timeoutNanoseconds
        session = DaemonSession(device: device, register: { bytes in
            guard bytes.count == VSSMessage.wireSize else { return nil }
            switch VSSOperation(rawValue: bytes[0]) {
            case .register: return (UInt32(VSSOperation.register.rawValue), nil)
            case .register1:
                let ours = UInt32(VSSOperation.register1.rawValue)
                return (ours, Word32.bytes(ours))
            default: return nil
            }
        }, answerSizeIsValid: { $0 == VSSMessage.wireSize })
    }

    /// Whether hv_vss_daemon is attached and registered.
    public var isAttached: Bool { session.isRegistered }

    /// Asks the daemon to freeze, thaw, or say what a hot backup needs (VSS_OP_FREEZE, VSS_OP_THAW,
    /// VSS_OP_HOT_BACKUP); nil when none is attached.
    public func perform(_ operation: VSSOperation) -> VSSDaemonAnswer? {
        guard [.freeze, .thaw, .hotBackup].contains(operation) else { return VSSDaemonAnswer(status: .fail) }
        // Linux fills a hot-backup check's answer in itself (no auto-recovery) and the daemon hands it back.
        let flags = operation == .hotBackup ? VSSCheckFeature.hbuNoAutoRecovery : 0
        switch session.exchange(VSSMessage(operation: operation, flags: flags).wireBytes,
                                timeoutNanoseconds: timeoutNanoseconds) {
        case .noDaemon: return nil
        case .busy, .timedOut, .gone: return VSSDaemonAnswer(status: .fail)
        case .answered(let bytes):
            var r = WireReader(bytes)
            guard let m = try? VSSMessage(from: &r) else { return VSSDaemonAnswer(status: .fail) }
            return VSSDaemonAnswer(status: m.error, flags: operation == .hotBackup ? m.vssCF.flags : 0)
        }
    }
}
