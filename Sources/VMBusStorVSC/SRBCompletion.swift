import VMBusSCSI
import VMBusStorageProtocol

/// What the guest keeps of a COMPLETE_IO packet for one EXECUTE_SRB: statuses, the bytes moved and the
/// sense key and codes when the host sent autosense. Parsed in place from the ring's packet buffer, without
/// allocating.
public struct SRBCompletion: Equatable, Sendable {
    public var ntStatus: NTStatus
    public var srbStatus: SRBStatus
    public var scsiStatus: UInt8
    /// `data_transfer_length`: bytes the host moved (never more than requested: that is refused).
    public var transferred: Int
    /// Valid sense bytes the host reported (≤ the 20-byte sense buffer).
    public var senseLength: Int
    /// Fixed-format sense: key, ASC, ASCQ (zero without autosense).
    public var senseKey: UInt8 = 0
    public var asc: UInt8 = 0
    public var ascq: UInt8 = 0

    public var hasSense: Bool { srbStatus.autosenseValid && senseLength >= 3 }

    /// Offsets in the VSTOR packet (the SRB starts after the 12-byte header).
    private static let srb = VStorPacket.headerSize
    /// A completion for a request with a transaction id is the full Win8 packet: Linux refuses shorter ones.
    public static let minimumLength = VStorPacket.wireSize

    /// Parses the payload of a completion for a request that asked for `requestedLength` data bytes.
    ///
    /// - Throws: ``StorVSCError/malformedCompletion(_:)`` for a packet shorter than 64 bytes, an operation other
    ///   than COMPLETE_IO, a sense length past the 20-byte buffer, or more bytes moved than were asked for.
    public static func parse(_ p: UnsafeRawBufferPointer, requestedLength: Int) throws(StorVSCError) -> SRBCompletion {
        guard p.count >= minimumLength else {
            throw .malformedCompletion("COMPLETE_IO of \(p.count) bytes (at least \(minimumLength))")
        }
        func u32(_ o: Int) -> UInt32 { UInt32(littleEndian: p.loadUnaligned(fromByteOffset: o, as: UInt32.self)) }
        let operation = VStorOperation(rawValue: u32(0))
        guard operation == .completeIO else { throw .malformedCompletion("\(operation) in answer to EXECUTE_SRB") }
        let senseLength = Int(p[srb + 9])
        guard senseLength <= VMSCSIRequest.senseBufferSize else {
            throw .malformedCompletion("sense length \(senseLength) past the \(VMSCSIRequest.senseBufferSize)-byte buffer")
        }
        let transferred = Int(u32(srb + 12))
        guard transferred <= requestedLength else {
            throw .malformedCompletion("\(transferred) bytes moved for a request of \(requestedLength)")
        }
        var c = SRBCompletion(ntStatus: NTStatus(rawValue: u32(8)), srbStatus: SRBStatus(rawValue: p[srb + 2]),
                              scsiStatus: p[srb + 3], transferred: transferred, senseLength: senseLength)
        if c.hasSense {
            let sense = srb + VMSCSIRequest.dataAreaOffset
            c.senseKey = p[sense + 2] & 0x0F
            if senseLength > 12 { c.asc = p[sense + 12] }
            if senseLength > 13 { c.ascq = p[sense + 13] }
        }
        return c
    }

    /// What the disk layer does with this completion.
    public enum Disposition: Equatable, Sendable {
        case success
        /// Try again: BUSY, TASK SET FULL, UNIT ATTENTION, NOT READY (becoming ready).
        case retry
        case failure(StorVSCError)
    }

    /// Classifies the completion of a request to `lun`, as Linux's storvsc and SCSI midlayer would.
    public func disposition(lun: UInt8) -> Disposition {
        // The whole byte, as Linux compares it: SUCCESS with AUTOSENSE_VALID set is not a success.
        if srbStatus == .success && scsiStatus == SAMStatus.GOOD { return .success }
        switch srbStatus.code {
        case .invalidLUN, .noDevice, .selectionTimeout, .invalidTargetID:
            return .failure(.lunRemoved(lun: lun))
        case .busy:
            return .retry
        default:
            break
        }
        if scsiStatus == SAMStatus.BUSY || scsiStatus == SAMStatus.TASK_SET_FULL { return .retry }
        if hasSense {
            switch senseKey {
            case SenseKey.UNIT_ATTENTION: return .retry
            // LOGICAL UNIT IS IN PROCESS OF BECOMING READY
            case SenseKey.NOT_READY where asc == 0x04 && ascq == 0x01: return .retry
            case SenseKey.MEDIUM_ERROR: return .failure(.mediumError(asc: asc, ascq: ascq))
            case SenseKey.DATA_PROTECT: return .failure(.writeProtected)
            default: return .failure(.checkCondition(senseKey: senseKey, asc: asc, ascq: ascq))
            }
        }
        return .failure(.srbFailed(srbStatus: srbStatus.rawValue, scsiStatus: scsiStatus))
    }
}
