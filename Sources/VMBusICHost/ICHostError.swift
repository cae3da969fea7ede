import VMBusICProtocol
import VMBusTransport

/// Why a host-side IC request did not get an answer.
public enum ICHostError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The guest has not opened the service's channel (or closed it).
    case notConnected(String)
    /// The guest opened the channel but has not answered NEGOTIATE yet.
    case negotiating(String)
    /// The guest answered NEGOTIATE with no common version.
    case refused(String)
    /// Another request of this service is in flight and did not finish in time.
    case busy(String)
    /// The guest did not answer in time.
    case timedOut(String)
    /// The answer was not a well-formed answer to our request.
    case malformedAnswer(String)
    /// Sending failed (ring full for too long, channel gone).
    case channel(String)
    /// The request cannot be built (a key too long, a bad path).
    case invalidRequest(String)

    public var description: String {
        switch self {
        case .notConnected(let s): return "\(s): the guest has not opened this service"
        case .negotiating(let s): return "\(s): the guest has not finished version negotiation"
        case .refused(let s): return "\(s): the guest refused every version we offered"
        case .busy(let s): return "\(s): another request is still in flight"
        case .timedOut(let s): return "\(s): the guest did not answer in time"
        case .malformedAnswer(let s): return "malformed answer: \(s)"
        case .channel(let s): return "channel: \(s)"
        case .invalidRequest(let s): return "invalid request: \(s)"
        }
    }
}
