import VMBusDiskBackend
import VMBusSCSI
import VMBusSync

/// The LUNs of one controller target: up to 64, any of them absent, changed at run time (hot add and
/// remove) while other threads execute commands. A lookup takes the lock only to read one reference, so the
/// I/O path allocates nothing.
public final class SCSILUNTable: Sendable {
    public static let maxLUNs = 64
    private let slots = Lock<[SCSIDisk?]>(Array(repeating: nil, count: SCSILUNTable.maxLUNs))

    public init() {}

    /// Attaches `disk` at `lun`; false if the LUN is taken or out of range.
    @discardableResult
    public func attach(_ disk: SCSIDisk, at lun: Int) -> Bool {
        guard lun >= 0, lun < Self.maxLUNs else { return false }
        return slots.withLock { s in
            guard s[lun] == nil else { return false }
            s[lun] = disk
            return true
        }
    }

    /// The first free LUN, if any.
    public var firstFreeLUN: Int? { slots.withLock { $0.firstIndex { $0 == nil } } }

    /// Removes the disk at `lun` and returns it.
    @discardableResult
    public func detach(_ lun: Int) -> SCSIDisk? {
        guard lun >= 0, lun < Self.maxLUNs else { return nil }
        return slots.withLock { s in
            let d = s[lun]
            s[lun] = nil
            return d
        }
    }

    public func disk(at lun: Int) -> SCSIDisk? {
        guard lun >= 0, lun < Self.maxLUNs else { return nil }
        return slots.withLock { $0[lun] }
    }

    /// Present LUNs, ascending.
    public var presentLUNs: [Int] { slots.withLock { s in s.indices.filter { s[$0] != nil } } }

    /// Executes `cdb` for `lun`. REPORT LUNS and INQUIRY are answered for any LUN, present or not (Linux scans
    /// with them); anything else to an absent LUN is ``SCSIOutcome/lunAbsent``.
    public func execute(lun: Int, _ cdb: SCSICDB, data: IOVector, dataLength: Int) -> SCSIOutcome {
        if cdb.opcode == SCSIOpcode.REPORT_LUNS { return .completed(reportLUNs(cdb, data: data, dataLength: dataLength)) }
        guard let disk = disk(at: lun) else {
            guard cdb.opcode == SCSIOpcode.INQUIRY, cdb.hasGroupLength else { return .lunAbsent }
            // "Not present" standard data (qualifier 3, type 0x1F); no VPD pages.
            guard cdb[1] & 0x01 == 0 else { return .completed(.good()) }
            let d = SCSIDisk.standardInquiry(peripheral: 0x7F)
            let n = min(d.count, Int(cdb.be16(3)), dataLength, data.totalLength)
            if n > 0 { d.withUnsafeBytes { _ = data.copy(from: UnsafeRawBufferPointer(rebasing: $0[0..<n]), toOffset: 0) } }
            return .completed(.good(n))
        }
        return .completed(disk.execute(cdb, data: data, dataLength: dataLength))
    }

    private func reportLUNs(_ cdb: SCSICDB, data: IOVector, dataLength: Int) -> SCSICommandResult {
        guard cdb.hasGroupLength else { return .invalidField }
        let allocation = Int(cdb.be32(6))
        guard allocation >= 16, cdb[2] <= 2 else { return .invalidField }
        let luns = presentLUNs
        var d = [UInt8](repeating: 0, count: 8 + 8 * luns.count)
        let listLength = UInt32(8 * luns.count)
        for i in 0..<4 { d[i] = UInt8(truncatingIfNeeded: listLength >> (8 * UInt32(3 - i))) }
        for (i, lun) in luns.enumerated() {
            // Single-level LUN, peripheral addressing: LUN in byte 1.
            d[8 + 8 * i + 1] = UInt8(lun)
        }
        let n = min(d.count, allocation, dataLength, data.totalLength)
        d.withUnsafeBytes { _ = data.copy(from: UnsafeRawBufferPointer(rebasing: $0[0..<n]), toOffset: 0) }
        return .good(n)
    }
}
