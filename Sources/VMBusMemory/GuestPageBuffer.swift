/// A buffer the guest lent the host (or a driver keeps for the host) as a list of whole pages, such as
/// netvsc's receive and send buffers: byte offsets into it are mapped to the pages behind them.
///
/// Every page is checked against guest memory once, at init; afterwards each access checks only that the
/// offset range lies inside the buffer, so a data path pays no per-page lookups. When the pages are
/// consecutive (the page allocator's default) an access is one copy.
///
/// The object does not keep the memory alive by itself beyond ``memory``: whoever owns it must stop using it
/// before the pages are given back (GPADL torn down, channel closed).
public final class GuestPageBuffer: @unchecked Sendable {
    public let memory: GuestMemory
    public let pages: [UInt64]
    /// Bytes in the buffer (`pages.count * 4096`).
    public let size: Int
    /// Base of the mapping when the pages are consecutive.
    private let contiguousBase: UnsafeMutableRawPointer?
    private let pagePointers: [UnsafeMutableRawPointer]

    public init(memory: GuestMemory, pages: [UInt64]) throws(MemoryError) {
        var pointers: [UnsafeMutableRawPointer] = []
        pointers.reserveCapacity(pages.count)
        for pfn in pages { pointers.append(try memory.pagePointer(pfn)) }
        self.memory = memory
        self.pages = pages
        self.size = pages.count * GuestMemory.pageSize
        self.pagePointers = pointers
        var consecutive = !pages.isEmpty
        for i in pages.indices.dropFirst() where pages[i] != pages[i - 1] &+ 1 { consecutive = false; break }
        contiguousBase = consecutive ? pointers.first : nil
    }

    /// Whether `count` bytes at `offset` lie inside the buffer (no overflow on hostile values).
    @inline(__always)
    public func contains(offset: Int, count: Int) -> Bool {
        offset >= 0 && count >= 0 && offset <= size && count <= size - offset
    }

    /// Walks the pieces of `[offset, offset + count)` page by page.
    @inline(__always)
    private func forEachPiece(offset: Int, count: Int, _ body: (UnsafeMutableRawPointer, Int, Int) -> Void) {
        if let base = contiguousBase {
            body(base + offset, 0, count)
            return
        }
        var at = offset
        var done = 0
        while done < count {
            let page = at / GuestMemory.pageSize
            let inPage = at % GuestMemory.pageSize
            let n = min(count - done, GuestMemory.pageSize - inPage)
            body(pagePointers[page] + inPage, done, n)
            at += n
            done += n
        }
    }

    /// Copies `source` into the buffer at `offset`.
    public func write(at offset: Int, from source: UnsafeRawBufferPointer) throws(MemoryError) {
        guard contains(offset: offset, count: source.count) else {
            throw .rangeOutOfBounds(gpa: UInt64(max(0, offset)), count: source.count, size: size)
        }
        guard let src = source.baseAddress else { return }
        forEachPiece(offset: offset, count: source.count) { p, at, n in p.copyMemory(from: src + at, byteCount: n) }
    }

    /// Copies `destination.count` bytes of the buffer at `offset` into `destination`.
    public func read(at offset: Int, into destination: UnsafeMutableRawBufferPointer) throws(MemoryError) {
        guard contains(offset: offset, count: destination.count) else {
            throw .rangeOutOfBounds(gpa: UInt64(max(0, offset)), count: destination.count, size: size)
        }
        guard let dst = destination.baseAddress else { return }
        forEachPiece(offset: offset, count: destination.count) { p, at, n in (dst + at).copyMemory(from: p, byteCount: n) }
    }

    /// Copies `count` bytes at `offset` into `array` starting at `index` (which must have room).
    public func read(at offset: Int, count: Int, into array: inout [UInt8], index: Int = 0) throws(MemoryError) {
        guard index >= 0, count >= 0, index <= array.count, count <= array.count - index else {
            throw .rangeOutOfBounds(gpa: UInt64(max(0, offset)), count: count, size: array.count)
        }
        // Array's closure methods rethrow untyped errors: carry the typed one out in a Result.
        try array.withUnsafeMutableBytes { raw in
            Result { () throws(MemoryError) in
                try read(at: offset, into: UnsafeMutableRawBufferPointer(rebasing: raw[index..<(index + count)]))
            }
        }.get()
    }
}
