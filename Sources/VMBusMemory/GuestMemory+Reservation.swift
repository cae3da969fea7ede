import VMBusSync

extension GuestMemory {
    /// Pages the hypervisor side uses itself (the SynIC event-flags page): a GPADL, ring or GPA range naming one
    /// is refused, or a guest could put ring data where the host sets interrupt bits, and read those bits as
    /// packets (Hyper-V keeps SIEFP/SIMP overlay pages out of guest-visible GPADLs the same way).
    public func reserve(pfn: UInt64) {
        reservedPages.withLock { pages in
            if !pages.contains(pfn) { pages.append(pfn) }
        }
    }

    /// Whether `pfn` is reserved (see ``reserve(pfn:)``).
    public func isReserved(pfn: UInt64) -> Bool {
        reservedPages.withLock { $0.contains(pfn) }
    }

    /// Every reserved page, lowest first.
    public var reservedPFNs: [UInt64] { reservedPages.withLock { $0.sorted() } }
}
