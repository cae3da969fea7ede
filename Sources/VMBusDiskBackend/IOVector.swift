import Glibc

/// A caller-owned scatter-gather list (`struct iovec` array) of fixed capacity, reused for every request, so
/// the data path allocates nothing after creation. The host fills it with pointers into mapped guest pages;
/// tests and the guest edge fill it with ordinary buffers.
///
/// Not thread-safe: one request owns one vector at a time. The memory it points at must outlive its use.
public final class IOVector: @unchecked Sendable {
    public let capacity: Int
    public private(set) var count = 0
    /// Sum of the segment lengths.
    public private(set) var totalLength = 0
    private let segments: UnsafeMutablePointer<iovec>
    /// Where ``withWindow(skipping:length:_:)`` builds a trimmed copy for one system call.
    private let window: UnsafeMutablePointer<iovec>

    public init(capacity: Int) {
        self.capacity = max(1, capacity)
        segments = .allocate(capacity: self.capacity)
        window = .allocate(capacity: self.capacity)
    }

    deinit {
        segments.deallocate()
        window.deallocate()
    }

    public func reset() {
        count = 0
        totalLength = 0
    }

    /// Adds a segment. Empty segments are skipped.
    public func append(base: UnsafeMutableRawPointer, length: Int) throws(BackendError) {
        guard length > 0 else { return }
        guard count < capacity else { throw .bufferTooSmall(needed: count + 1, available: capacity) }
        segments[count] = iovec(iov_base: base, iov_len: length)
        count += 1
        totalLength += length
    }

    /// Adds every byte of `buffer` as one segment.
    public func append(_ buffer: UnsafeMutableRawBufferPointer) throws(BackendError) {
        guard let base = buffer.baseAddress else { return }
        try append(base: base, length: buffer.count)
    }

    /// The start of the vector when its first `length` bytes are one segment (so a call that takes one
    /// contiguous buffer can use the caller's memory directly); nil otherwise.
    public func contiguousBase(length: Int) -> UnsafeMutableRawPointer? {
        guard count > 0, segments[0].iov_len >= length else { return nil }
        return segments[0].iov_base
    }

    /// Calls `body` with iovecs that cover bytes `skipping ..< skipping + length` of the vector (for a system
    /// call that resumes after a short transfer). `length` must fit: see ``require(_:)``.
    func withWindow<R, E: Error>(skipping: Int, length: Int, _ body: (UnsafePointer<iovec>, Int32) throws(E) -> R) throws(E) -> R {
        var n = 0
        var offset = 0
        var left = length
        for i in 0..<count where left > 0 {
            let seg = segments[i]
            let end = offset + seg.iov_len
            defer { offset = end }
            guard end > skipping else { continue }
            let start = max(0, skipping - offset)
            let take = min(seg.iov_len - start, left)
            window[n] = iovec(iov_base: seg.iov_base.map { $0 + start }, iov_len: take)
            n += 1
            left -= take
        }
        return try body(UnsafePointer(window), Int32(n))
    }

    /// Makes `target` cover bytes `skipping ..< skipping + length` of this vector (a piece of a request handed
    /// to another backend, such as a differencing disk's parent).
    public func slice(skipping: Int, length: Int, into target: IOVector) throws(BackendError) {
        try require(skipping + length)
        target.reset()
        try withWindow(skipping: skipping, length: length) { (iov, n) throws(BackendError) in
            for i in 0..<Int(n) where iov[i].iov_len > 0 {
                guard let base = iov[i].iov_base else { continue }
                try target.append(base: base, length: iov[i].iov_len)
            }
        }
    }

    /// Throws unless the vector holds at least `length` bytes.
    public func require(_ length: Int) throws(BackendError) {
        guard length >= 0, length <= totalLength else { throw .bufferTooSmall(needed: length, available: totalLength) }
    }

    /// Visits the byte ranges `offset ..< offset + length` of the vector, segment by segment.
    private func forEachPiece(offset: Int, length: Int, _ body: (UnsafeMutableRawPointer, Int, Int) -> Void) {
        var position = 0
        var done = 0
        for i in 0..<count where done < length {
            let seg = segments[i]
            let end = position + seg.iov_len
            defer { position = end }
            guard end > offset + done, let base = seg.iov_base else { continue }
            let start = offset + done - position
            let take = min(seg.iov_len - start, length - done)
            body(base + start, take, done)
            done += take
        }
    }

    /// Copies `source` into the vector at byte `offset`; returns the bytes copied (fewer if the vector ends).
    @discardableResult
    public func copy(from source: UnsafeRawBufferPointer, toOffset offset: Int) -> Int {
        guard let src = source.baseAddress, offset >= 0 else { return 0 }
        let length = max(0, min(source.count, totalLength - offset))
        forEachPiece(offset: offset, length: length) { p, n, done in p.copyMemory(from: src + done, byteCount: n) }
        return length
    }

    /// Copies bytes from the vector at `offset` into `destination`; returns the bytes copied.
    @discardableResult
    public func copy(toBuffer destination: UnsafeMutableRawBufferPointer, fromOffset offset: Int) -> Int {
        guard let dst = destination.baseAddress, offset >= 0 else { return 0 }
        let length = max(0, min(destination.count, totalLength - offset))
        forEachPiece(offset: offset, length: length) { p, n, done in (dst + done).copyMemory(from: p, byteCount: n) }
        return length
    }

    /// Sets `length` bytes at `offset` to zero.
    public func zero(offset: Int, length: Int) {
        guard offset >= 0 else { return }
        forEachPiece(offset: offset, length: max(0, min(length, totalLength - offset))) { p, n, _ in
            p.initializeMemory(as: UInt8.self, repeating: 0, count: n)
        }
    }

    /// Whether `length` bytes at `offset` are all zero (WRITE SAME with UNMAP, zero detection).
    public func isZero(offset: Int, length: Int) -> Bool {
        var zero = true
        forEachPiece(offset: offset, length: max(0, min(length, totalLength - offset))) { p, n, _ in
            guard zero else { return }
            let bytes = UnsafeRawBufferPointer(start: p, count: n)
            zero = !bytes.contains { $0 != 0 }
        }
        return zero
    }
}
