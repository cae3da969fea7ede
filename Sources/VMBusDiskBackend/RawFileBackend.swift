import CVMBusShims
import Glibc

/// A raw disk image: the file's bytes are the disk's bytes. Created sparse; UNMAP punches holes.
///
/// Positional I/O (`preadv`/`pwritev`) straight into the caller's vector, so any number of threads use one
/// backend at once without a lock. A file shorter than the capacity reads as zeros past its end.
public final class RawFileBackend: BlockBackend {
    public let info: BlockBackendInfo
    public let path: String
    private let fd: Int32

    /// Opens `path`; if it does not exist and `createSize` is given, creates it sparse with that size (rounded
    /// down to the block size). An existing file keeps its size, which must be at least one block.
    public init(path: String, createSize: UInt64? = nil, readOnly: Bool = false,
                logicalBlockSize: Int = 512) throws(BackendError) {
        guard logicalBlockSize == 512 || logicalBlockSize == 4096 else {
            throw .invalidConfiguration("logical block size \(logicalBlockSize) is neither 512 nor 4096")
        }
        var fd = vmbus_shim_open(path, readOnly ? O_RDONLY : O_RDWR, 0)
        if fd < 0, errno == ENOENT, let size = createSize, !readOnly {
            fd = vmbus_shim_open(path, O_RDWR | O_CREAT | O_EXCL, 0o644)
            if fd >= 0, ftruncate(fd, off_t(clamping: size)) != 0 {
                let e = errno
                close(fd)
                unlink(path)
                throw .io(call: "ftruncate", errno: e)
            }
        }
        guard fd >= 0 else {
            throw errno == ENOENT ? .invalidConfiguration("\(path) does not exist (give a size to create it)")
                                  : .io(call: "open \(path)", errno: errno)
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else {
            let e = errno
            close(fd)
            throw .io(call: "fstat", errno: e)
        }
        guard st.st_mode & S_IFMT == S_IFREG else {
            close(fd)
            throw .invalidConfiguration("\(path) is not a regular file")
        }
        let capacity = UInt64(max(0, st.st_size)) / UInt64(logicalBlockSize) * UInt64(logicalBlockSize)
        guard capacity > 0 else {
            close(fd)
            throw .invalidConfiguration("\(path) is smaller than one \(logicalBlockSize)-byte block")
        }
        self.fd = fd
        self.path = path
        // Probe hole punching once, on a range past the end (changes nothing with KEEP_SIZE).
        let unmap = !readOnly && vmbus_shim_punch_hole(fd, Int64(clamping: capacity), 4096) == 0
        info = BlockBackendInfo(capacity: capacity, logicalBlockSize: logicalBlockSize,
                                physicalBlockSize: max(4096, logicalBlockSize), isReadOnly: readOnly,
                                supportsUnmap: unmap, supportsWriteZeroes: !readOnly,
                                description: "raw \(path)")
    }

    deinit { close(fd) }

    public func read(at offset: UInt64, length: Int, into buffers: IOVector) throws(BackendError) {
        try info.check(offset: offset, length: UInt64(max(0, length)))
        try buffers.require(length)
        let done = try transfer("preadv", offset: offset, length: length, buffers) { fd, iov, n, at in
            preadv(fd, iov, n, at)
        }
        // Past the end of a file shorter than the disk: zeros, as a sparse tail would read.
        if done < length { buffers.zero(offset: done, length: length - done) }
    }

    /// One `preadv2(RWF_NOWAIT)`: the page cache has it all, or the caller reads the blocking way (a short
    /// read or EAGAIN; a file shorter than the disk, whose tail reads as zeros, also goes that way).
    public func readIfCached(at offset: UInt64, length: Int, into buffers: IOVector) -> Bool {
        guard length > 0, (try? info.check(offset: offset, length: UInt64(length))) != nil,
              (try? buffers.require(length)) != nil else { return false }
        let n = buffers.withWindow(skipping: 0, length: length) { iov, count in
            vmbus_shim_preadv_nowait(fd, iov, count, Int64(offset))
        }
        return n == length
    }

    public func write(at offset: UInt64, length: Int, from buffers: IOVector, fua: Bool) throws(BackendError) {
        guard !info.isReadOnly else { throw .readOnly }
        try info.check(offset: offset, length: UInt64(max(0, length)))
        try buffers.require(length)
        let done = try transfer("pwritev", offset: offset, length: length, buffers) { fd, iov, n, at in
            pwritev(fd, iov, n, at)
        }
        guard done == length else { throw .io(call: "pwritev", errno: EIO) }
        if fua { try flush() }
    }

    private func transfer(
        _ name: String, offset: UInt64, length: Int, _ buffers: IOVector,
        _ call: (Int32, UnsafePointer<iovec>, Int32, off_t) -> Int
    ) throws(BackendError) -> Int {
        try positionalTransfer(name, fd: fd, fileOffset: offset, vectorOffset: 0, length: length, buffers, call)
    }

    public func flush() throws(BackendError) {
        guard !info.isReadOnly else { return }
        try syncData(fd: fd)
    }

    public func unmap(at offset: UInt64, length: UInt64) throws(BackendError) {
        guard !info.isReadOnly else { throw .readOnly }
        try info.check(offset: offset, length: length)
        guard info.supportsUnmap else { throw .unsupported("hole punching on \(path)") }
        guard length > 0 else { return }
        guard vmbus_shim_punch_hole(fd, Int64(offset), Int64(length)) == 0 else {
            throw .io(call: "fallocate(PUNCH_HOLE)", errno: errno)
        }
    }

    public func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(BackendError) {
        guard !info.isReadOnly else { throw .readOnly }
        try info.check(offset: offset, length: length)
        guard length > 0 else { return }
        if unmap, info.supportsUnmap, vmbus_shim_punch_hole(fd, Int64(offset), Int64(length)) == 0 { return }
        if vmbus_shim_zero_range(fd, Int64(offset), Int64(length)) == 0 { return }
        // No fallocate mode on this filesystem: write zeros, a page at a time.
        let page = 64 * 1024
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: page, alignment: 4096)
        defer { zeros.deallocate() }
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        let v = IOVector(capacity: 1)
        try v.append(zeros)
        var done: UInt64 = 0
        while done < length {
            let n = Int(min(UInt64(page), length - done))
            try write(at: offset + done, length: n, from: v, fua: false)
            done += UInt64(n)
        }
    }
}
