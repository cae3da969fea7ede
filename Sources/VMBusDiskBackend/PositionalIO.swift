import CVMBusShims
import Glibc

/// Repeats a positional vector call (`preadv`/`pwritev`) over bytes `vectorOffset ..< vectorOffset + length` of
/// `buffers`, at `fileOffset` of `fd`, until all moved, the call returns 0 (end of file), or it fails; EINTR and
/// short transfers resume where they stopped. Returns the bytes moved.
func positionalTransfer(
    _ name: String, fd: Int32, fileOffset: UInt64, vectorOffset: Int, length: Int, _ buffers: IOVector,
    _ call: (Int32, UnsafePointer<iovec>, Int32, off_t) -> Int
) throws(BackendError) -> Int {
    var done = 0
    while done < length {
        let n = buffers.withWindow(skipping: vectorOffset + done, length: length - done) { iov, count in
            call(fd, iov, count, off_t(fileOffset) + off_t(done))
        }
        if n < 0 {
            if errno == EINTR { continue }
            throw .io(call: name, errno: errno)
        }
        if n == 0 { break }
        done += n
    }
    return done
}

/// Repeats `call` (a positional read or write of the rest of `buffer` at the given offset) until all of it
/// moved; EINTR resumes. A return of 0 (end of file) throws.
private func exactly(_ name: String, fd: Int32, at offset: UInt64, _ buffer: UnsafeMutableRawBufferPointer, what: String,
                     _ call: (Int32, UnsafeMutableRawPointer, Int, off_t) -> Int) throws(BackendError) {
    guard let base = buffer.baseAddress else { return }
    var done = 0
    while done < buffer.count {
        let n = call(fd, base + done, buffer.count - done, off_t(offset) + off_t(done))
        if n < 0 {
            if errno == EINTR { continue }
            throw .io(call: "\(name)(\(what))", errno: errno)
        }
        if n == 0 { throw .corrupt(structure: what, offset: offset, why: "the file ends \(done) bytes into it") }
        done += n
    }
}

/// `pread` of exactly `buffer.count` bytes (metadata: footers, headers, tables); fewer at end of file throws.
func readExactly(fd: Int32, at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer, what: String) throws(BackendError) {
    try exactly("pread", fd: fd, at: offset, buffer, what: what) { pread($0, $1, $2, $3) }
}

/// `pwrite` of all of `buffer`.
func writeExactly(fd: Int32, at offset: UInt64, _ buffer: UnsafeRawBufferPointer, what: String) throws(BackendError) {
    try exactly("pwrite", fd: fd, at: offset, UnsafeMutableRawBufferPointer(mutating: buffer), what: what) { pwrite($0, $1, $2, $3) }
}

/// Opens the regular file of an image (read-only or read-write); returns its descriptor and size.
func openImageFile(_ path: String, readOnly: Bool) throws(BackendError) -> (fd: Int32, size: UInt64) {
    let fd = vmbus_shim_open(path, readOnly ? O_RDONLY : O_RDWR, 0)
    guard fd >= 0 else {
        throw errno == ENOENT ? .invalidConfiguration("\(path) does not exist") : .io(call: "open \(path)", errno: errno)
    }
    var st = stat()
    guard fstat(fd, &st) == 0 else { let e = errno; close(fd); throw .io(call: "fstat", errno: e) }
    guard st.st_mode & S_IFMT == S_IFREG else { close(fd); throw .invalidConfiguration("\(path) is not a regular file") }
    return (fd, UInt64(max(0, st.st_size)))
}

/// Visits the pieces of `offset ..< offset + length` that lie in one block of `blockSize` bytes each: (block,
/// offset in block, offset in the request, length). The block-mapped image formats split requests with it.
func forEachBlockPiece(_ offset: UInt64, _ length: Int, blockSize bs: UInt64,
                       _ body: (Int, UInt64, Int, Int) throws(BackendError) -> Void) throws(BackendError) {
    var done = 0
    while done < length {
        let at = offset + UInt64(done)
        let inBlock = at % bs
        let n = min(length - done, Int(bs - inBlock))
        try body(Int(at / bs), inBlock, done, n)
        done += n
    }
}

/// Writes `length` zero bytes at `offset` of `fd`, a MiB at a time (where no fallocate mode does it).
func writeZeros(fd: Int32, at offset: UInt64, length: UInt64, what: String) throws(BackendError) {
    let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: Int(min(length, 1 << 20)), alignment: 4096)
    defer { zeros.deallocate() }
    zeros.initializeMemory(as: UInt8.self, repeating: 0)
    var done: UInt64 = 0
    while done < length {
        let n = Int(min(length - done, UInt64(zeros.count)))
        try writeExactly(fd: fd, at: offset + done, UnsafeRawBufferPointer(rebasing: zeros[0..<n]), what: what)
        done += UInt64(n)
    }
}

/// `fdatasync`, resumed after EINTR: what FUA and SYNCHRONIZE CACHE wait for.
func syncData(fd: Int32) throws(BackendError) {
    while fdatasync(fd) != 0 {
        guard errno == EINTR else { throw .io(call: "fdatasync", errno: errno) }
    }
}

/// The one's complement of the byte sum of `bytes` with `field` counted as zero: the checksum of VHD structures.
func onesComplementChecksum(_ bytes: [UInt8], skipping field: Range<Int>) -> UInt32 {
    var sum: UInt32 = 0
    for (i, b) in bytes.enumerated() where !field.contains(i) { sum &+= UInt32(b) }
    return ~sum
}

extension Array where Element == UInt8 {
    /// Reads `count` bytes at `offset` of `fd` into a new array.
    static func read(fd: Int32, at offset: UInt64, count: Int, what: String) throws(BackendError) -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: count)
        let r: Result<Void, BackendError> = bytes.withUnsafeMutableBytes { b in
            do throws(BackendError) { try readExactly(fd: fd, at: offset, into: b, what: what); return .success(()) }
            catch { return .failure(error) }
        }
        try r.get()
        return bytes
    }

    func write(fd: Int32, at offset: UInt64, what: String) throws(BackendError) {
        let r: Result<Void, BackendError> = withUnsafeBytes { b in
            do throws(BackendError) { try writeExactly(fd: fd, at: offset, b, what: what); return .success(()) }
            catch { return .failure(error) }
        }
        try r.get()
    }
}
