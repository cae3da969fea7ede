import Atomics
import VMBusICProtocol
import VMBusWire

/// Heartbeat: the sequence number plus one, the rest of the host's bytes as they came (Linux's
/// `heartbeat_onchannelcallback`). Answered on the interrupt thread: a guest that can run at all answers.
public final class HeartbeatResponder: ICResponder {
    public let service = ICService.heartbeat
    public let mayBlock = false
    /// The last sequence number the host sent.
    public let lastSequence = ManagedAtomic<UInt64>(0)

    public init() {}

    public func respond(to request: ICMessage, versions: ICNegotiatedVersions?) -> ICReply {
        guard request.header.icmsgtype == .heartbeat, request.body.count >= HeartbeatMessage.minimumSize,
              let hb = try? request.decodeBody(HeartbeatMessage.self) else {
            return .failure(request)
        }
        lastSequence.store(hb.seqNum, ordering: .relaxed)
        // Only the first 8 bytes change: the reserved words stay exactly as the host sent them, however many.
        var body = request.body
        let next = hb.linuxResponse.seqNum
        for i in 0..<8 { body[i] = UInt8(truncatingIfNeeded: next >> (8 * UInt64(i))) }
        return ICReply(request.linuxResponse(status: .ok, body: body))
    }
}
