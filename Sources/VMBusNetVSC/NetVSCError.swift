import VMBusGuest

/// Why a NetVSC operation failed.
public enum NetVSCError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The host refused or botched a step of the initialization.
    case negotiation(String)
    /// The host sent something malformed where an answer was awaited.
    case malformedResponse(String)
    case timedOut(String)
    case channel(GuestError)
    case invalidArgument(String)
    /// The NIC was stopped or never started.
    case stopped

    public var description: String {
        switch self {
        case .negotiation(let s): return "netvsc negotiation: \(s)"
        case .malformedResponse(let s): return "netvsc: malformed response: \(s)"
        case .timedOut(let s): return "netvsc: timed out: \(s)"
        case .channel(let e): return "netvsc channel: \(e)"
        case .invalidArgument(let s): return "netvsc: \(s)"
        case .stopped: return "netvsc: stopped"
        }
    }
}

/// What ``NetVSC/send(_:offload:)`` did with a frame.
public enum NetVSCSendResult: Equatable, Sendable {
    case sent
    /// No send section or buffer free, or the ring is full (Linux stops the queue): try again later.
    case busy
    /// Never sendable as it is: too short or too long, the NIC stopped, or the channel broke.
    case dropped
}
