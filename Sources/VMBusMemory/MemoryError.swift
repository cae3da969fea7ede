/// Why an access to guest memory was refused.
public enum MemoryError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The page number lies outside guest memory.
    case pageOutOfRange(pfn: UInt64, pageCount: Int)
    /// The byte range `[gpa, gpa+count)` does not fit in guest memory.
    case rangeOutOfBounds(gpa: UInt64, count: Int, size: Int)
    /// Not enough free pages to satisfy an allocation.
    case outOfMemory(requestedPages: Int, freePages: Int)
    /// A GPA range list is malformed (bad offset, zero length, wrong page count).
    case invalidRange(String)
    /// A peer's memory fd is not a memfd sealed against shrinking.
    case unsealed
    /// The page is reserved for the hypervisor side (the SynIC event-flags page).
    case reservedPage(pfn: UInt64)
    /// A system call failed.
    case system(call: String, errno: Int32)

    public var description: String {
        switch self {
        case .pageOutOfRange(let pfn, let n): return "page 0x\(String(pfn, radix: 16)) is outside guest memory (\(n) pages)"
        case .rangeOutOfBounds(let gpa, let c, let s):
            return "range of \(c) bytes at GPA 0x\(String(gpa, radix: 16)) is outside guest memory (\(s) bytes)"
        case .outOfMemory(let r, let f): return "out of guest memory: \(r) pages requested, \(f) free"
        case .invalidRange(let why): return "invalid GPA range: \(why)"
        case .unsealed: return "guest memory must be a memfd sealed against shrinking (F_SEAL_SHRINK)"
        case .reservedPage(let pfn): return "page 0x\(String(pfn, radix: 16)) is reserved (SynIC event flags)"
        case .system(let call, let e): return "\(call) failed: errno \(e)"
        }
    }
}
