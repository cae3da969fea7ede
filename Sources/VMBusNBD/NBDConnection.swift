import CNBD
import Synchronization
import VMBusDiskBackend
import VMBusSync
import VMBusTransport

#if canImport(Glibc)
import Glibc
#endif

/// One libnbd handle with many requests in flight, and the thread that drives it.
///
/// Any thread issues requests with libnbd's aio calls (libnbd locks the handle for each call, and sends the
/// request at once when the socket takes it); the connection's thread polls the socket, tells libnbd when it
/// can read or write, and libnbd completes each request from there. When the server goes away libnbd fails
/// every request in flight (ENOTCONN) as the handle dies; the thread then closes the handle, and the next
/// request reconnects, so the disk comes back with the server.
final class NBDConnection: @unchecked Sendable {
    let uri: String
    /// The handle, nil after the thread closed a dead one; only the thread closes it, under this lock, so a
    /// request never issues on a freed handle.
    private let handle: Lock<OpaquePointer?>
    /// Wakes the thread: a handle was reconnected, a request waits to be sent, or the connection stops.
    private let wake: EventFD
    private let running = Condition<State>(.running)
    /// Counts the dead handles the thread closed, so a request can wait for the one it found.
    private let retired = Condition(0)
    /// The connection's thread (its pthread_t), once it runs.
    private let thread = Atomic<UInt>(0)
    private enum State { case running, stopping, stopped }
    /// Asynchronous requests libnbd completed, for the thread to finish outside libnbd's lock (capacity for
    /// every slot, so that deferring allocates nothing), and the thread's own batch being finished.
    private let completed = Lock<[NBDRequestSlot]>([])
    private var finishing: [NBDRequestSlot] = []

    init(uri: String, handle h: OpaquePointer) throws(BackendError) {
        self.uri = uri
        handle = Lock(h)
        completed.withLock { $0.reserveCapacity(NBDBackend.maxInFlight) }
        finishing.reserveCapacity(NBDBackend.maxInFlight)
        do { wake = try EventFD() } catch { throw .io(call: "eventfd", errno: EMFILE) }
        guard startThread(name: "vmbus-nbd", { [self] in run() }) else {
            throw .io(call: "pthread_create(vmbus-nbd)", errno: EAGAIN)
        }
    }

    /// Opens a handle to `uri`, connected and negotiated.
    static func connect(_ uri: String) throws(BackendError) -> OpaquePointer {
        guard let h = nbd_create() else { throw .io(call: "nbd_create", errno: ENOMEM) }
        // libnbd would zero every read's buffer before sending the request; nothing here reads a failed read's
        // buffer (the bounce is copied out only on success), so that memset per read is skipped.
        _ = nbd_set_pread_initialize(h, false)
        guard nbd_connect_uri(h, uri) == 0 else {
            let why = nbd_get_error().map { String(cString: $0) } ?? "unknown error"
            nbd_close(h)
            throw .disconnected("cannot connect to \(uri): \(why)")
        }
        return h
    }

    /// Issues one request with `body` (an `nbd_aio_*` call returning its cookie, or -1), reconnecting first
    /// when the last handle died. Throws when libnbd did not take the request; otherwise its completion comes.
    func issue(_ body: (OpaquePointer) -> Int64) throws(BackendError) {
        // A dead handle is the thread's to close (it may be polling on it): wake it and give it a moment, so a
        // request right after the server came back reconnects instead of failing on the old handle.
        let dead: OpaquePointer? = handle.withLock { h in
            guard let h, nbd_aio_is_dead(h) == 1 || nbd_aio_is_closed(h) == 1 else { return nil }
            return h
        }
        if let dead {
            signal()
            _ = retired.wait(timeoutNanoseconds: 2_000_000_000) { _ in handle.withLock { $0 == dead } ? nil : () }
        }
        try handle.withLock { (h: inout OpaquePointer?) throws(BackendError) in
            if h == nil {
                h = try Self.connect(uri)
                signal()
            }
            guard let live = h else { throw .disconnected(uri) }
            let cookie = body(live)
            // The request is sent unless the socket was full (then the thread must poll for writing) or the
            // handle died (then the thread must close it): wake it in both cases.
            let stalled = cookie < 0 || nbd_aio_get_direction(live) & UInt32(LIBNBD_AIO_DIRECTION_WRITE) != 0
            if stalled { signal() }
            guard cookie < 0 else { return }
            let why = nbd_get_error().map { String(cString: $0) } ?? "unknown error"
            let e = nbd_get_errno()
            if nbd_aio_is_dead(live) == 1 || nbd_aio_is_closed(live) == 1 { throw .disconnected("\(uri): \(why)") }
            throw .io(call: "nbd (\(why))", errno: e == 0 ? EIO : e)
        }
    }

    private func signal() { wake.signal() }

    /// From libnbd's completion callback: `slot`'s request is done; the thread finishes it. libnbd calls back on
    /// this connection's thread, or on an issuing thread when the handle dies as it sends: wake the thread then.
    func `defer`(_ slot: NBDRequestSlot) {
        completed.withLock { $0.append(slot) }
        if pthread_self() != thread.load(ordering: .relaxed) { signal() }
    }

    /// On the thread, outside libnbd's lock: finishes the requests libnbd completed.
    private func finishCompleted() {
        completed.withLock { swap(&$0, &finishing) }
        for slot in finishing { slot.backend?.finish(slot, errno: slot.pendingErrno) }
        finishing.removeAll(keepingCapacity: true)
    }

    private func run() {
        thread.store(pthread_self(), ordering: .relaxed)
        var fds = [pollfd(fd: wake.fd, events: Int16(POLLIN), revents: 0), pollfd(fd: -1, events: 0, revents: 0)]
        while running.withLock({ $0 == .running }) {
            finishCompleted()
            guard let h = handle.withLock({ $0 }) else {
                // No handle until a request reconnects: sleep on the wake descriptor alone.
                fds[1].fd = -1
                pollOnce(&fds)
                continue
            }
            if nbd_aio_is_dead(h) == 1 || nbd_aio_is_closed(h) == 1 {
                // libnbd has failed every request in flight on it already.
                handle.withLock { current in
                    if current == h { nbd_close(h); current = nil }
                }
                retired.update { $0 += 1 }
                continue
            }
            let direction = nbd_aio_get_direction(h)
            fds[1].fd = nbd_aio_get_fd(h)
            fds[1].events = Int16((direction & UInt32(LIBNBD_AIO_DIRECTION_READ) != 0 ? POLLIN : 0)
                | (direction & UInt32(LIBNBD_AIO_DIRECTION_WRITE) != 0 ? POLLOUT : 0))
            pollOnce(&fds)
            let events = Int32(fds[1].revents)
            guard fds[1].fd >= 0, events != 0 else { continue }
            // Another thread may have moved the state machine while we slept: ask again.
            let now = nbd_aio_get_direction(h)
            if events & (POLLIN | POLLHUP | POLLERR) != 0, now & UInt32(LIBNBD_AIO_DIRECTION_READ) != 0 {
                _ = nbd_aio_notify_read(h)
            } else if events & (POLLOUT | POLLERR) != 0, now & UInt32(LIBNBD_AIO_DIRECTION_WRITE) != 0 {
                _ = nbd_aio_notify_write(h)
            } else if events & (POLLHUP | POLLERR | POLLNVAL) != 0 {
                // The socket failed in a state that reads nothing: end the handle rather than spin on it.
                _ = nbd_shutdown(h, 0)
                _ = nbd_aio_notify_read(h)
            }
        }
        finishCompleted()
        running.update { $0 = .stopped }
    }

    private func pollOnce(_ fds: inout [pollfd]) {
        fds[0].revents = 0
        fds[1].revents = 0
        let n = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, 2, -1) }
        if n > 0, fds[0].revents != 0 { _ = wake.tryConsume() }
    }

    /// Stops the thread and closes the handle. No request may be in flight.
    func stop() {
        running.update { if $0 == .running { $0 = .stopping } }
        signal()
        _ = running.wait { $0 == .stopped ? true : nil }
        handle.withLock { h in
            nbd_close(h)
            h = nil
        }
    }
}
