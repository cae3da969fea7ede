/// Errors of the transport layer: system calls, a lost peer, a refused or malformed frame.
public enum TransportError: Error, Equatable, Sendable, CustomStringConvertible {
    case system(call: String, errno: Int32)
    /// The peer went away (process exit, socket closed).
    case disconnected
    /// A wait ran out.
    case timedOut(String)
    /// The peer sent something the transport protocol does not allow.
    case protocolViolation(String)

    public var description: String {
        switch self {
        case .system(let call, let e): return "\(call) failed: errno \(e)"
        case .disconnected: return "the peer disconnected"
        case .timedOut(let what): return "timed out waiting for \(what)"
        case .protocolViolation(let what): return "transport protocol violation: \(what)"
        }
    }
}
