import VMBusICProtocol

/// What a guest integration service does with the host's requests: one per service, the analogue of a
/// Linux hv_utils channel callback after its NEGOTIATE step.
public protocol ICResponder: AnyObject, Sendable {
    var service: ICService { get }
    /// Whether ``respond(to:versions:)`` may block (a daemon exchange, a hook command): then requests are
    /// answered on the service's own thread instead of the bus's interrupt thread.
    var mayBlock: Bool { get }
    /// The answer to `request` (never a NEGOTIATE), and what to do once it was sent.
    func respond(to request: ICMessage, versions: ICNegotiatedVersions?) -> ICReply
}

/// An answer, and an action that runs after it was sent (a shutdown starts only once the host has its
/// HV_S_OK, as in Linux).
public struct ICReply: Sendable {
    public var message: ICMessage
    public var afterSend: (@Sendable () -> Void)?

    public init(_ message: ICMessage, afterSend: (@Sendable () -> Void)? = nil) {
        self.message = message
        self.afterSend = afterSend
    }

    /// Linux's answer to a request it cannot act on: the request back, HV_E_FAIL.
    public static func failure(_ request: ICMessage, _ status: ICStatus = .fail) -> ICReply {
        ICReply(request.linuxResponse(status: status))
    }
}
