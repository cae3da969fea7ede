import VMBusProtocol

/// What the server state machine asks its runtime to do. The state machine itself does no I/O.
public enum ServerAction: Sendable, Equatable {
    /// Post a channel message to the guest.
    case send(ChannelMessage)
    /// Map the ring GPADL and start serving channel `relID`; the runtime answers with
    /// ``Server/channelOpenCompleted(relID:status:)``.
    case openChannel(relID: UInt32, ringRanges: [GPARange], downstreamPageOffset: UInt32, targetVP: UInt32,
                     userData: [UInt8])
    /// Stop serving channel `relID` (close, rescind or unload); it must not touch the ring afterwards.
    case closeChannel(relID: UInt32)
    /// The guest released `relID`; the runtime may forget per-channel state (doorbells, counters).
    case releaseChannel(relID: UInt32)
    /// The connection was reset (UNLOAD or a new INITIATE_CONTACT).
    case connectionReset
}

/// Why a guest message was refused. The server counts these and keeps going.
public enum ServerError: Error, Equatable, Sendable, CustomStringConvertible {
    case malformed(String)
    case unexpected(ChannelMessageType, String)
    case unknownRelID(UInt32)
    case unknownGPADL(UInt32)

    public var description: String {
        switch self {
        case .malformed(let s): return "malformed message: \(s)"
        case .unexpected(let t, let why): return "unexpected \(t): \(why)"
        case .unknownRelID(let r): return "unknown relid \(r)"
        case .unknownGPADL(let g): return "unknown GPADL handle 0x\(String(g, radix: 16))"
        }
    }
}
