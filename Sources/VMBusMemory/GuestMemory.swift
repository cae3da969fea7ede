import CVMBusShims
import VMBusSync
#if canImport(Glibc)
import Glibc
#endif

/// The guest's physical memory: one shared mapping that GPADLs and GPA ranges index by 4 KiB page number.
///
/// It is backed by a memfd so that another process (the host, in the two-process transport) can map the same
/// pages. Every access by page number or guest physical address is bounds-checked against the mapping; this is
/// the only type that hands out raw pointers into guest memory, and only to the ring and to the transport.
public final class GuestMemory: @unchecked Sendable {
    /// `HV_HYP_PAGE_SIZE`
    public static let pageSize = 4096
    public static let pageShift: UInt64 = 12

    /// Start of the mapping. Valid until the object is released.
    public let base: UnsafeMutableRawPointer
    /// Size in bytes, a multiple of the page size.
    public let size: Int
    /// The memfd behind the mapping, owned by this object (closed on release), or -1.
    public let fd: Int32

    public var pageCount: Int { size / Self.pageSize }

    /// See ``reserve(pfn:)``. A handful at most; only the control path looks at them.
    let reservedPages = Lock<[UInt64]>([])

    /// Creates `pages` pages of zeroed, shareable memory.
    public init(pages: Int, name: String = "vmbus-guest-memory") throws(MemoryError) {
        precondition(pages > 0, "guest memory needs at least one page")
        let size = pages * Self.pageSize
        let fd = vmbus_shim_memfd_create(name, vmbus_shim_mfd_cloexec() | vmbus_shim_mfd_allow_sealing())
        guard fd >= 0 else { throw .system(call: "memfd_create", errno: errno) }
        guard ftruncate(fd, off_t(size)) == 0 else {
            let e = errno; close(fd); throw .system(call: "ftruncate", errno: e)
        }
        // Sealed against resizing: a host that maps this memory must not fault (SIGBUS) because the guest
        // shrank the file under it. The host checks the seals before mapping.
        guard vmbus_shim_add_seals(fd, vmbus_shim_seal_shrink() | vmbus_shim_seal_grow() | vmbus_shim_seal_seal()) == 0 else {
            let e = errno; close(fd); throw .system(call: "fcntl(F_ADD_SEALS)", errno: e)
        }
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            let e = errno; close(fd); throw .system(call: "mmap", errno: e)
        }
        self.base = p
        self.size = size
        self.fd = fd
    }

    /// Maps `size` bytes of a memory fd received from a peer. Takes ownership of `fd`. The size is checked
    /// against the file, and the file must be sealed against shrinking, so a peer can neither make us map
    /// beyond its end nor cut the file short under our mapping (either would fault on access).
    public init(mapping fd: Int32, size: Int) throws(MemoryError) {
        guard size > 0, size % Self.pageSize == 0 else {
            close(fd); throw .rangeOutOfBounds(gpa: 0, count: size, size: size)
        }
        let seals = vmbus_shim_get_seals(fd)
        guard seals >= 0, seals & vmbus_shim_seal_shrink() != 0 else {
            close(fd); throw .unsealed
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else { let e = errno; close(fd); throw .system(call: "fstat", errno: e) }
        guard Int(st.st_size) >= size else {
            close(fd); throw .rangeOutOfBounds(gpa: 0, count: size, size: Int(st.st_size))
        }
        guard let p = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), p != MAP_FAILED else {
            let e = errno; close(fd); throw .system(call: "mmap", errno: e)
        }
        self.base = p
        self.size = size
        self.fd = fd
    }

    deinit {
        munmap(base, size)
        if fd >= 0 { close(fd) }
    }

    /// Whether `pfn` names a page of this memory.
    @inline(__always)
    public func contains(pfn: UInt64) -> Bool { pfn < UInt64(pageCount) }

    /// The page `pfn`, or an error if it is outside guest memory.
    @inline(__always)
    public func pagePointer(_ pfn: UInt64) throws(MemoryError) -> UnsafeMutableRawPointer {
        guard contains(pfn: pfn) else { throw .pageOutOfRange(pfn: pfn, pageCount: pageCount) }
        return base + Int(pfn) * Self.pageSize
    }

    @inline(__always)
    func checkRange(_ gpa: UInt64, _ count: Int) throws(MemoryError) {
        guard count >= 0, gpa <= UInt64(size), UInt64(size) - gpa >= UInt64(count) else {
            throw .rangeOutOfBounds(gpa: gpa, count: count, size: size)
        }
    }

    /// Copies `count` bytes at `gpa` into `destination`.
    public func read(gpa: UInt64, into destination: UnsafeMutableRawPointer, count: Int) throws(MemoryError) {
        try checkRange(gpa, count)
        destination.copyMemory(from: base + Int(gpa), byteCount: count)
    }

    /// Copies `count` bytes from `source` to `gpa`.
    public func write(gpa: UInt64, from source: UnsafeRawPointer, count: Int) throws(MemoryError) {
        try checkRange(gpa, count)
        (base + Int(gpa)).copyMemory(from: source, byteCount: count)
    }

    /// Reads `count` bytes at `gpa` into a new array (control plane and tests).
    public func readBytes(gpa: UInt64, count: Int) throws(MemoryError) -> [UInt8] {
        try checkRange(gpa, count)
        return [UInt8](UnsafeRawBufferPointer(start: base + Int(gpa), count: count))
    }

    /// Writes `bytes` at `gpa` (control plane and tests).
    public func writeBytes(gpa: UInt64, _ bytes: [UInt8]) throws(MemoryError) {
        try checkRange(gpa, bytes.count)
        bytes.withUnsafeBytes { (base + Int(gpa)).copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
    }

    /// Zeroes `count` bytes at `gpa`.
    public func zero(gpa: UInt64, count: Int) throws(MemoryError) {
        try checkRange(gpa, count)
        memset(base + Int(gpa), 0, count)
    }
}
