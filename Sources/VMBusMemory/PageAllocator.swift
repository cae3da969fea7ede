import VMBusSync

/// Hands out guest pages for rings and buffers, the way a guest kernel's page allocator would.
///
/// Allocations are page lists, not address ranges: a caller may ask for pages that are deliberately not
/// contiguous (`scattered: true`) so that GPADL and ring code is exercised over discontiguous memory.
public final class PageAllocator: Sendable {
    public let memory: GuestMemory
    private let free: Lock<[Bool]>

    /// Manages all pages of `memory` except the first `reservedPages` (kept for fixed structures).
    public init(memory: GuestMemory, reservedPages: Int = 0) {
        self.memory = memory
        var map = [Bool](repeating: true, count: memory.pageCount)
        for i in 0..<min(reservedPages, map.count) { map[i] = false }
        free = Lock(map)
    }

    public var freePageCount: Int { free.withLock { $0.reduce(0) { $0 + ($1 ? 1 : 0) } } }

    /// Allocates `count` zeroed pages. Contiguous unless `scattered`, in which case every other free page is
    /// skipped where possible so that no two consecutive pages of the list are adjacent in memory.
    public func allocate(pages count: Int, scattered: Bool = false) throws(MemoryError) -> [UInt64] {
        precondition(count > 0, "allocate at least one page")
        let result: [UInt64]? = free.withLock { map in
            var picked = [UInt64]()
            picked.reserveCapacity(count)
            if !scattered {
                var runStart = 0, runLength = 0
                for i in 0..<map.count {
                    if map[i] { if runLength == 0 { runStart = i }; runLength += 1 } else { runLength = 0 }
                    if runLength == count {
                        for p in runStart..<(runStart + count) { map[p] = false; picked.append(UInt64(p)) }
                        return picked
                    }
                }
                return nil
            }
            var i = map.count - 1  // from the top, stepping by two, so pages are out of order and apart
            while i >= 0 && picked.count < count {
                if map[i] { picked.append(UInt64(i)) }
                i -= 2
            }
            i = map.count - 2
            while i >= 0 && picked.count < count {
                if map[i] { picked.append(UInt64(i)) }
                i -= 2
            }
            guard picked.count == count else { return nil }
            for p in picked { map[Int(p)] = false }
            return picked
        }
        guard let pages = result else { throw .outOfMemory(requestedPages: count, freePages: freePageCount) }
        for p in pages { try memory.zero(gpa: p << GuestMemory.pageShift, count: GuestMemory.pageSize) }
        return pages
    }

    /// Returns pages to the allocator.
    public func release(_ pages: [UInt64]) {
        free.withLock { map in
            for p in pages where Int(p) < map.count { map[Int(p)] = true }
        }
    }
}
