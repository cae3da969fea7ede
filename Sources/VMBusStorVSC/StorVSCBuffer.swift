import VMBusMemory

/// Memory in the guest that the host moves a disk's data into and out of directly, as Linux's storvsc hands
/// the host a bio's own pages: ``StorVSCDisk/read(at:into:offset:count:)`` and
/// ``StorVSCDisk/write(at:from:offset:count:fua:)`` name these pages in their GPA range, so no bounce copy
/// happens on either side. Made by ``StorVSCController/makeBuffer(byteCount:)``, its pages come from the
/// guest's page allocator and go back when the buffer is released.
///
/// A request in flight keeps its buffer alive: if the caller gives up waiting (a timeout) the pages stay
/// reserved until the host completes the request, so the host never writes into pages reused for something
/// else.
public final class StorVSCBuffer: @unchecked Sendable {
    /// The guest pages behind the buffer, in order.
    public let pages: [UInt64]
    /// The buffer's bytes (the pages are consecutive in guest memory).
    public let bytes: UnsafeMutableRawBufferPointer
    private let allocator: PageAllocator

    init(allocator: PageAllocator, pageCount: Int) throws(MemoryError) {
        let pages = try allocator.allocate(pages: pageCount)
        do throws(MemoryError) {
            let base = try allocator.memory.pagePointer(pages[0])
            // The allocator hands out runs; check that this one is one, since the bytes are addressed as one.
            for (i, p) in pages.enumerated() where p != pages[0] + UInt64(i) {
                throw MemoryError.invalidRange("the allocator's \(pageCount) pages are not consecutive")
            }
            _ = try allocator.memory.pagePointer(pages[pages.count - 1])
            bytes = UnsafeMutableRawBufferPointer(start: base, count: pageCount * GuestMemory.pageSize)
        } catch {
            allocator.release(pages)
            throw error
        }
        self.pages = pages
        self.allocator = allocator
    }

    deinit { allocator.release(pages) }

    public var count: Int { bytes.count }
}
