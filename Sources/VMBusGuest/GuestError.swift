import VMBusProtocol
import VMBusTransport

/// Errors of the guest bus driver and channel library.
public enum GuestError: Error, Equatable, Sendable, CustomStringConvertible {
    /// No version in the try order was accepted.
    case noCommonVersion(tried: [VMBusVersion])
    /// The host did not answer in time.
    case timedOut(String)
    /// The host is gone.
    case hostLost
    /// HvPostMessage kept failing.
    case postFailed(HvStatus)
    /// The host refused an open or a GPADL (its status code).
    case refused(String, status: UInt32)
    /// The device or channel was rescinded.
    case rescinded(relID: UInt32)
    /// Out of guest pages or relids, or a bad argument.
    case invalidArgument(String)
    case channel(ChannelError)
    case notConnected
    /// A thread or descriptor the bus needs could not be created.
    case outOfResources(String)

    public var description: String {
        switch self {
        case .noCommonVersion(let tried): return "the host accepted none of the versions \(tried.map(\.description).joined(separator: ", "))"
        case .timedOut(let what): return "timed out waiting for \(what)"
        case .hostLost: return "the host is gone"
        case .postFailed(let s): return "HvPostMessage failed: \(s)"
        case .refused(let what, let status): return "the host refused \(what) (status 0x\(String(status, radix: 16)))"
        case .rescinded(let relID): return "channel \(relID) was rescinded"
        case .invalidArgument(let s): return s
        case .channel(let e): return e.description
        case .notConnected: return "not connected to a host"
        case .outOfResources(let what): return "out of resources: \(what)"
        }
    }
}
