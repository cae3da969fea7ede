import CVMBusShims
import Glibc
import VMBusSync
import VMBusWire

/// A VHDX image (MS-VHDX: fixed, dynamic or differencing) as a disk.
///
/// Opening checks every structure the disk relies on and refuses a damaged one with the structure and offset;
/// a dirty log is replayed first (or, read-only when asked, left alone). A differencing disk opens its parent
/// chain read-only, through the parent locator (relative path first, then absolute), and refuses a parent whose
/// DataWriteGuid differs from the one recorded in the child, or a chain that loops.
///
/// Writes: the first one of a session rewrites both headers with new file, data and log GUIDs. A write into an
/// allocated block goes straight to the file; into an unallocated one, the block is allocated at the end of the
/// file under one lock (a differencing disk's block is first filled from its parent), the data written, and the
/// BAT sector updated through the log (``VHDXLog``), so a crash at any point leaves a consistent image. Without a
/// parent, the new BAT entries wait in memory for the guest's next flush or FUA write, which logs them all in one
/// entry: a crash before it loses only the block's writes, which the guest never saw durable, and the file past
/// the BAT's blocks is ignored. A differencing disk still logs each allocation at once, with its sector bitmap
/// sectors in the same entry (gathering those for many blocks at a flush is not done yet). Blocks
/// this writer allocates are always FULLY_PRESENT: a PARTIALLY_PRESENT block found in a foreign differencing
/// disk is completed from the parent on its first write. UNMAP and write-zeroes turn whole blocks into
/// PAYLOAD_BLOCK_ZERO and punch out their space; parts of blocks are zeroed in place.
public final class VHDXBackend: BlockBackend, @unchecked Sendable {
    public let info: BlockBackendInfo
    public let path: String
    public let identifier: VHDXFileIdentifier
    public let metadata: VHDXMetadata
    public let geometry: VHDXBATGeometry
    public let regions: VHDXRegionTable
    /// The parent of a differencing disk, opened read-only.
    public let parent: VHDXBackend?
    /// Log entries replayed when the file was opened.
    public let replayedLogEntries: Int
    /// Log entries left unreplayed, when opened with `replayLog: false`.
    public let pendingLogEntries: Int
    public var header: VHDXHeader { writer.withLock { $0.header } }

    public enum CreateType: String, Sendable, CaseIterable { case fixed, dynamic, differencing }

    private let fd: Int32
    let batOffset: UInt64
    /// The BAT, and whether this session's first write has rewritten the headers (checked on every write, so
    /// it lives under this short lock, not the writer's, which allocation holds across flushes).
    private struct Table {
        var entries: [UInt64]
        var writing = false
    }
    private let bat: Lock<Table>
    /// Vectors for the pieces of a request handed to the parent, reused.
    private let parentVectors = Lock<[IOVector]>([])
    private struct Writer {
        var header: VHDXHeader
        /// 0 or 1: which header slot holds `header`.
        var slot: Int
        /// The log of this writing session; nil until the first write.
        var log: VHDXLog?
        /// Where the next block is allocated: the end of the file, in whole MiB.
        var fileEnd: UInt64
        /// BAT entries changed in memory but not yet logged (disks without a parent): the next flush logs them.
        var unlogged: [Int] = []
    }
    private let writer: Lock<Writer>
    /// Tests stop a metadata update before this step, to leave the image a crash there would.
    var stopLogBefore: VHDXLog.Step?

    static let maximumParentDepth = 64

    // MARK: Opening

    /// Opens `path`. `replayLog: false` (read-only only) serves the image as its structures stand, without the
    /// log's pending updates: what `vmbus image check` inspects.
    public convenience init(path: String, readOnly: Bool = false, replayLog: Bool = true) throws(BackendError) {
        try self.init(path: path, readOnly: readOnly, replayLog: replayLog, children: [])
    }

    private init(path: String, readOnly: Bool, replayLog: Bool, children: [String]) throws(BackendError) {
        guard replayLog || readOnly else { throw .invalidConfiguration("a VHDX opened for writing replays its log") }
        var (fd, fileSize) = try openImageFile(path, readOnly: readOnly)
        do throws(BackendError) {
            guard fileSize >= VHDXFileIdentifier.headerSectionSize else {
                throw .corrupt(structure: "VHDX header section", offset: 0, why: "the file is \(fileSize) bytes, less than 1 MiB")
            }
            identifier = try VHDXFileIdentifier(decoding: try .read(fd: fd, at: 0, count: VHDXFileIdentifier.size, what: "VHDX file identifier"))
            var (header, slot) = try Self.currentHeader(fd: fd)

            // The log first: what it holds may change the region table's targets.
            let pending = try VHDXLog.pending(fd: fd, header: header, fileSize: fileSize)
            if !pending.isEmpty && replayLog {
                guard !readOnly else {
                    throw .invalidConfiguration("\(path) has \(pending.count) log entries to replay: open it writable once, or read-only without replay")
                }
                try VHDXLog.replay(pending, fd: fd, fileSize: fileSize)
                fileSize = max(fileSize, pending.last?.lastFileOffset ?? 0)
            }
            replayedLogEntries = replayLog ? pending.count : 0
            pendingLogEntries = replayLog ? 0 : pending.count
            if !readOnly && header.logGUID != .zero {
                try Self.updateHeaders(fd: fd, &header, &slot) { $0.logGUID = .zero }
            }

            regions = try Self.regionTable(fd: fd)
            let (batRegion, metadataRegion) = try Self.checkRegions(regions, header: header, fileSize: fileSize)
            let metadataBytes = try [UInt8].read(fd: fd, at: metadataRegion.fileOffset, count: Int(metadataRegion.length),
                                                 what: "VHDX metadata region")
            metadata = try VHDXMetadata(decoding: metadataBytes, at: metadataRegion.fileOffset)
            geometry = VHDXBATGeometry(diskSize: metadata.diskSize, blockSize: metadata.blockSize,
                                       logicalSectorSize: metadata.logicalSectorSize, hasParent: metadata.hasParent)
            guard UInt64(geometry.totalEntries) * 8 <= UInt64(batRegion.length) else {
                throw .corrupt(structure: "VHDX BAT", offset: batRegion.fileOffset,
                               why: "\(batRegion.length) bytes for \(geometry.totalEntries) entries")
            }
            let raw = try [UInt8].read(fd: fd, at: batRegion.fileOffset, count: geometry.totalEntries * 8, what: "VHDX BAT")
            let entries = (0..<geometry.totalEntries).map { raw.le64(8 * $0) }
            let end = try Self.checkBAT(entries, geometry: geometry, metadata: metadata, regions: regions, header: header,
                                        batOffset: batRegion.fileOffset, fileSize: fileSize)

            if metadata.hasParent {
                guard let locator = metadata.parent else {
                    throw .corrupt(structure: "VHDX metadata", offset: metadataRegion.fileOffset, why: "a differencing disk without a parent locator")
                }
                parent = try Self.openParent(locator, childPath: path, children: children + [Self.canonical(path)],
                                             diskSize: metadata.diskSize, sectorSize: metadata.logicalSectorSize)
            } else {
                parent = nil
            }

            self.fd = fd
            self.path = path
            batOffset = batRegion.fileOffset
            bat = Lock(Table(entries: entries))
            writer = Lock(Writer(header: header, slot: slot, log: nil,
                                 fileEnd: max(end, (fileSize + (1 << 20) - 1) / (1 << 20) * (1 << 20))))
            let type = metadata.hasParent ? "differencing" : metadata.leaveBlocksAllocated ? "fixed" : "dynamic"
            info = BlockBackendInfo(capacity: metadata.diskSize, logicalBlockSize: Int(metadata.logicalSectorSize),
                                    physicalBlockSize: Int(max(metadata.physicalSectorSize, metadata.logicalSectorSize)),
                                    isReadOnly: readOnly, supportsUnmap: !readOnly, supportsWriteZeroes: !readOnly,
                                    description: "vhdx \(type) \(path)")
        } catch {
            close(fd)
            throw error
        }
    }

    deinit {
        try? closeCleanly()
        close(fd)
    }

    /// A clean close: everything on disk, then the headers' log GUID cleared, so that the log holds nothing to
    /// replay and qemu opens the image read-only. The next write begins a new session.
    public func closeCleanly() throws(BackendError) {
        try writer.withLock { (w: inout Writer) throws(BackendError) in
            guard let log = w.log else { return }
            try logUnlogged(log, &w)
            try syncData(fd: fd)
            try Self.updateHeaders(fd: fd, &w.header, &w.slot) { $0.logGUID = .zero }
            w.log = nil
            bat.withLock { $0.writing = false }
        }
    }

    /// The valid header with the higher sequence number, and its slot. Two valid headers with one number must
    /// be identical.
    private static func currentHeader(fd: Int32) throws(BackendError) -> (VHDXHeader, Int) {
        var valid: [(VHDXHeader, Int)] = []
        var firstError: BackendError?
        for (slot, offset) in [VHDXFileIdentifier.header1Offset, VHDXFileIdentifier.header2Offset].enumerated() {
            do throws(BackendError) {
                let h = try VHDXHeader(decoding: try .read(fd: fd, at: offset, count: VHDXHeader.size, what: "VHDX header"), at: offset)
                valid.append((h, slot))
            } catch {
                firstError = firstError ?? error
            }
        }
        guard let best = valid.max(by: { $0.0.sequenceNumber < $1.0.sequenceNumber }) else {
            throw firstError ?? .corrupt(structure: "VHDX header", offset: VHDXFileIdentifier.header1Offset, why: "no valid header")
        }
        if valid.count == 2, valid[0].0.sequenceNumber == valid[1].0.sequenceNumber, valid[0].0 != valid[1].0 {
            throw .corrupt(structure: "VHDX header", offset: VHDXFileIdentifier.header2Offset,
                           why: "two different headers with sequence number \(valid[0].0.sequenceNumber)")
        }
        return best
    }

    /// The MS-VHDX header update, done twice so that both slots end current: the other slot gets the next
    /// sequence number, and is flushed before it counts.
    private static func updateHeaders(fd: Int32, _ header: inout VHDXHeader, _ slot: inout Int,
                                      _ change: (inout VHDXHeader) -> Void) throws(BackendError) {
        for _ in 0..<2 {
            var h = header
            change(&h)
            h.sequenceNumber = header.sequenceNumber + 1
            let other = 1 - slot
            try h.encoded.write(fd: fd, at: other == 0 ? VHDXFileIdentifier.header1Offset : VHDXFileIdentifier.header2Offset,
                                what: "VHDX header")
            try syncData(fd: fd)
            header = h
            slot = other
        }
    }

    /// The first region table that is valid, else the second.
    private static func regionTable(fd: Int32) throws(BackendError) -> VHDXRegionTable {
        var firstError: BackendError?
        for offset in [VHDXFileIdentifier.regionTable1Offset, VHDXFileIdentifier.regionTable2Offset] {
            do throws(BackendError) {
                return try VHDXRegionTable(decoding: try .read(fd: fd, at: offset, count: VHDXRegionTable.size,
                                                               what: "VHDX region table"), at: offset)
            } catch {
                firstError = firstError ?? error
            }
        }
        throw firstError ?? .corrupt(structure: "VHDX region table", offset: VHDXFileIdentifier.regionTable1Offset, why: "none valid")
    }

    /// Checks that the regions and the log lie in the file, in 1 MiB units past the header section, without
    /// overlapping; returns the BAT and metadata regions.
    private static func checkRegions(_ table: VHDXRegionTable, header: VHDXHeader, fileSize: UInt64)
        throws(BackendError) -> (VHDXRegionTable.Entry, VHDXRegionTable.Entry) {
        let at = VHDXFileIdentifier.regionTable1Offset
        var spans: [(UInt64, UInt64, String)] = [(header.logOffset, UInt64(header.logLength), "the log")]
        for e in table.entries {
            let known = e.guid == VHDXRegionTable.BAT || e.guid == VHDXRegionTable.metadata
            guard known || !e.isRequired else {
                throw .corrupt(structure: "VHDX region table", offset: at, why: "required region \(e.guid) is unknown")
            }
            guard e.fileOffset % (1 << 20) == 0, e.fileOffset >= VHDXFileIdentifier.headerSectionSize,
                  e.fileOffset <= VHDXFileIdentifier.maximumFileOffset,
                  e.length % (1 << 20) == 0, e.length > 0 else {
                throw .corrupt(structure: "VHDX region table", offset: at, why: "region \(e.guid) at \(e.fileOffset), \(e.length) bytes: not in 1 MiB units")
            }
            spans.append((e.fileOffset, UInt64(e.length), "region \(e.guid)"))
        }
        for (o, l, name) in spans where o + l > fileSize {
            throw .corrupt(structure: "VHDX region table", offset: at, why: "\(name) at \(o), \(l) bytes, past the end of the file")
        }
        spans.sort { $0.0 < $1.0 }
        for (a, b) in zip(spans, spans.dropFirst()) where b.0 < a.0 + a.1 {
            throw .corrupt(structure: "VHDX region table", offset: at, why: "\(a.2) and \(b.2) overlap")
        }
        guard let batRegion = table.entry(VHDXRegionTable.BAT) else {
            throw .corrupt(structure: "VHDX region table", offset: at, why: "no BAT region")
        }
        guard let metadataRegion = table.entry(VHDXRegionTable.metadata) else {
            throw .corrupt(structure: "VHDX region table", offset: at, why: "no metadata region")
        }
        guard metadataRegion.length <= 64 << 20 else {
            throw .unsupported("a VHDX metadata region of \(metadataRegion.length) bytes")
        }
        return (batRegion, metadataRegion)
    }

    /// Checks every BAT entry's state and range: present blocks inside the file, past the header section, not
    /// overlapping each other, the log or a region. Returns the end of the last block (where allocation goes).
    private static func checkBAT(_ entries: [UInt64], geometry: VHDXBATGeometry, metadata: VHDXMetadata,
                                 regions: VHDXRegionTable, header: VHDXHeader, batOffset: UInt64,
                                 fileSize: UInt64) throws(BackendError) -> UInt64 {
        var spans: [(UInt64, UInt64, Int)] = [(0, VHDXFileIdentifier.headerSectionSize, -1),
                                              (header.logOffset, UInt64(header.logLength), -1)]
        spans += regions.entries.map { ($0.fileOffset, UInt64($0.length), -1) }
        for (i, raw) in entries.enumerated() {
            let e = VHDXBATEntry(raw: raw)
            func bad(_ why: String) -> BackendError { .corrupt(structure: "VHDX BAT", offset: batOffset + UInt64(8 * i), why: why) }
            let length: UInt64
            if geometry.isBitmapIndex(i) {
                switch e.state {
                case VHDXBATEntry.SB_BLOCK_NOT_PRESENT: continue
                case VHDXBATEntry.SB_BLOCK_PRESENT: length = VHDXBATGeometry.sectorBitmapBlockSize
                default: throw bad("sector bitmap entry \(i) in state \(e.state)")
                }
            } else {
                switch e.state {
                case VHDXBATEntry.PAYLOAD_BLOCK_NOT_PRESENT, VHDXBATEntry.PAYLOAD_BLOCK_UNDEFINED, VHDXBATEntry.PAYLOAD_BLOCK_ZERO,
                     VHDXBATEntry.PAYLOAD_BLOCK_UNMAPPED, VHDXBATEntry.PAYLOAD_BLOCK_UNMAPPED_V1:
                    continue
                case VHDXBATEntry.PAYLOAD_BLOCK_FULLY_PRESENT:
                    length = geometry.blockSize
                case VHDXBATEntry.PAYLOAD_BLOCK_PARTIALLY_PRESENT:
                    guard metadata.hasParent else { throw bad("a partially present block \(i) in a disk without a parent") }
                    let chunk = (i - i / (geometry.chunkRatio + 1)) / geometry.chunkRatio
                    let sb = geometry.bitmapIndex(chunk)
                    guard sb < entries.count, VHDXBATEntry(raw: entries[sb]).state == VHDXBATEntry.SB_BLOCK_PRESENT else {
                        throw bad("a partially present block \(i) without its sector bitmap")
                    }
                    length = geometry.blockSize
                default:
                    throw bad("payload entry \(i) in state \(e.state)")
                }
            }
            let (end, overflow) = e.fileOffset.addingReportingOverflow(length)
            guard !overflow, end <= fileSize else { throw bad("entry \(i) at \(e.fileOffset) lies past the end of the file (\(fileSize) bytes)") }
            spans.append((e.fileOffset, length, i))
        }
        spans.sort { $0.0 < $1.0 }
        for (a, b) in zip(spans, spans.dropFirst()) where b.0 < a.0 + a.1 {
            let i = max(a.2, b.2)
            throw .corrupt(structure: "VHDX BAT", offset: batOffset + UInt64(8 * max(0, i)),
                           why: a.2 < 0 || b.2 < 0 ? "entry \(i) overlaps the header section, the log or a region"
                                                   : "entries \(a.2) and \(b.2) overlap")
        }
        return spans.map { $0.0 + $0.1 }.max() ?? VHDXFileIdentifier.headerSectionSize
    }

    static func canonical(_ path: String) -> String {
        guard let p = realpath(path, nil) else { return path }
        defer { free(p) }
        return String(cString: p)
    }

    /// Finds and opens the parent named by `locator`: "relative_path" (from the child's directory), then
    /// "absolute_win32_path" and "volume_path", with Windows separators read as "/".
    private static func openParent(_ locator: VHDXParentLocator, childPath: String, children: [String],
                                   diskSize: UInt64, sectorSize: UInt32) throws(BackendError) -> VHDXBackend {
        guard children.count < maximumParentDepth else {
            throw .unsupported("a VHDX parent chain deeper than \(maximumParentDepth)")
        }
        let directory = Self.directory(of: childPath)
        var candidates: [String] = []
        if let r = locator["relative_path"] {
            var p = r.replacingOccurrences(of: "\\", with: "/")
            if p.hasPrefix("./") { p.removeFirst(2) }
            candidates.append(p.hasPrefix("/") ? p : directory + "/" + p)
        }
        for key in ["absolute_win32_path", "volume_path"] {
            if let a = locator[key]?.replacingOccurrences(of: "\\", with: "/"), a.hasPrefix("/") { candidates.append(a) }
        }
        guard let found = candidates.first(where: { access($0, F_OK) == 0 }) else {
            throw .invalidConfiguration("the parent of \(childPath) is not found (looked for \(candidates.joined(separator: ", ")))")
        }
        let canonical = Self.canonical(found)
        guard !children.contains(canonical) else {
            throw .corrupt(structure: "VHDX parent locator", offset: 0, why: "a parent loop through \(canonical)")
        }
        let parent = try VHDXBackend(path: found, readOnly: true, replayLog: true, children: children)
        guard parent.header.dataWriteGUID == locator.linkage else {
            throw .invalidConfiguration("parent \(found) has DataWriteGuid \(parent.header.dataWriteGUID), \(childPath) was made from \(locator.linkage.map { "\($0)" } ?? "?"): the parent changed")
        }
        guard parent.metadata.diskSize == diskSize, parent.metadata.logicalSectorSize == sectorSize else {
            throw .invalidConfiguration("parent \(found) is \(parent.metadata.diskSize) bytes in \(parent.metadata.logicalSectorSize)-byte sectors, its child \(diskSize) in \(sectorSize)")
        }
        return parent
    }

    /// The parent chain, nearest first.
    public var chain: [VHDXBackend] {
        var c: [VHDXBackend] = []
        var p = parent
        while let x = p { c.append(x); p = x.parent }
        return c
    }

    /// Bytes of the file that hold blocks: FULLY and PARTIALLY_PRESENT payload blocks.
    public var presentBlocks: Int {
        bat.withLock { t in
            t.entries.enumerated().filter { i, raw in
                !geometry.isBitmapIndex(i) && VHDXBATEntry(raw: raw).state >= VHDXBATEntry.PAYLOAD_BLOCK_FULLY_PRESENT
            }.count
        }
    }

    // MARK: I/O

    /// Visits the pieces of `offset ..< offset + length` that lie in one block each: (block, offset in block,
    /// offset in the request, length).
    private func forEachPiece(_ offset: UInt64, _ length: Int,
                              _ body: (Int, UInt64, Int, Int) throws(BackendError) -> Void) throws(BackendError) {
        try forEachBlockPiece(offset, length, blockSize: geometry.blockSize, body)
    }

    private func entry(block: Int) -> VHDXBATEntry {
        VHDXBATEntry(raw: bat.withLock { $0.entries[geometry.payloadIndex(block)] })
    }

    public func read(at offset: UInt64, length: Int, into buffers: IOVector) throws(BackendError) {
        try info.check(offset: offset, length: UInt64(max(0, length)))
        try buffers.require(length)
        try forEachPiece(offset, length) { (block, inBlock, at, n) throws(BackendError) in
            let e = entry(block: block)
            switch e.state {
            case VHDXBATEntry.PAYLOAD_BLOCK_FULLY_PRESENT:
                try readFile(e.fileOffset + inBlock, at, n, buffers)
            case VHDXBATEntry.PAYLOAD_BLOCK_PARTIALLY_PRESENT:
                try readPartial(block, e, inBlock, at, n, buffers)
            case VHDXBATEntry.PAYLOAD_BLOCK_NOT_PRESENT where parent != nil:
                try readParent(offset + UInt64(at), at, n, buffers)
            default:
                buffers.zero(offset: at, length: n)
            }
        }
    }

    private func readFile(_ fileOffset: UInt64, _ at: Int, _ n: Int, _ buffers: IOVector) throws(BackendError) {
        let done = try positionalTransfer("preadv", fd: fd, fileOffset: fileOffset, vectorOffset: at, length: n, buffers) {
            preadv($0, $1, $2, $3)
        }
        if done < n { buffers.zero(offset: at + done, length: n - done) }
    }

    private func readParent(_ diskOffset: UInt64, _ at: Int, _ n: Int, _ buffers: IOVector) throws(BackendError) {
        guard let parent else { return buffers.zero(offset: at, length: n) }
        let reused = parentVectors.withLock { $0.popLast() }
        let piece = reused.flatMap { $0.capacity >= buffers.count ? $0 : nil } ?? IOVector(capacity: max(buffers.count, 64))
        defer { parentVectors.withLock { $0.append(piece) } }
        try buffers.slice(skipping: at, length: n, into: piece)
        try parent.read(at: diskOffset, length: n, into: piece)
    }

    /// A block of a differencing disk some of whose sectors are here (bit set in the sector bitmap) and the
    /// rest in the parent: runs of sectors from each.
    private func readPartial(_ block: Int, _ e: VHDXBATEntry, _ inBlock: UInt64, _ at: Int, _ n: Int,
                             _ buffers: IOVector) throws(BackendError) {
        let sector = geometry.logicalSectorSize
        let first = inBlock / sector, last = (inBlock + UInt64(n) - 1) / sector
        let bits = try sectorBits(block: block, firstSector: first, count: Int(last - first + 1))
        var s = first
        while s <= last {
            let here = bits[Int(s - first)]
            var t = s
            while t + 1 <= last && bits[Int(t + 1 - first)] == here { t += 1 }
            let start = max(inBlock, s * sector), end = min(inBlock + UInt64(n), (t + 1) * sector)
            let pieceAt = at + Int(start - inBlock), count = Int(end - start)
            if here {
                try readFile(e.fileOffset + start, pieceAt, count, buffers)
            } else {
                try readParent(UInt64(block) * geometry.blockSize + start, pieceAt, count, buffers)
            }
            s = t + 1
        }
    }

    /// The sector bitmap bits of `count` sectors of `block` from `firstSector` (of the block).
    private func sectorBits(block: Int, firstSector: UInt64, count: Int) throws(BackendError) -> [Bool] {
        let chunk = block / geometry.chunkRatio
        let sb = VHDXBATEntry(raw: bat.withLock { $0.entries[geometry.bitmapIndex(chunk)] })
        guard sb.state == VHDXBATEntry.SB_BLOCK_PRESENT else { return [Bool](repeating: false, count: count) }
        let sectorsPerBlock = geometry.blockSize / geometry.logicalSectorSize
        let firstBit = UInt64(block % geometry.chunkRatio) * sectorsPerBlock + firstSector
        let byteStart = firstBit / 8, byteEnd = (firstBit + UInt64(count) + 7) / 8
        let bytes = try [UInt8].read(fd: fd, at: sb.fileOffset + byteStart, count: Int(byteEnd - byteStart), what: "VHDX sector bitmap")
        return (0..<count).map { i in
            let bit = firstBit + UInt64(i) - byteStart * 8
            return bytes[Int(bit / 8)] & (1 << (bit % 8)) != 0
        }
    }

    public func write(at offset: UInt64, length: Int, from buffers: IOVector, fua: Bool) throws(BackendError) {
        guard !info.isReadOnly else { throw .readOnly }
        try info.check(offset: offset, length: UInt64(max(0, length)))
        try buffers.require(length)
        guard length > 0 else { return }
        try beginWriting()
        try forEachPiece(offset, length) { (block, inBlock, at, n) throws(BackendError) in
            var e = entry(block: block)
            if e.state != VHDXBATEntry.PAYLOAD_BLOCK_FULLY_PRESENT {
                guard let allocated = try allocate(block: block, writing: (inBlock, at, n, buffers)) else { return }
                e = allocated
            }
            try writeFile(e.fileOffset + inBlock, at, n, buffers)
        }
        if fua { try flush() }
    }

    private func writeFile(_ fileOffset: UInt64, _ at: Int, _ n: Int, _ buffers: IOVector) throws(BackendError) {
        let done = try positionalTransfer("pwritev", fd: fd, fileOffset: fileOffset, vectorOffset: at, length: n, buffers) {
            pwritev($0, $1, $2, $3)
        }
        guard done == n else { throw .io(call: "pwritev", errno: EIO) }
    }

    /// The first write of a session: new file, data and log GUIDs in both headers, and a log to carry updates.
    private func beginWriting() throws(BackendError) {
        guard !bat.withLock({ $0.writing }) else { return }
        try writer.withLock { (w: inout Writer) throws(BackendError) in
            guard w.log == nil else { return }
            let logGUID = GUID.random()
            try Self.updateHeaders(fd: fd, &w.header, &w.slot) {
                $0.fileWriteGUID = .random()
                $0.dataWriteGUID = .random()
                $0.logGUID = logGUID
            }
            w.log = VHDXLog(fd: fd, offset: w.header.logOffset, length: Int(w.header.logLength), guid: logGUID)
            bat.withLock { $0.writing = true }
        }
    }

    /// Makes `block` FULLY_PRESENT, if no other writer did meanwhile (then returns its entry, and the caller
    /// writes). Otherwise allocates it at the end of the file, fills it with what it held (zeros, or the parent's
    /// and this file's sectors; with `fill` false, zeros), writes the caller's piece into it, and logs the new
    /// BAT entry; returns nil.
    ///
    /// In a differencing disk the block's bits in the sector bitmap are set too (allocating the bitmap block
    /// when needed), in the same log entry: FULLY_PRESENT alone says it, but readers such as libvhdi go by the
    /// bitmap.
    private func allocate(block: Int, writing piece: (UInt64, Int, Int, IOVector)?, fill: Bool = true) throws(BackendError) -> VHDXBATEntry? {
        try writer.withLock { (w: inout Writer) throws(BackendError) -> VHDXBATEntry? in
            let old = entry(block: block)
            if old.state == VHDXBATEntry.PAYLOAD_BLOCK_FULLY_PRESENT { return old }
            guard let log = w.log else { throw .invalidConfiguration("VHDX allocation before the session began") }
            let start = w.fileEnd
            var end = start + geometry.blockSize
            var changes = [(geometry.payloadIndex(block), VHDXBATEntry(state: VHDXBATEntry.PAYLOAD_BLOCK_FULLY_PRESENT, fileOffset: start))]
            var bitmap: (offset: UInt64, fresh: Bool)?
            if metadata.hasParent {
                let sbIndex = geometry.bitmapIndex(block / geometry.chunkRatio)
                let sb = VHDXBATEntry(raw: bat.withLock { $0.entries[sbIndex] })
                if sb.state == VHDXBATEntry.SB_BLOCK_PRESENT {
                    bitmap = (sb.fileOffset, false)
                } else {
                    bitmap = (end, true)
                    changes.append((sbIndex, VHDXBATEntry(state: VHDXBATEntry.SB_BLOCK_PRESENT, fileOffset: end)))
                    end += VHDXBATGeometry.sectorBitmapBlockSize
                }
            }
            guard end >> 20 < 1 << 44 else { throw .unsupported("a VHDX file past 16 EiB") }
            guard ftruncate(fd, off_t(end)) == 0 else { throw .io(call: "ftruncate", errno: errno) }
            // What the block held, for the bytes the caller does not write.
            let blockStart = UInt64(block) * geometry.blockSize
            let blockLength = Int(min(geometry.blockSize, info.capacity - blockStart))
            let fromParent = old.state == VHDXBATEntry.PAYLOAD_BLOCK_PARTIALLY_PRESENT
                || (old.state == VHDXBATEntry.PAYLOAD_BLOCK_NOT_PRESENT && parent != nil)
            if fill && fromParent {
                let chunk = 1 << 20
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
                defer { buffer.deallocate() }
                let v = IOVector(capacity: 1)
                try v.append(buffer)
                var done = 0
                while done < blockLength {
                    let n = min(chunk, blockLength - done)
                    if old.state == VHDXBATEntry.PAYLOAD_BLOCK_PARTIALLY_PRESENT {
                        try readPartial(block, old, UInt64(done), 0, n, v)
                    } else {
                        try readParent(blockStart + UInt64(done), 0, n, v)
                    }
                    try writeFile(start + UInt64(done), 0, n, v)
                    done += n
                }
            }
            if let (inBlock, at, n, buffers) = piece { try writeFile(start + inBlock, at, n, buffers) }
            var sectors: [(UInt64, [UInt8])] = []
            if let bitmap { sectors = try bitmapSectors(block: block, at: bitmap.offset, fresh: bitmap.fresh) }
            if metadata.hasParent {
                try logBAT(log, changes, extra: sectors, fileEnd: end)
            } else {
                bat.withLock { t in for (i, e) in changes { t.entries[i] = e.raw } }
                w.unlogged.append(contentsOf: changes.map(\.0))
            }
            w.fileEnd = end
            if old.state == VHDXBATEntry.PAYLOAD_BLOCK_PARTIALLY_PRESENT {
                // The sectors that were here moved with the block; the old space is no longer used.
                _ = vmbus_shim_punch_hole(fd, Int64(old.fileOffset), Int64(geometry.blockSize))
            }
            return piece == nil ? changes[0].1 : nil
        }
    }

    /// The 4 KiB sectors of the sector bitmap block at `offset` that hold `block`'s bits, with those bits set.
    private func bitmapSectors(block: Int, at offset: UInt64, fresh: Bool) throws(BackendError) -> [(UInt64, [UInt8])] {
        let sectorsPerBlock = geometry.blockSize / geometry.logicalSectorSize
        let firstByte = UInt64(block % geometry.chunkRatio) * sectorsPerBlock / 8
        let endByte = firstByte + sectorsPerBlock / 8
        let size = UInt64(VHDXLogEntry.sectorSize)
        var sectors: [(UInt64, [UInt8])] = []
        var s = firstByte / size * size
        while s < endByte {
            var bytes = fresh ? [UInt8](repeating: 0, count: Int(size))
                              : try [UInt8].read(fd: fd, at: offset + s, count: Int(size), what: "VHDX sector bitmap")
            for i in max(s, firstByte)..<min(s + size, endByte) { bytes[Int(i - s)] = 0xFF }
            sectors.append((offset + s, bytes))
            s += size
        }
        return sectors
    }

    /// Changes BAT entries through the log, with `extra` sectors in the same entry: the BAT's 4 KiB sectors
    /// holding them, then the memory copy.
    private func logBAT(_ log: VHDXLog, _ changes: [(Int, VHDXBATEntry)], extra: [(UInt64, [UInt8])] = [],
                        fileEnd: UInt64) throws(BackendError) {
        let perSector = VHDXLogEntry.sectorSize / 8
        var firsts: [Int] = []
        for (i, _) in changes where !firsts.contains(i / perSector * perSector) { firsts.append(i / perSector * perSector) }
        var sectors: [(UInt64, [UInt8])] = []
        bat.withLock { t in
            let entries = t.entries
            for first in firsts {
                var sector = [UInt8](repeating: 0, count: VHDXLogEntry.sectorSize)
                for i in first..<min(first + perSector, entries.count) {
                    sector.put64(changes.last { $0.0 == i }?.1.raw ?? entries[i], at: 8 * (i - first))
                }
                sectors.append((batOffset + UInt64(first * 8), sector))
            }
        }
        try log.commit(sectors + extra, flushedFileOffset: fileEnd, lastFileOffset: fileEnd, stopBefore: stopLogBefore)
        bat.withLock { t in for (i, e) in changes { t.entries[i] = e.raw } }
    }

    /// Logs the allocations made since the last flush (the log entry's flush makes their data durable too), or
    /// flushes the file when there are none.
    public func flush() throws(BackendError) {
        guard !info.isReadOnly else { return }
        let logged = try writer.withLock { (w: inout Writer) throws(BackendError) -> Bool in
            guard let log = w.log, !w.unlogged.isEmpty else { return false }
            try logUnlogged(log, &w)
            return true
        }
        if !logged { try syncData(fd: fd) }
    }

    /// Logs the BAT entries of ``Writer/unlogged`` as they stand in memory now (a later trim may have changed
    /// one), in entries of at most ``VHDXLog/maximumSectorsPerEntry`` BAT sectors.
    private func logUnlogged(_ log: VHDXLog, _ w: inout Writer) throws(BackendError) {
        let perSector = VHDXLogEntry.sectorSize / 8
        var bySector: [Int: [Int]] = [:]
        for i in w.unlogged { bySector[i / perSector, default: []].append(i) }
        let sectors = bySector.keys.sorted()
        var next = 0
        while next < sectors.count {
            let group = sectors[next..<min(next + VHDXLog.maximumSectorsPerEntry, sectors.count)]
            let changes = bat.withLock { t in
                group.flatMap { bySector[$0] ?? [] }.map { ($0, VHDXBATEntry(raw: t.entries[$0])) }
            }
            try logBAT(log, changes, fileEnd: w.fileEnd)
            next += group.count
        }
        w.unlogged.removeAll(keepingCapacity: true)
    }

    public func unmap(at offset: UInt64, length: UInt64) throws(BackendError) {
        try writeZeroes(at: offset, length: length, unmap: true)
    }

    /// Whole blocks become PAYLOAD_BLOCK_ZERO (their space punched out); parts of blocks are zeroed in the
    /// file, after allocating the block when its data lives in the parent. A fixed disk keeps its blocks.
    public func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(BackendError) {
        guard !info.isReadOnly else { throw .readOnly }
        try info.check(offset: offset, length: length)
        guard length > 0 else { return }
        guard length <= UInt64(Int.max) else { throw .invalidConfiguration("write-zeroes of \(length) bytes") }
        try beginWriting()
        try forEachPiece(offset, Int(length)) { (block, inBlock, _, n) throws(BackendError) in
            let blockStart = UInt64(block) * geometry.blockSize
            let whole = inBlock == 0 && (UInt64(n) == geometry.blockSize || blockStart + UInt64(n) == info.capacity)
            var e = entry(block: block)
            if whole && !metadata.leaveBlocksAllocated && !metadata.hasParent {
                try writer.withLock { (w: inout Writer) throws(BackendError) in
                    let old = entry(block: block)
                    guard old.state != VHDXBATEntry.PAYLOAD_BLOCK_ZERO, let log = w.log else { return }
                    try logBAT(log, [(geometry.payloadIndex(block), VHDXBATEntry(state: VHDXBATEntry.PAYLOAD_BLOCK_ZERO, fileOffset: 0))],
                               fileEnd: w.fileEnd)
                    if old.state >= VHDXBATEntry.PAYLOAD_BLOCK_FULLY_PRESENT {
                        _ = vmbus_shim_punch_hole(fd, Int64(old.fileOffset), Int64(geometry.blockSize))
                    }
                }
                return
            }
            if whole && metadata.hasParent && e.state != VHDXBATEntry.PAYLOAD_BLOCK_FULLY_PRESENT {
                // A differencing disk keeps the block present, as a hole: PAYLOAD_BLOCK_ZERO would be read right
                // by the specification but as parent data by bitmap readers.
                e = try allocate(block: block, writing: nil, fill: false) ?? e
            }
            switch e.state {
            case VHDXBATEntry.PAYLOAD_BLOCK_FULLY_PRESENT:
                break
            case VHDXBATEntry.PAYLOAD_BLOCK_PARTIALLY_PRESENT:
                e = try allocate(block: block, writing: nil) ?? e
            case VHDXBATEntry.PAYLOAD_BLOCK_NOT_PRESENT where parent != nil:
                e = try allocate(block: block, writing: nil) ?? e
            default:
                return // Reads as zeros already.
            }
            try zeroFile(e.fileOffset + inBlock, UInt64(n))
        }
    }

    /// Zeros in the file: a hole, except in a fixed disk, which keeps its space.
    private func zeroFile(_ offset: UInt64, _ length: UInt64) throws(BackendError) {
        if !metadata.leaveBlocksAllocated, vmbus_shim_punch_hole(fd, Int64(offset), Int64(length)) == 0 { return }
        if vmbus_shim_zero_range(fd, Int64(offset), Int64(length)) == 0 { return }
        try writeZeros(fd: fd, at: offset, length: length, what: "VHDX zeroes")
    }
}

extension String {
    func replacingOccurrences(of a: Character, with b: Character) -> String { String(map { $0 == a ? b : $0 }) }
}
