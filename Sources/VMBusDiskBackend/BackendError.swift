/// Why a backend could not do an I/O. The SCSI target turns these into sense data; nothing traps.
public enum BackendError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The range lies (partly) past the capacity.
    case outOfRange(offset: UInt64, length: UInt64, capacity: UInt64)
    /// A write, unmap or zeroing on a read-only backend.
    case readOnly
    /// The operation is not supported by this backend (unmap on a filesystem without hole punching).
    case unsupported(String)
    /// The scatter-gather list is shorter than the transfer, or has no room for another segment.
    case bufferTooSmall(needed: Int, available: Int)
    /// A system call failed.
    case io(call: String, errno: Int32)
    /// The backend cannot be opened or created as asked.
    case invalidConfiguration(String)
    /// The storage behind the disk cannot be reached (an NBD server went away); it may come back.
    case disconnected(String)
    /// An image file whose on-disk structure is wrong: which structure, where, and why. Never repaired silently.
    case corrupt(structure: String, offset: UInt64, why: String)

    public var description: String {
        switch self {
        case .outOfRange(let o, let l, let c): return "range \(o)+\(l) lies past the capacity \(c)"
        case .readOnly: return "the disk is read-only"
        case .unsupported(let what): return "not supported: \(what)"
        case .bufferTooSmall(let n, let a): return "buffer of \(a) bytes for a transfer of \(n)"
        case .io(let call, let e): return "\(call) failed: errno \(e)"
        case .invalidConfiguration(let why): return why
        case .disconnected(let what): return "disconnected: \(what)"
        case .corrupt(let structure, let offset, let why): return "corrupt image: \(structure) at offset \(offset): \(why)"
        }
    }
}
