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

    /// True when ``submitRead(at:length:into:completion:)`` and ``submitWrite(at:length:from:fua:completion:)``
    /// return once the request is on its way and complete it from the backend's own threads (NBD), so a caller
    /// keeps many requests in flight without a thread for each. False (the default): they run the synchronous
    /// call on the caller's thread.
    var completesAsynchronously: Bool { get }
    /// Starts a read of `length` bytes at `offset` into the first `length` bytes of `buffers`, and calls
    /// `completion` exactly once when the data is there (or the read failed), possibly before this returns and
    /// possibly on another thread. `buffers` and the memory it points at belong to the backend until then; after
    /// a failed read their contents are unspecified.
    func submitRead(at offset: UInt64, length: Int, into buffers: IOVector, completion: any BlockIOCompletion)
    /// Starts a write, as ``write(at:length:from:fua:)`` describes, completed as ``submitRead(at:length:into:completion:)`` is.
    func submitWrite(at offset: UInt64, length: Int, from buffers: IOVector, fua: Bool, completion: any BlockIOCompletion)
    /// Reads `length` bytes at `offset` into `buffers` only if that needs no wait for a device (every byte is
    /// already in memory, as in the page cache): true when they are all there; false, with `buffers` in any
    /// state, when the read must take the blocking way. A thread that must not block (a channel worker)
    /// answers cached reads itself this way, as QEMU and io_uring try `RWF_NOWAIT` before a worker thread.
    /// Default: false.
    func readIfCached(at offset: UInt64, length: Int, into buffers: IOVector) -> Bool
}

/// Where an asynchronous backend request ends: called once per request, with nil for success. Implemented by a
/// caller's preallocated per-request slot, so that submitting allocates nothing.
public protocol BlockIOCompletion: AnyObject, Sendable {
    func blockIOCompleted(_ error: BackendError?)
}

extension BlockBackend {
    public func readIfCached(at offset: UInt64, length: Int, into buffers: IOVector) -> Bool { false }

    public func closeCleanly() throws(BackendError) {
        if !info.isReadOnly { try flush() }
    }

    public var completesAsynchronously: Bool { false }

    public func submitRead(at offset: UInt64, length: Int, into buffers: IOVector, completion: any BlockIOCompletion) {
        completeSynchronously(completion) { () throws(BackendError) in try read(at: offset, length: length, into: buffers) }
    }

    public func submitWrite(at offset: UInt64, length: Int, from buffers: IOVector, fua: Bool, completion: any BlockIOCompletion) {
        completeSynchronously(completion) { () throws(BackendError) in
            try write(at: offset, length: length, from: buffers, fua: fua)
        }
    }

    /// Runs `body` (a synchronous I/O) on this thread and hands its outcome to `completion`: the submit calls of a
    /// backend without asynchronous I/O, and an asynchronous backend's fallback for requests it does not pipeline.
    public func completeSynchronously(_ completion: any BlockIOCompletion, _ body: () throws(BackendError) -> Void) {
        let failure: BackendError?
        do throws(BackendError) {
            try body()
            failure = nil
        } catch {
            failure = error
        }
        completion.blockIOCompleted(failure)
    }
}
