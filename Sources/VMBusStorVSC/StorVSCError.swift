import VMBusGuest

/// Why a StorVSC request or the controller's initialization failed. Every failure a host can cause (a bad
/// status, a malformed completion, silence) ends up as one of these; none traps.
public enum StorVSCError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The initialization sequence failed (a refused step, no common protocol version).
    case negotiation(String)
    /// The host did not complete the request in time. The request's bounce pages stay reserved until the host
    /// completes it or the channel goes away: the host may still be writing into them.
    case timedOut(String)
    /// The LUN is gone: hot-removed, or the host answered INVALID_LUN / NO_DEVICE.
    case lunRemoved(lun: UInt8)
    /// The controller's channels are closed, rescinded, or the host is lost.
    case controllerGone(String)
    /// CHECK CONDITION with sense data not mapped to a more specific case.
    case checkCondition(senseKey: UInt8, asc: UInt8, ascq: UInt8)
    /// MEDIUM ERROR sense.
    case mediumError(asc: UInt8, ascq: UInt8)
    /// DATA PROTECT sense: the disk is read-only.
    case writeProtected
    /// BUSY (SRB or SCSI status) or UNIT ATTENTION persisted through every retry.
    case busy
    /// An SRB status that is neither success nor one of the cases above.
    case srbFailed(srbStatus: UInt8, scsiStatus: UInt8)
    /// The host moved fewer bytes than a block read or write asked for.
    case shortTransfer(expected: Int, transferred: Int)
    /// The host's completion broke the protocol (too short, a wrong operation, a length past a buffer).
    case malformedCompletion(String)
    case invalidArgument(String)
    /// The channel library refused a send (ring full for too long, closed channel, …).
    case channel(GuestError)

    public var description: String {
        switch self {
        case .negotiation(let s): return "storage initialization failed: \(s)"
        case .timedOut(let s): return "timed out: \(s)"
        case .lunRemoved(let lun): return "LUN \(lun) was removed"
        case .controllerGone(let s): return "the storage controller is gone: \(s)"
        case .checkCondition(let key, let asc, let ascq):
            return "CHECK CONDITION: sense key 0x\(hex(key)), ASC/ASCQ 0x\(hex(asc))/0x\(hex(ascq))"
        case .mediumError(let asc, let ascq): return "medium error (ASC/ASCQ 0x\(hex(asc))/0x\(hex(ascq)))"
        case .writeProtected: return "the disk is write-protected"
        case .busy: return "the device stayed busy"
        case .srbFailed(let srb, let scsi): return "SRB status 0x\(hex(srb)), SCSI status 0x\(hex(scsi))"
        case .shortTransfer(let e, let t): return "the host moved \(t) of \(e) bytes"
        case .malformedCompletion(let s): return "malformed completion from the host: \(s)"
        case .invalidArgument(let s): return s
        case .channel(let e): return e.description
        }
    }
}

private func hex(_ v: UInt8) -> String { String(v, radix: 16, uppercase: true) }
