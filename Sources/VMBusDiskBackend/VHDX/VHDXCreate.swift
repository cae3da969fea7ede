import CVMBusShims
import Glibc
import VMBusWire

extension VHDXBackend {
    /// Hyper-V's default block sizes: 32 MiB for a dynamic disk, 2 MiB for a differencing one.
    public static let defaultBlockSize: UInt32 = 32 << 20
    public static let defaultDifferencingBlockSize: UInt32 = 2 << 20
    static let logLength: UInt32 = 1 << 20

    /// Creates a VHDX at `path`, which must not exist. A differencing disk takes its size and sector size from
    /// `parent` and records the parent's DataWriteGuid and its path (relative to the child, and absolute).
    ///
    /// Layout: the 1 MiB header section, the log (1 MiB), the metadata region (1 MiB), the BAT, then the blocks.
    public static func create(path: String, size: UInt64, type: CreateType = .dynamic, blockSize: UInt32? = nil,
                              logicalSectorSize: UInt32 = 512, physicalSectorSize: UInt32 = 4096,
                              parent parentPath: String? = nil) throws(BackendError) {
        var size = size, logicalSectorSize = logicalSectorSize
        var locator: VHDXParentLocator?
        if type == .differencing {
            guard let parentPath else { throw .invalidConfiguration("a differencing VHDX needs a parent") }
            let parent = try VHDXBackend(path: parentPath, readOnly: true)
            size = parent.metadata.diskSize
            logicalSectorSize = parent.metadata.logicalSectorSize
            let absolute = canonical(parentPath)
            locator = VHDXParentLocator(entries: [
                ("parent_linkage", "{\(parent.header.dataWriteGUID)}"),
                ("relative_path", relativePath(from: canonical(directory(of: path)), to: absolute)),
                // Windows separators, as Hyper-V writes the key; readers such as libvhdi take the name after the last one.
                ("absolute_win32_path", absolute.replacingOccurrences(of: "/", with: "\\")),
            ])
        } else if parentPath != nil {
            throw .invalidConfiguration("only a differencing VHDX has a parent")
        }
        let blockSize = blockSize ?? (type == .differencing ? defaultDifferencingBlockSize : defaultBlockSize)
        guard blockSize >= VHDXMetadata.minimumBlockSize, blockSize <= VHDXMetadata.maximumBlockSize,
              blockSize & (blockSize - 1) == 0 else {
            throw .invalidConfiguration("VHDX block size \(blockSize) is not a power of two from 1 MiB to 256 MiB")
        }
        guard logicalSectorSize == 512 || logicalSectorSize == 4096, physicalSectorSize == 512 || physicalSectorSize == 4096 else {
            throw .invalidConfiguration("VHDX sector sizes are 512 or 4096 bytes")
        }
        let ls = UInt64(logicalSectorSize)
        size = (size + ls - 1) / ls * ls
        guard size > 0, size <= VHDXMetadata.maximumDiskSize else { throw .invalidConfiguration("a VHDX holds up to 64 TiB") }

        let metadata = VHDXMetadata(blockSize: blockSize, leaveBlocksAllocated: type == .fixed, diskSize: size,
                                    diskID: .random(), logicalSectorSize: logicalSectorSize,
                                    physicalSectorSize: physicalSectorSize, parent: locator)
        let geometry = VHDXBATGeometry(diskSize: size, blockSize: blockSize, logicalSectorSize: logicalSectorSize,
                                       hasParent: type == .differencing)
        let logOffset: UInt64 = 1 << 20, metadataOffset: UInt64 = 2 << 20, batOffset: UInt64 = 3 << 20
        let dataOffset = batOffset + geometry.regionLength
        guard geometry.regionLength <= UInt64(UInt32.max) else { throw .invalidConfiguration("a BAT of \(geometry.regionLength) bytes") }

        let fd = vmbus_shim_open(path, O_RDWR | O_CREAT | O_EXCL, 0o644)
        guard fd >= 0 else { throw .io(call: "create \(path)", errno: errno) }
        defer { close(fd) }
        do throws(BackendError) {
            var bat = [UInt8](repeating: 0, count: geometry.totalEntries * 8)
            var fileEnd = dataOffset
            if type == .fixed {
                for block in 0..<geometry.payloadBlocks {
                    let e = VHDXBATEntry(state: VHDXBATEntry.PAYLOAD_BLOCK_FULLY_PRESENT,
                                         fileOffset: dataOffset + UInt64(block) * UInt64(blockSize))
                    bat.put64(e.raw, at: 8 * geometry.payloadIndex(block))
                }
                fileEnd = dataOffset + UInt64(geometry.payloadBlocks) * UInt64(blockSize)
            }
            guard ftruncate(fd, off_t(fileEnd)) == 0 else { throw .io(call: "ftruncate", errno: errno) }
            if type == .fixed {
                let r = posix_fallocate(fd, off_t(dataOffset), off_t(fileEnd - dataOffset))
                guard r == 0 || r == EOPNOTSUPP || r == EINVAL else { throw .io(call: "posix_fallocate", errno: r) }
            }
            try VHDXFileIdentifier(creator: "swift-vmbus").encoded.write(fd: fd, at: 0, what: "VHDX file identifier")
            let regions = VHDXRegionTable(entries: [
                .init(guid: VHDXRegionTable.BAT, fileOffset: batOffset, length: UInt32(geometry.regionLength)),
                .init(guid: VHDXRegionTable.metadata, fileOffset: metadataOffset, length: 1 << 20),
            ])
            try regions.encoded.write(fd: fd, at: VHDXFileIdentifier.regionTable1Offset, what: "VHDX region table")
            try regions.encoded.write(fd: fd, at: VHDXFileIdentifier.regionTable2Offset, what: "VHDX region table copy")
            try metadata.encoded(length: 1 << 20).write(fd: fd, at: metadataOffset, what: "VHDX metadata")
            try bat.write(fd: fd, at: batOffset, what: "VHDX BAT")
            var header = VHDXHeader(sequenceNumber: 0, fileWriteGUID: .random(), dataWriteGUID: .random(),
                                    logLength: logLength, logOffset: logOffset)
            try header.encoded.write(fd: fd, at: VHDXFileIdentifier.header1Offset, what: "VHDX header")
            header.sequenceNumber = 1
            try header.encoded.write(fd: fd, at: VHDXFileIdentifier.header2Offset, what: "VHDX header")
            try syncData(fd: fd)
        } catch {
            unlink(path)
            throw error
        }
    }

    static func directory(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "." }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }

    /// `to` relative to the directory `from` (both absolute), with Windows separators, as Hyper-V writes it:
    /// ".\parent.vhdx", "..\base\parent.vhdx".
    static func relativePath(from: String, to: String) -> String {
        let a = from.split(separator: "/"), b = to.split(separator: "/")
        var common = 0
        while common < a.count, common < b.count - 1, a[common] == b[common] { common += 1 }
        let up = Array(repeating: "..", count: a.count - common)
        let parts = (up.isEmpty ? ["."] : up) + b[common...].map(String.init)
        return parts.joined(separator: "\\")
    }
}
