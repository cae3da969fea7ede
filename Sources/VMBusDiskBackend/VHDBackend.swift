import CVMBusShims
import Glibc
import VMBusSync

/// A VHD image (fixed or dynamic) as a disk. Differencing VHDs are refused (not supported).
///
/// Fixed: the data is the first `currentSize` bytes of the file, the footer follows. Dynamic: a block allocation
/// table maps each block (2 MiB by default) to a sector bitmap followed by the block's data; unallocated blocks
/// read as zeros. A write to an unallocated block allocates it at the end of the file, in an order that leaves the
/// image consistent after a crash at any point: the block (bitmap all set, data zero) and the footer moved past
/// it first, the table entry last. As qemu does, an allocated block's data is read whole, whatever its bitmap
/// says; the bitmap we write is all ones. Allocation is serialised; I/O to allocated blocks runs in parallel.
public final class VHDBackend: BlockBackend, @unchecked Sendable {
    public let info: BlockBackendInfo
    public let path: String
    public let footer: VHDFooter
    public let header: VHDDynamicHeader?
    private let fd: Int32
    /// Dynamic: the table (sector offsets, 0xFFFFFFFF = unallocated) and where the footer sits now.
    private struct Table {
        var entries: [UInt32]
        var footerOffset: UInt64
    }
    private let table: Lock<Table>
    static let unallocated: UInt32 = 0xFFFF_FFFF

    public enum CreateType: Sendable { case fixed, dynamic }

    /// Creates a new VHD of `size` bytes (rounded up to 512) at `path`, which must not exist.
    public static func create(path: String, size: UInt64, type: CreateType = .dynamic,
                              blockSize: UInt32 = VHDDynamicHeader.defaultBlockSize) throws(BackendError) {
        guard size > 0, size <= VHDFooter.maximumSize else { throw .invalidConfiguration("a VHD holds 512 bytes ... 2040 GiB") }
        guard blockSize >= 4096, blockSize <= 256 << 20, blockSize & (blockSize - 1) == 0 else {
            throw .invalidConfiguration("VHD block size \(blockSize) is not a power of two from 4 KiB to 256 MiB")
        }
        let size = (size + 511) / 512 * 512
        let fd = vmbus_shim_open(path, O_RDWR | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw .io(call: "create \(path)", errno: errno) }
        defer { close(fd) }
        var id = [UInt8](repeating: 0, count: 16)
        for i in 0..<16 { id[i] = UInt8.random(in: 0...255) }
        let stamp = UInt32(truncatingIfNeeded: max(0, time(nil) - Int(VHDFooter.epochOffset)))
        do throws(BackendError) {
            switch type {
            case .fixed:
                guard ftruncate(fd, off_t(size)) == 0 else { throw .io(call: "ftruncate", errno: errno) }
                let f = VHDFooter(size: size, type: .fixed, dataOffset: VHDFooter.noDataOffset, uniqueID: id, timestamp: stamp)
                try f.encoded.write(fd: fd, at: size, what: "VHD footer")
            case .dynamic:
                let entries = UInt32((size + UInt64(blockSize) - 1) / UInt64(blockSize))
                let tableOffset = UInt64(VHDFooter.size + VHDDynamicHeader.size)
                let tableBytes = (Int(entries) * 4 + 511) / 512 * 512
                let f = VHDFooter(size: size, type: .dynamic, dataOffset: UInt64(VHDFooter.size), uniqueID: id, timestamp: stamp)
                let h = VHDDynamicHeader(tableOffset: tableOffset, maxTableEntries: entries, blockSize: blockSize)
                try f.encoded.write(fd: fd, at: 0, what: "VHD footer copy")
                try h.encoded.write(fd: fd, at: UInt64(VHDFooter.size), what: "VHD dynamic header")
                try [UInt8](repeating: 0xFF, count: tableBytes).write(fd: fd, at: tableOffset, what: "VHD block table")
                try f.encoded.write(fd: fd, at: tableOffset + UInt64(tableBytes), what: "VHD footer")
            }
            guard fdatasync(fd) == 0 else { throw .io(call: "fdatasync", errno: errno) }
        } catch {
            unlink(path)
            throw error
        }
    }

    /// Opens an existing VHD, checking every structure it relies on.
    public init(path: String, readOnly: Bool = false) throws(BackendError) {
        let (fd, fileSize) = try openImageFile(path, readOnly: readOnly)
        do throws(BackendError) {
            guard fileSize >= UInt64(VHDFooter.size) else {
                throw .corrupt(structure: "VHD footer", offset: 0, why: "the file is too short to hold one")
            }
            let footerOffset = fileSize / 512 * 512 - UInt64(VHDFooter.size)
            let footer = try VHDFooter(decoding: try .read(fd: fd, at: footerOffset, count: VHDFooter.size, what: "VHD footer"),
                                       at: footerOffset)
            var header: VHDDynamicHeader?
            var entries: [UInt32] = []
            switch footer.type {
            case .fixed:
                guard footer.currentSize <= footerOffset else {
                    throw .corrupt(structure: "VHD footer", offset: footerOffset, why: "a fixed disk of \(footer.currentSize) bytes in a \(fileSize)-byte file")
                }
            case .dynamic:
                let (headerEnd, headerOverflow) = footer.dataOffset.addingReportingOverflow(UInt64(VHDDynamicHeader.size))
                guard !headerOverflow, headerEnd <= footerOffset else {
                    throw .corrupt(structure: "VHD footer", offset: footerOffset, why: "data offset \(footer.dataOffset) past the end of the file")
                }
                let h = try VHDDynamicHeader(decoding: try .read(fd: fd, at: footer.dataOffset, count: VHDDynamicHeader.size,
                                                                 what: "VHD dynamic header"), at: footer.dataOffset)
                let needed = (footer.currentSize + UInt64(h.blockSize) - 1) / UInt64(h.blockSize)
                guard UInt64(h.maxTableEntries) >= needed, h.maxTableEntries <= 1 << 24 else {
                    throw .corrupt(structure: "VHD dynamic header", offset: footer.dataOffset,
                                   why: "\(h.maxTableEntries) table entries for \(needed) blocks")
                }
                let (tableEnd, tableOverflow) = h.tableOffset.addingReportingOverflow(UInt64(h.maxTableEntries) * 4)
                guard !tableOverflow, tableEnd <= footerOffset else {
                    throw .corrupt(structure: "VHD block table", offset: h.tableOffset, why: "it runs past the end of the file")
                }
                let raw = try [UInt8].read(fd: fd, at: h.tableOffset, count: Int(h.maxTableEntries) * 4, what: "VHD block table")
                let r = BigEndianReader(raw)
                let blockBytes = UInt64(h.bitmapSize) + UInt64(h.blockSize)
                var starts: [(UInt64, Int)] = []
                for i in 0..<Int(h.maxTableEntries) {
                    let e = r.u32(4 * i)
                    if e != Self.unallocated {
                        let start = UInt64(e) * 512
                        guard start >= tableEnd, start + blockBytes <= footerOffset else {
                            throw .corrupt(structure: "VHD block table", offset: h.tableOffset + UInt64(4 * i),
                                           why: "block \(i) at sector \(e) lies outside the data area")
                        }
                        starts.append((start, i))
                    }
                    entries.append(e)
                }
                starts.sort { $0.0 < $1.0 }
                for (a, b) in zip(starts, starts.dropFirst()) where b.0 < a.0 + blockBytes {
                    throw .corrupt(structure: "VHD block table", offset: h.tableOffset + UInt64(4 * b.1),
                                   why: "blocks \(a.1) and \(b.1) overlap")
                }
                header = h
            case .differencing:
                throw .unsupported("differencing VHDs (\(path)): only fixed and dynamic VHDs are served")
            case nil:
                throw .corrupt(structure: "VHD footer", offset: footerOffset, why: "disk type \(footer.diskType)")
            }
            self.fd = fd
            self.path = path
            self.footer = footer
            self.header = header
            table = Lock(Table(entries: entries, footerOffset: footerOffset))
            info = BlockBackendInfo(capacity: footer.currentSize, logicalBlockSize: 512, physicalBlockSize: 4096,
                                    isReadOnly: readOnly, supportsUnmap: false, supportsWriteZeroes: !readOnly,
                                    description: "vhd \(footer.type == .fixed ? "fixed" : "dynamic") \(path)")
        } catch {
            close(fd)
            throw error
        }
    }

    deinit { close(fd) }

    // MARK: I/O

    /// Visits the pieces of `offset ..< offset + length` that lie in one block each: (block, offset in block,
    /// offset in the request, length).
    private func forEachPiece(_ offset: UInt64, _ length: Int, _ body: (Int, UInt64, Int, Int) throws(BackendError) -> Void) throws(BackendError) {
        guard let h = header else { return try body(0, offset, 0, length) }
        try forEachBlockPiece(offset, length, blockSize: UInt64(h.blockSize), body)
    }

    /// File offset of byte `inBlock` of `block`'s data, or nil when the block is unallocated.
    private func fileOffset(block: Int, inBlock: UInt64) -> UInt64? {
        guard let h = header else { return inBlock }
        let e = table.withLock { $0.entries[block] }
        guard e != Self.unallocated else { return nil }
        return UInt64(e) * 512 + UInt64(h.bitmapSize) + inBlock
    }

    public func read(at offset: UInt64, length: Int, into buffers: IOVector) throws(BackendError) {
        try info.check(offset: offset, length: UInt64(max(0, length)))
        try buffers.require(length)
        try forEachPiece(offset, length) { (block, inBlock, at, n) throws(BackendError) in
            guard let file = fileOffset(block: block, inBlock: inBlock) else {
                buffers.zero(offset: at, length: n)
                return
            }
            let done = try positionalTransfer("preadv", fd: fd, fileOffset: file, vectorOffset: at, length: n, buffers) {
                preadv($0, $1, $2, $3)
            }
            if done < n { buffers.zero(offset: at + done, length: n - done) }
        }
    }

    public func write(at offset: UInt64, length: Int, from buffers: IOVector, fua: Bool) throws(BackendError) {
        guard !info.isReadOnly else { throw .readOnly }
        try info.check(offset: offset, length: UInt64(max(0, length)))
        try buffers.require(length)
        try forEachPiece(offset, length) { (block, inBlock, at, n) throws(BackendError) in
            let file: UInt64
            if let f = fileOffset(block: block, inBlock: inBlock) {
                file = f
            } else {
                file = try allocate(block: block) + inBlock
            }
            let done = try positionalTransfer("pwritev", fd: fd, fileOffset: file, vectorOffset: at, length: n, buffers) {
                pwritev($0, $1, $2, $3)
            }
            guard done == n else { throw .io(call: "pwritev", errno: EIO) }
        }
        if fua { try flush() }
    }

    /// Allocates `block` at the end of the file (if no other writer did meanwhile); returns its data's offset.
    private func allocate(block: Int) throws(BackendError) -> UInt64 {
        guard let h = header else { throw .invalidConfiguration("allocation in a fixed VHD") }
        return try table.withLock { (t: inout Table) throws(BackendError) -> UInt64 in
            if t.entries[block] != Self.unallocated { return UInt64(t.entries[block]) * 512 + UInt64(h.bitmapSize) }
            let start = t.footerOffset
            let end = start + UInt64(h.bitmapSize) + UInt64(h.blockSize)
            guard start / 512 < UInt64(Self.unallocated) else { throw .unsupported("a VHD past 2 TiB of file") }
            // 1. The block: bitmap all set, data zero (the file grows sparse), then the footer past it.
            try [UInt8](repeating: 0xFF, count: h.bitmapSize).write(fd: fd, at: start, what: "VHD sector bitmap")
            guard ftruncate(fd, off_t(end)) == 0 else { throw .io(call: "ftruncate", errno: errno) }
            try footer.encoded.write(fd: fd, at: end, what: "VHD footer")
            t.footerOffset = end
            // 2. The table entry, last: until it is written the image is whole without the block.
            let sector = UInt32(start / 512)
            try [UInt8(sector >> 24), UInt8((sector >> 16) & 0xFF), UInt8((sector >> 8) & 0xFF), UInt8(sector & 0xFF)]
                .write(fd: fd, at: h.tableOffset + UInt64(block) * 4, what: "VHD block table entry")
            t.entries[block] = sector
            return start + UInt64(h.bitmapSize)
        }
    }

    public func flush() throws(BackendError) {
        guard !info.isReadOnly else { return }
        try syncData(fd: fd)
    }

    public func unmap(at offset: UInt64, length: UInt64) throws(BackendError) {
        throw .unsupported("UNMAP on a VHD")
    }

    public func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(BackendError) {
        guard !info.isReadOnly else { throw .readOnly }
        try info.check(offset: offset, length: length)
        guard length <= UInt64(Int.max) else { throw .invalidConfiguration("write-zeroes of \(length) bytes") }
        let chunk = 64 * 1024
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: chunk, alignment: 4096)
        defer { zeros.deallocate() }
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        let v = IOVector(capacity: 1)
        try v.append(zeros)
        try forEachPiece(offset, Int(length)) { (block, inBlock, at, n) throws(BackendError) in
            // Zeros in an unallocated block are already there.
            guard fileOffset(block: block, inBlock: inBlock) != nil else { return }
            var done = 0
            while done < n {
                let m = min(chunk, n - done)
                try write(at: offset + UInt64(at + done), length: m, from: v, fua: false)
                done += m
            }
        }
    }
}
