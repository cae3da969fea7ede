import CVMBusShims
#if canImport(Glibc)
import Glibc
#endif

/// Checks and settings for descriptors that cross the socket transport.
enum Descriptors {
    /// Whether `fd` is an eventfd (`/proc/self/fd/N` reads `anon_inode:[eventfd]`). The host writes to the
    /// guest's SINT descriptor on every interrupt: anything else (a pipe that fills, a file that grows)
    /// must be refused at HELLO.
    static func isEventFD(_ fd: Int32) -> Bool {
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = buffer.withUnsafeMutableBufferPointer { b in
            b.baseAddress!.withMemoryRebound(to: CChar.self, capacity: b.count) {
                readlink("/proc/self/fd/\(fd)", $0, b.count - 1)
            }
        }
        guard n > 0 else { return false }
        return String(decoding: buffer.prefix(n), as: UTF8.self) == "anon_inode:[eventfd]"
    }

    /// Sets O_NONBLOCK. On a descriptor shared with the peer this changes the peer's view too (the flag
    /// belongs to the open file description): docs/TRANSPORT.md tells guests not to rely on blocking mode.
    @discardableResult
    static func setNonBlocking(_ fd: Int32) -> Bool {
        let flags = fcntl(fd, F_GETFL)
        guard flags >= 0 else { return false }
        return fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0
    }

    /// A new non-blocking, close-on-exec eventfd: a doorbell the peer will also hold. Non-blocking so that
    /// a peer that drives the counter to its maximum can never block our writer (the write fails with
    /// EAGAIN instead, and the counter being non-zero already means a pending wake-up).
    static func nonBlockingEventFD() throws(TransportError) -> EventFD {
        let fd = vmbus_shim_eventfd(0, vmbus_shim_efd_cloexec() | vmbus_shim_efd_nonblock())
        guard fd >= 0 else { throw .system(call: "eventfd", errno: errno) }
        return EventFD(adopting: fd)
    }
}
