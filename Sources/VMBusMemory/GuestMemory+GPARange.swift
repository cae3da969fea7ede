import VMBusProtocol

extension GuestMemory {
    /// Walks the guest memory a list of GPA ranges names (PROTOCOL.md §3.1), page by page: `body` gets the
    /// address and length of each piece, in order. Every range is validated and every page checked against
    /// this memory before the first byte is touched, so a bad list touches nothing.
    private func forEachPiece(of ranges: [GPARange], limit: Int,
                              _ body: (UnsafeMutableRawPointer, Int) -> Void) throws(MemoryError) -> Int {
        var total = 0
        for range in ranges {
            do { try range.validate() } catch { throw .invalidRange("\(error)") }
            for pfn in range.pfns where !contains(pfn: pfn) { throw .pageOutOfRange(pfn: pfn, pageCount: pageCount) }
            total += Int(range.byteCount)
        }
        let reserved = reservedPages.withLock { pages -> UInt64? in
            guard !pages.isEmpty else { return nil }
            for range in ranges {
                for pfn in range.pfns where pages.contains(pfn) { return pfn }
            }
            return nil
        }
        if let pfn = reserved { throw .reservedPage(pfn: pfn) }
        var remaining = min(total, limit)
        let moved = remaining
        for range in ranges where remaining > 0 {
            var offset = Int(range.byteOffset)
            var left = min(Int(range.byteCount), remaining)
            for pfn in range.pfns where left > 0 {
                let n = min(left, Self.pageSize - offset)
                body(base + Int(pfn) * Self.pageSize + offset, n)
                left -= n
                remaining -= n
                offset = 0
            }
        }
        return moved
    }

    /// Bytes the ranges describe in total (after validating them).
    public func byteCount(of ranges: [GPARange]) throws(MemoryError) -> Int {
        _ = try forEachPiece(of: ranges, limit: 0) { _, _ in }
        return ranges.reduce(0) { $0 + Int($1.byteCount) }
    }

    /// Copies up to `destination.count` bytes of the memory the ranges describe into `destination`; returns
    /// how many were copied.
    @discardableResult
    public func copy(from ranges: [GPARange], to destination: UnsafeMutableRawBufferPointer) throws(MemoryError) -> Int {
        var at = 0
        return try forEachPiece(of: ranges, limit: destination.count) { p, n in
            (destination.baseAddress! + at).copyMemory(from: p, byteCount: n)
            at += n
        }
    }

    /// Copies up to `source.count` bytes from `source` into the memory the ranges describe; returns how many
    /// were copied.
    @discardableResult
    public func copy(to ranges: [GPARange], from source: UnsafeRawBufferPointer) throws(MemoryError) -> Int {
        var at = 0
        return try forEachPiece(of: ranges, limit: source.count) { p, n in
            p.copyMemory(from: source.baseAddress! + at, byteCount: n)
            at += n
        }
    }

    /// The bytes the ranges describe, up to `limit` (control paths and tests; allocates).
    public func read(ranges: [GPARange], limit: Int = .max) throws(MemoryError) -> [UInt8] {
        var out: [UInt8] = []
        _ = try forEachPiece(of: ranges, limit: limit) { p, n in
            out.append(contentsOf: UnsafeRawBufferPointer(start: p, count: n))
        }
        return out
    }
}
