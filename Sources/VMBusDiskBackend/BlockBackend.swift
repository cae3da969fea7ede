/// What a disk is, as the SCSI target needs to describe it.
public struct BlockBackendInfo: Sendable, Equatable {
    /// Bytes, a multiple of ``logicalBlockSize``.
    public var capacity: UInt64
    /// 512 or 4096.
    public var logicalBlockSize: Int
    public var physicalBlockSize: Int
    public var isReadOnly: Bool
    /// UNMAP frees space (holes in a raw file).
    public var supportsUnmap: Bool
    /// Zeroing a range is cheaper than writing zeros.
    public var supportsWriteZeroes: Bool
    /// For `vmbus list -v`: "raw /path/disk0.raw".
    public var description: String

    public init(capacity: UInt64, logicalBlockSize: Int = 512, physicalBlockSize: Int = 4096, isReadOnly: Bool = false,
                supportsUnmap: Bool = false, supportsWriteZeroes: Bool = false, description: String) {
        self.capacity = capacity
        self.logicalBlockSize = logicalBlockSize
        self.physicalBlockSize = physicalBlockSize
        self.isReadOnly = isReadOnly
        self.supportsUnmap = supportsUnmap
        self.supportsWriteZeroes = supportsWriteZeroes
        self.description = description
    }

    public var blockCount: UInt64 { capacity / UInt64(logicalBlockSize) }

    /// Checks that `offset + length` lies inside the disk.
    public func check(offset: UInt64, length: UInt64) throws(BackendError) {
        let (end, overflow) = offset.addingReportingOverflow(length)
        guard !overflow, end <= capacity else {
            throw .outOfRange(offset: offset, length: length, capacity: capacity)
        }
    }
}

/// A disk the host serves: raw files here, VHDX, VHD and NBD next to them. Offsets and lengths are bytes.
///
/// Many threads call one backend at once (one per channel worker or I/O thread): implementations use
/// positional I/O and no lock around the I/O itself. Data moves through a caller-owned ``IOVector`` that
/// points into mapped guest pages, so a read lands in the guest's buffer with no copy in between, and nothing
/// is allocated per I/O.
public protocol BlockBackend: AnyObject, Sendable {
    var info: BlockBackendInfo { get }
    /// Reads `length` bytes at `offset` into the first `length` bytes of `buffers`.
    func read(at offset: UInt64, length: Int, into buffers: IOVector) throws(BackendError)
    /// Writes the first `length` bytes of `buffers` at `offset`; with `fua`, on stable storage before it returns.
    func write(at offset: UInt64, length: Int, from buffers: IOVector, fua: Bool) throws(BackendError)
    /// Everything written so far reaches stable storage (SYNCHRONIZE CACHE).
    func flush() throws(BackendError)
    /// The range's contents are no longer needed; it reads back as zeros afterwards.
    func unmap(at offset: UInt64, length: UInt64) throws(BackendError)
    /// The range reads back as zeros; with `unmap`, its space may be freed.
    func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(BackendError)
    /// Leaves the image clean on stable storage, as a host that stops must: everything flushed, and an image
    /// format's open state (a VHDX's live log) closed, so that other tools open it without a repair. Called once
    /// no I/O is in flight; a later write opens the image again.
    func closeCleanly() throws(BackendError)
}

extension BlockBackend {
    public func closeCleanly() throws(BackendError) {
        if !info.isReadOnly { try flush() }
    }
}
