import VMBusMemory

extension GuestMemory {
    /// The ring whose pages are `pfns` (the first is the control page, the rest the data pages in ring order),
    /// as a host sees a GPADL. Adjacent, in-order data pages take the contiguous fast path.
    ///
    /// The returned value keeps this memory alive.
    /// - Throws: ``RingError/badMemory(_:)`` if a page lies outside guest memory, is reserved (the event-flags
    ///   page), or the list is too short.
    public func ringMemory(pfns: ArraySlice<UInt64>) throws(RingError) -> RingMemory {
        var pages = [UnsafeMutableRawPointer]()
        pages.reserveCapacity(pfns.count)
        for pfn in pfns {
            guard !isReserved(pfn: pfn) else { throw .badMemory("page 0x\(String(pfn, radix: 16)) is reserved") }
            do {
                pages.append(try pagePointer(pfn))
            } catch {
                throw .badMemory("\(error)")
            }
        }
        return try RingMemory(pages: pages, owner: self)
    }
}
