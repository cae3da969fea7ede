import VMBusGuest
import VMBusRing
import VMBusTransport

/// A guest channel handler for tests that speak a device protocol by hand: it keeps each completion's
/// payload by request context until a test takes it.
public final class CompletionCapture: GuestChannelHandler, @unchecked Sendable {
    private let completions = Condition<[UInt64: [UInt8]]>([:])

    public init() {}

    public func completionReceived(context: UInt64, packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {
        let bytes = buffer.payloadArray(of: packet)
        completions.update { $0[context] = bytes }
    }

    /// The payload of the completion for `context`, waiting up to 10 s.
    public func wait(_ context: UInt64, timeoutNanoseconds: UInt64 = 10_000_000_000) -> [UInt8]? {
        completions.wait(timeoutNanoseconds: timeoutNanoseconds) { $0.removeValue(forKey: context) }
    }
}
