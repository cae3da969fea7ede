import VMBusICProtocol
import VMBusWire

/// The kernel side of `/dev/vmbus/hv_fcopy` (Linux 6.1's hv_fcopy.c, towards hv_fcopy_daemon; Linux 6.10
/// moved file copy to uio): the daemon registers by writing its 32-bit version, FCOPY_VERSION_1 (answered with
/// FCOPY_CURRENT_VERSION) or FCOPY_VERSION_0 (not answered). Each request is then the host's message with its
/// names in UTF-8 (`hv_start_fcopy`), or as it came (`hv_do_fcopy`, or the bare header to complete or cancel),
/// and each answer is the daemon's 32-bit status.
public final class FCopyDaemonLink: Sendable {
    public let device: UtilTransportDevice
    let session: DaemonSession
    public let timeoutNanoseconds: UInt64

    public static let FCOPY_VERSION_0: UInt32 = 0
    public static let FCOPY_VERSION_1: UInt32 = 1
    public static let FCOPY_CURRENT_VERSION: UInt32 = FCOPY_VERSION_1

    public init(device: UtilTransportDevice = UtilTransportDevice(name: "hv_fcopy"),
                timeoutNanoseconds: UInt64 = HV_UTIL_TIMEOUT * 1_000_000_000) {
        self.device = device
        self.timeoutNanoseconds = timeoutNanoseconds
        session = DaemonSession(device: device, register: { bytes in
            guard let version = Word32.value(bytes) else { return nil }
            switch version {
            case Self.FCOPY_VERSION_0: return (version, nil)
            case Self.FCOPY_VERSION_1: return (version, Word32.bytes(Self.FCOPY_CURRENT_VERSION))
            default: return nil
            }
        }, answerSizeIsValid: { $0 == 4 })
    }

    /// Whether hv_fcopy_daemon is attached and registered.
    public var isAttached: Bool { session.isRegistered }

    /// START_FILE_COPY with `start` as the host sent it (UTF-16 names); nil when no daemon is attached.
    public func start(_ start: FCopyStart) -> ICStatus? {
        guard let daemonForm = try? start.daemonCopy() else { return .fail }
        return exchange(daemonForm.wireBytes)
    }

    /// WRITE_TO_FILE with one fragment.
    public func write(_ data: FCopyData) -> ICStatus? { exchange(data.wireBytes) }

    /// COMPLETE_FCOPY or CANCEL_FCOPY.
    public func finish(_ operation: FCopyOperation) -> ICStatus? {
        guard operation == .completeFCopy || operation == .cancelFCopy else { return .fail }
        return exchange(FCopyHeader(operation: operation).wireBytes)
    }

    private func exchange(_ message: [UInt8]) -> ICStatus? {
        switch session.exchange(message, timeoutNanoseconds: timeoutNanoseconds) {
        case .noDaemon: return nil
        case .busy, .timedOut, .gone: return .fail
        case .answered(let bytes):
            return Word32.value(bytes).map { ICStatus(rawValue: $0) } ?? .fail
        }
    }
}
