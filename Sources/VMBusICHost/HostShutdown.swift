import VMBusICProtocol
import VMBusWire

/// The shutdown service: asks the guest to power off, restart or hibernate.
public struct HostShutdown: Sendable {
    public let channel: ICHostChannel
    public init(channel: ICHostChannel) { self.channel = channel }

    /// Sends the request and returns the guest's status (HV_S_OK: it is going down).
    public func request(_ flags: ShutdownFlags, reason: String = "",
                        timeoutNanoseconds: UInt64 = 10_000_000_000) throws(ICHostError) -> ICStatus {
        // display_message: UTF-16LE as Hyper-V's UI shows it; cut to fit.
        let text = (try? ICString.encode(reason, as: .utf16LE, capacity: ShutdownMessage.displayMessageSize,
                                         overflow: .truncate).bytes) ?? []
        let message = ShutdownMessage(flags: flags, displayMessage: text)
        return try channel.transact(.shutdown, body: message.wireBytes, timeoutNanoseconds: timeoutNanoseconds)
            .header.status
    }
}
