import VMBusICProtocol
import VMBusWire

/// Shutdown: answers as Linux's `shutdown_onchannelcallback` (HV_S_OK for power off and restart, HV_E_FAIL
/// for hibernate, which we cannot do, and for unknown flags), then runs the action once the answer is out.
public final class ShutdownResponder: ICResponder {
    public let service = ICService.shutdown
    public let mayBlock = false
    let action: @Sendable (ShutdownMessage.LinuxAction, ShutdownMessage) -> Void

    /// `action` runs on the interrupt thread after the answer: hand real work to another thread.
    public init(action: @escaping @Sendable (ShutdownMessage.LinuxAction, ShutdownMessage) -> Void) {
        self.action = action
    }

    public func respond(to request: ICMessage, versions: ICNegotiatedVersions?) -> ICReply {
        guard request.header.icmsgtype == .shutdown, let message = try? request.decodeBody(ShutdownMessage.self) else {
            return .failure(request)
        }
        let status = message.linuxStatus(hibernationSupported: false)
        guard status == .ok else { return .failure(request, status) }
        let action = self.action
        let kind = message.linuxAction
        return ICReply(request.linuxResponse(status: .ok)) { action(kind, message) }
    }
}
