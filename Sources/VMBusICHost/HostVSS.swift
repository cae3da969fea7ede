import VMBusICProtocol
import VMBusWire

/// The VSS (backup) service: asks the guest to freeze its filesystems for a snapshot and to thaw them.
public struct HostVSS: Sendable {
    public let channel: ICHostChannel
    /// Freezing many filesystems can take long; Linux gives its daemon 15 minutes.
    public static let defaultTimeoutNanoseconds: UInt64 = 60_000_000_000

    public init(channel: ICHostChannel) { self.channel = channel }

    /// The guest's answer.
    public struct Answer: Equatable, Sendable {
        public var status: ICStatus
        /// `vss_cf.flags` / `dm_info.flags` of the answer.
        public var flags: UInt32
    }

    /// VSS_OP_FREEZE, VSS_OP_THAW, VSS_OP_HOT_BACKUP, VSS_OP_GET_DM_INFO, …
    public func perform(_ operation: VSSOperation,
                        timeoutNanoseconds: UInt64 = defaultTimeoutNanoseconds) throws(ICHostError) -> Answer {
        let answer = try channel.transact(.vss, body: VSSMessage(operation: operation).wireBytes,
                                          timeoutNanoseconds: timeoutNanoseconds)
        let flags = (try? answer.decodeBody(VSSMessage.self))?.flags ?? 0
        return Answer(status: answer.header.status, flags: flags)
    }

    public func freeze() throws(ICHostError) -> Answer { try perform(.freeze) }
    public func thaw() throws(ICHostError) -> Answer { try perform(.thaw) }
}
