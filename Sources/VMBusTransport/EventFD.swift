import CVMBusShims
#if canImport(Glibc)
import Glibc
#endif

/// A Linux eventfd, for wake-ups within one process only (benchmarks, tests). Never hand one to a peer:
/// its writes cannot be made non-blocking per call, so a peer sharing it could block us; signals that
/// cross a trust boundary use ``Doorbell`` (docs/TRANSPORT.md §6.0).
public final class EventFD: @unchecked Sendable {
    public let fd: Int32
    private let owned: Bool

    /// Creates a new eventfd (close-on-exec, blocking, counter mode).
    public init() throws(TransportError) {
        let fd = vmbus_shim_eventfd(0, vmbus_shim_efd_cloexec())
        guard fd >= 0 else { throw .system(call: "eventfd", errno: errno) }
        self.fd = fd
        self.owned = true
    }

    /// Wraps an eventfd received from a peer; takes ownership.
    public init(adopting fd: Int32) {
        self.fd = fd
        self.owned = true
    }

    deinit { if owned { close(fd) } }

    /// Adds one to the counter and wakes a waiter. Never blocks in practice (the counter would need 2^64-2 signals).
    public func signal() {
        var one: UInt64 = 1
        while true {
            let r = write(fd, &one, 8)
            if r == 8 || (r < 0 && errno != EINTR) { return }
        }
    }

    /// Blocks until signalled or until `timeoutNanoseconds` passes (nil: forever). Consumes the counter.
    /// Returns false on timeout.
    @discardableResult
    public func wait(timeoutNanoseconds: UInt64? = nil) -> Bool {
        if let t = timeoutNanoseconds {
            var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ms = Int32(min(UInt64(Int32.max), (t + 999_999) / 1_000_000))
            var r: Int32
            repeat { r = poll(&p, 1, ms) } while r < 0 && errno == EINTR
            if r <= 0 { return false }
        }
        var value: UInt64 = 0
        while true {
            let r = read(fd, &value, 8)
            if r == 8 { return true }
            if r < 0 && errno == EINTR { continue }
            return false
        }
    }

    /// Consumes a pending signal without blocking; returns whether one was pending.
    public func tryConsume() -> Bool {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&p, 1, 0) == 1 else { return false }
        return wait(timeoutNanoseconds: 0)
    }
}
