import VMBusDiskBackend
import VMBusSCSI

/// One LUN: a direct-access block device (SBC-3) over a backend, as Hyper-V's virtual disk presents itself
/// to Linux (vendor "Msft", product "Virtual Disk").
///
/// `execute` is called from many threads at once. READ and WRITE move data between the backend and the
/// caller's ``IOVector`` directly and allocate nothing; the other commands build their small answers in
/// arrays.
public final class SCSIDisk: Sendable {
    public let backend: any BlockBackend
    /// VPD page 0x80.
    public let serialNumber: String
    /// The low 60 bits of the NAA-5 identifier in VPD page 0x83.
    public let identifier: UInt64
    /// Blocks one command may move (VPD 0xB0 maximum transfer length), from the VSP's max transfer size.
    public let maxTransferBlocks: UInt32

    public static let vendor = "Msft"
    public static let product = "Virtual Disk"
    public static let revision = "1.0"
    /// VPD pages we serve, in ascending order (page 0x00 lists them).
    public static let vpdPages: [UInt8] = [0x00, 0x80, 0x83, 0xB0, 0xB1, 0xB2]
    /// The largest WRITE SAME we accept, in blocks (VPD 0xB0).
    public static let maxWriteSameBlocks: UInt64 = 1 << 22
    /// UNMAP block descriptors per command (VPD 0xB0).
    public static let maxUnmapDescriptors = 256

    public init(backend: any BlockBackend, serialNumber: String, identifier: UInt64, maxTransferBytes: Int = 1 << 20) {
        self.backend = backend
        self.serialNumber = String(serialNumber.prefix(32))
        self.identifier = identifier
        self.maxTransferBlocks = UInt32(max(1, maxTransferBytes / backend.info.logicalBlockSize))
    }

    var blockSize: Int { backend.info.logicalBlockSize }

    /// Executes `cdb`. `data` holds at least `dataLength` bytes: the initiator's buffer for either direction.
    public func execute(_ cdb: SCSICDB, data: IOVector, dataLength: Int) -> SCSICommandResult {
        if let refusal = refusal(cdb, data: data, dataLength: dataLength) { return refusal }
        if let transfer = BlockTransfer(cdb) { return readWrite(transfer, data: data, dataLength: dataLength) }
        switch cdb.opcode {
        case SCSIOpcode.TEST_UNIT_READY, SCSIOpcode.START_STOP:
            return .good()
        case SCSIOpcode.REQUEST_SENSE:
            // Sense is always delivered with the failing command (autosense), so nothing is pending here.
            let sense = FixedSenseData(key: SenseKey.NO_SENSE, .none).bytes
            return respond(sense, allocation: Int(cdb[4]), data: data, dataLength: dataLength)
        case SCSIOpcode.INQUIRY:
            return inquiry(cdb, data: data, dataLength: dataLength)
        case SCSIOpcode.READ_CAPACITY:
            let last = backend.info.blockCount - 1
            var d = be32(last > 0xFFFF_FFFF ? 0xFFFF_FFFF : UInt32(last))
            d += be32(UInt32(blockSize))
            return respond(d, allocation: 8, data: data, dataLength: dataLength)
        case SCSIOpcode.SERVICE_ACTION_IN_16:
            guard cdb[1] & 0x1F == SCSIOpcode.SAI_READ_CAPACITY_16 else { return .invalidField }
            return respond(readCapacity16(), allocation: Int(cdb.be32(10)), data: data, dataLength: dataLength)
        case SCSIOpcode.SYNCHRONIZE_CACHE, SCSIOpcode.SYNCHRONIZE_CACHE_16:
            do { try backend.flush() }
            catch .disconnected { return .checkCondition(SenseKey.NOT_READY, .logicalUnitCommunicationFailure) }
            catch { return .checkCondition(SenseKey.MEDIUM_ERROR, .writeError) }
            return .good()
        case SCSIOpcode.MODE_SENSE, SCSIOpcode.MODE_SENSE_10:
            return modeSense(cdb, data: data, dataLength: dataLength)
        case SCSIOpcode.UNMAP:
            return unmap(cdb, data: data, dataLength: dataLength)
        case SCSIOpcode.WRITE_SAME, SCSIOpcode.WRITE_SAME_16:
            return writeSame(cdb, data: data, dataLength: dataLength)
        default:
            return .invalidOpcode
        }
    }

    /// The answer to a CDB no command may carry (empty, cut short, a group code without a length) or a data
    /// length the buffer does not hold; nil when the command may run.
    private func refusal(_ cdb: SCSICDB, data: IOVector, dataLength: Int) -> SCSICommandResult? {
        guard cdb.length > 0, !cdb.isTruncated, dataLength >= 0, dataLength <= data.totalLength else {
            return .invalidField
        }
        guard cdb.hasGroupLength else {
            return SCSIOpcode.cdbLength(of: cdb.opcode) == nil ? .invalidOpcode : .invalidField
        }
        return nil
    }

    // MARK: READ and WRITE

    /// True when the backend completes reads and writes on its own threads: a caller with many requests in
    /// flight then runs READ and WRITE through ``prepareTransfer(_:data:dataLength:)`` and
    /// ``start(_:data:completion:)`` instead of ``execute(_:data:dataLength:)``.
    public var completesAsynchronously: Bool { backend.completesAsynchronously }

    /// Checks a READ or WRITE as ``execute(_:data:dataLength:)`` does (CDB, bounds, read-only, transfer length
    /// against `dataLength`) without moving data. `data` is the initiator's buffer.
    public func prepareTransfer(_ cdb: SCSICDB, data: IOVector, dataLength: Int) -> SCSITransferStart {
        if let refusal = refusal(cdb, data: data, dataLength: dataLength) { return .completed(refusal) }
        guard let t = BlockTransfer(cdb) else { return .notReadWrite }
        return prepare(t, dataLength: dataLength)
    }

    private func prepare(_ t: BlockTransfer, dataLength: Int) -> SCSITransferStart {
        let info = backend.info
        let (end, overflow) = t.lba.addingReportingOverflow(UInt64(t.blocks))
        guard !overflow, end <= info.blockCount else { return .completed(.lbaOutOfRange) }
        if t.isWrite && info.isReadOnly { return .completed(.writeProtected) }
        guard t.blocks > 0 else { return .completed(.good()) }
        guard t.blocks <= maxTransferBlocks else { return .completed(.invalidField) }
        let bytes = Int(t.blocks) * blockSize
        guard dataLength >= bytes else { return .completed(.invalidField) }
        return .transfer(SCSIDiskTransfer(lba: t.lba, offset: t.lba * UInt64(blockSize), bytes: bytes,
                                          isWrite: t.isWrite, fua: t.fua))
    }

    /// A READ answered on the calling thread when the backend holds every byte in memory
    /// (``BlockBackend/readIfCached(at:length:into:)``); nil when the command must run the usual way (not a
    /// READ, a refusal, an asynchronous backend, or data not cached). Checked as ``execute(_:data:dataLength:)``
    /// checks it.
    public func executeIfCached(_ cdb: SCSICDB, data: IOVector, dataLength: Int) -> SCSICommandResult? {
        guard !backend.completesAsynchronously,
              case .transfer(let t) = prepareTransfer(cdb, data: data, dataLength: dataLength), !t.isWrite,
              backend.readIfCached(at: t.offset, length: t.bytes, into: data) else { return nil }
        return result(of: t, nil)
    }

    /// Hands a prepared transfer to the backend; `completion` gets the backend's outcome (turn it into the
    /// command's result with ``result(of:_:)``), possibly before this returns. `data` holds the transfer's bytes
    /// and belongs to the backend until then.
    public func start(_ t: SCSIDiskTransfer, data: IOVector, completion: any BlockIOCompletion) {
        if t.isWrite {
            backend.submitWrite(at: t.offset, length: t.bytes, from: data, fua: t.fua, completion: completion)
        } else {
            backend.submitRead(at: t.offset, length: t.bytes, into: data, completion: completion)
        }
    }

    /// The result of transfer `t` whose backend call ended with `error` (nil: success), with the sense a
    /// failure carries.
    public func result(of t: SCSIDiskTransfer, _ error: BackendError?) -> SCSICommandResult {
        switch error {
        case nil:
            return .good(t.bytes)
        case .readOnly:
            return .writeProtected
        case .outOfRange:
            return .lbaOutOfRange
        case .disconnected:
            return .checkCondition(SenseKey.NOT_READY, .logicalUnitCommunicationFailure)
        default:
            return .checkCondition(SenseKey.MEDIUM_ERROR, t.isWrite ? .writeError : .unrecoveredReadError,
                                   information: UInt32(truncatingIfNeeded: t.lba))
        }
    }

    private func readWrite(_ transfer: BlockTransfer, data: IOVector, dataLength: Int) -> SCSICommandResult {
        let t: SCSIDiskTransfer
        switch prepare(transfer, dataLength: dataLength) {
        case .transfer(let prepared): t = prepared
        case .completed(let answer): return answer
        case .notReadWrite: return .invalidOpcode
        }
        do throws(BackendError) {
            if t.isWrite {
                try backend.write(at: t.offset, length: t.bytes, from: data, fua: t.fua)
            } else {
                try backend.read(at: t.offset, length: t.bytes, into: data)
            }
        } catch {
            return result(of: t, error)
        }
        return result(of: t, nil)
    }

    // MARK: Data-in helpers

    /// Copies `bytes`, cut to the allocation length and the buffer, into the initiator's buffer.
    func respond(_ bytes: [UInt8], allocation: Int, data: IOVector, dataLength: Int) -> SCSICommandResult {
        let n = min(bytes.count, allocation, dataLength)
        guard n > 0 else { return .good() }
        bytes.withUnsafeBytes { _ = data.copy(from: UnsafeRawBufferPointer(rebasing: $0[0..<n]), toOffset: 0) }
        return .good(n)
    }

    func be16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(truncatingIfNeeded: v)] }
    func be32(_ v: UInt32) -> [UInt8] { be16(UInt16(v >> 16)) + be16(UInt16(truncatingIfNeeded: v)) }
    func be64(_ v: UInt64) -> [UInt8] { be32(UInt32(v >> 32)) + be32(UInt32(truncatingIfNeeded: v)) }

    func ascii(_ s: String, _ width: Int) -> [UInt8] {
        let b = Array(s.utf8.prefix(width))
        return b + [UInt8](repeating: 0x20, count: width - b.count)
    }

    // MARK: INQUIRY

    /// Standard INQUIRY data. `peripheral` is 0x00 for a disk, 0x7F for "no LUN here" (qualifier 3, type 0x1F).
    static func standardInquiry(peripheral: UInt8) -> [UInt8] {
        var d = [UInt8](repeating: 0, count: 36)
        d[0] = peripheral
        d[2] = 0x05  // SPC-3
        d[3] = 0x02  // response data format 2
        d[4] = 31  // additional length
        d[7] = 0x02  // CMDQUE
        func put(_ s: String, _ at: Int, _ width: Int) {
            let b = Array(s.utf8.prefix(width))
            for i in 0..<width { d[at + i] = i < b.count ? b[i] : 0x20 }
        }
        put(vendor, 8, 8)
        put(product, 16, 16)
        put(revision, 32, 4)
        return d
    }

    private func inquiry(_ cdb: SCSICDB, data: IOVector, dataLength: Int) -> SCSICommandResult {
        let allocation = Int(cdb.be16(3))
        let evpd = cdb[1] & 0x01 != 0
        guard evpd else {
            guard cdb[2] == 0 else { return .invalidField }
            return respond(Self.standardInquiry(peripheral: 0), allocation: allocation, data: data, dataLength: dataLength)
        }
        // Linux overwrites the status of a failed INQUIRY with success, so an unsupported page is answered as
        // Hyper-V does: GOOD with nothing transferred.
        guard let page = vpdPage(cdb[2]) else { return .good() }
        return respond(page, allocation: allocation, data: data, dataLength: dataLength)
    }

    func vpdPage(_ code: UInt8) -> [UInt8]? {
        let info = backend.info
        var body: [UInt8]
        switch code {
        case 0x00:
            body = Self.vpdPages
        case 0x80:
            body = Array(serialNumber.utf8)
        case 0x83:
            // One designator: NAA (type 3), binary, associated with the LU; NAA 5 ("IEEE Registered").
            let naa = 0x5 << 60 | (identifier & 0x0FFF_FFFF_FFFF_FFFF)
            body = [0x01, 0x03, 0x00, 0x08] + be64(naa)
        case 0xB0:
            body = [UInt8](repeating: 0, count: 0x3C)
            body[0] = 0x01  // WSNZ: a WRITE SAME of 0 blocks is refused, not "to the end"
            body[4..<8] = be32(maxTransferBlocks)[...]
            body[8..<12] = be32(UInt32(max(1, info.physicalBlockSize / blockSize)))[...]  // optimal transfer
            if info.supportsUnmap {
                body[16..<20] = be32(maxTransferBlocks)[...]  // maximum unmap LBA count
                body[20..<24] = be32(UInt32(Self.maxUnmapDescriptors))[...]
                body[24..<28] = be32(UInt32(max(1, info.physicalBlockSize / blockSize)))[...]  // unmap granularity
            }
            body[32..<40] = be64(Self.maxWriteSameBlocks)[...]
        case 0xB1:
            body = [UInt8](repeating: 0, count: 0x3C)
            body[1] = 0x01  // medium rotation rate 1: non-rotating
        case 0xB2:
            body = [0, info.supportsUnmap ? 0xE0 : 0x00, info.supportsUnmap ? 0x02 : 0x00, 0]
        default:
            return nil
        }
        return [0x00, code] + be16(UInt16(body.count)) + body
    }

    func readCapacity16() -> [UInt8] {
        let info = backend.info
        var d = be64(info.blockCount - 1) + be32(UInt32(blockSize))
        d += [UInt8](repeating: 0, count: 20)
        let exponent = (info.physicalBlockSize / blockSize).trailingZeroBitCount
        d[13] = UInt8(exponent & 0x0F)
        if info.supportsUnmap { d[14] = 0xC0 }  // LBPME, LBPRZ: unmapped blocks read as zeros
        return d
    }

    // MARK: MODE SENSE

    private func modeSense(_ cdb: SCSICDB, data: IOVector, dataLength: Int) -> SCSICommandResult {
        let ten = cdb.opcode == SCSIOpcode.MODE_SENSE_10
        let allocation = ten ? Int(cdb.be16(7)) : Int(cdb[4])
        let dbd = cdb[1] & 0x08 != 0
        let control = cdb[2] >> 6
        let code = cdb[2] & 0x3F
        let subpage = cdb[3]
        guard control != 3 else { return .checkCondition(SenseKey.ILLEGAL_REQUEST, .savingParametersNotSupported) }
        let changeable = control == 1
        var pages: [UInt8] = []
        let caching: [UInt8] = [0x08, 0x12, changeable ? 0 : 0x04] + [UInt8](repeating: 0, count: 17)  // WCE
        let controlPage: [UInt8] = [0x0A, 0x0A] + [UInt8](repeating: 0, count: 10)
        switch (code, subpage) {
        case (0x08, 0): pages = caching
        case (0x0A, 0): pages = controlPage
        case (0x3F, 0), (0x3F, 0xFF): pages = caching + controlPage
        default: return .invalidField
        }
        let info = backend.info
        var descriptor: [UInt8] = []
        if !dbd {
            let blocks = min(info.blockCount, 0xFF_FFFF)
            descriptor = [0] + Array(be32(UInt32(blocks)).suffix(3)) + [0] + Array(be32(UInt32(blockSize)).suffix(3))
        }
        let deviceSpecific: UInt8 = info.isReadOnly ? 0x80 : 0x00
        var d: [UInt8]
        if ten {
            let total = 8 + descriptor.count + pages.count
            d = be16(UInt16(total - 2)) + [0, deviceSpecific, 0, 0] + be16(UInt16(descriptor.count))
        } else {
            let total = 4 + descriptor.count + pages.count
            d = [UInt8(total - 1), 0, deviceSpecific, UInt8(descriptor.count)]
        }
        d += descriptor + pages
        return respond(d, allocation: allocation, data: data, dataLength: dataLength)
    }

    // MARK: UNMAP and WRITE SAME

    private func unmap(_ cdb: SCSICDB, data: IOVector, dataLength: Int) -> SCSICommandResult {
        let info = backend.info
        guard info.supportsUnmap else { return .invalidOpcode }
        if info.isReadOnly { return .writeProtected }
        let listLength = min(Int(cdb.be16(7)), dataLength)
        guard listLength >= 8 else { return .good() }  // no descriptors: nothing to do (SBC)
        var list = [UInt8](repeating: 0, count: min(listLength, 8 + 16 * Self.maxUnmapDescriptors))
        _ = list.withUnsafeMutableBytes { data.copy(toBuffer: $0, fromOffset: 0) }
        let descriptorBytes = Int(UInt16(list[2]) << 8 | UInt16(list[3]))
        guard descriptorBytes % 16 == 0, 8 + descriptorBytes <= listLength else {
            return .checkCondition(SenseKey.ILLEGAL_REQUEST, .parameterListLengthError)
        }
        guard 8 + descriptorBytes <= list.count else {
            return .checkCondition(SenseKey.ILLEGAL_REQUEST, .invalidFieldInParameterList)
        }
        var ranges: [(UInt64, UInt64)] = []
        for i in 0..<(descriptorBytes / 16) {
            let o = 8 + 16 * i
            var lba: UInt64 = 0
            for k in 0..<8 { lba = lba << 8 | UInt64(list[o + k]) }
            var count: UInt32 = 0
            for k in 0..<4 { count = count << 8 | UInt32(list[o + 8 + k]) }
            let (end, overflow) = lba.addingReportingOverflow(UInt64(count))
            guard !overflow, end <= info.blockCount else { return .lbaOutOfRange }
            if count > 0 { ranges.append((lba, UInt64(count))) }
        }
        for (lba, count) in ranges {
            do { try backend.unmap(at: lba * UInt64(blockSize), length: count * UInt64(blockSize)) }
            catch { return .checkCondition(SenseKey.MEDIUM_ERROR, .writeError, information: UInt32(truncatingIfNeeded: lba)) }
        }
        return .good()
    }

    private func writeSame(_ cdb: SCSICDB, data: IOVector, dataLength: Int) -> SCSICommandResult {
        let info = backend.info
        let sixteen = cdb.opcode == SCSIOpcode.WRITE_SAME_16
        let wantsUnmap = cdb[1] & 0x08 != 0
        let lba = sixteen ? cdb.be64(2) : UInt64(cdb.be32(2))
        let blocks = sixteen ? UInt64(cdb.be32(10)) : UInt64(cdb.be16(7))
        guard blocks > 0, blocks <= Self.maxWriteSameBlocks else { return .invalidField }
        let (end, overflow) = lba.addingReportingOverflow(blocks)
        guard !overflow, end <= info.blockCount else { return .lbaOutOfRange }
        if info.isReadOnly { return .writeProtected }
        guard dataLength >= blockSize else { return .invalidField }
        let offset = lba * UInt64(blockSize)
        let length = blocks * UInt64(blockSize)
        do {
            if data.isZero(offset: 0, length: blockSize) {
                try backend.writeZeroes(at: offset, length: length, unmap: wantsUnmap && info.supportsUnmap)
            } else {
                // The one block, repeated: write it block by block from the initiator's buffer.
                for i in 0..<blocks {
                    try backend.write(at: offset + i * UInt64(blockSize), length: blockSize, from: data, fua: false)
                }
            }
        } catch {
            return .checkCondition(SenseKey.MEDIUM_ERROR, .writeError, information: UInt32(truncatingIfNeeded: lba))
        }
        return .good()
    }
}
