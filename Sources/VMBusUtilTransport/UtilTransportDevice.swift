import VMBusTransport

#if canImport(Glibc)
import Glibc
#endif

/// One of the character devices through which Linux's util drivers hand work to userspace daemons
/// (`/dev/vmbus/hv_kvp`, `hv_vss`, `hv_fcopy`): the guest side of Linux's `hvutil_transport`, behaving as it does.
///
/// One daemon at a time holds it open (a second open is EBUSY). The guest queues at most one message for the
/// daemon; the daemon's `read` takes the whole message (a shorter buffer is EINVAL, as in Linux), and `poll`
/// says POLLIN while one waits. Each `write` is one whole message from the daemon, handed to the message handler (``setHandlers(open:release:message:)``);
/// its errno is the write's. When the daemon closes it, the queued message is dropped and the release handler runs,
/// so the service falls back to answering itself.
///
/// The daemon is a peer we do not trust: its messages are bytes for the link to check, it can never block
/// the guest (``send(_:)`` never waits for it), and a read it leaves blocked ends when it is interrupted.
public final class UtilTransportDevice: @unchecked Sendable {
    public let name: String

    private struct State {
        var isOpen = false
        /// The message waiting for the daemon's read.
        var outgoing: [UInt8]?
        /// The kernel's poll handle to notify when a message arrives (an opaque libfuse pointer).
        var pollHandle: UnsafeMutableRawPointer?
        /// Bumped on every open and release, so that a read blocked across a reopen does not take the next
        /// daemon's message.
        var generation = 0
    }
    private let state = Condition(State())

    /// Connects the device to its driver: `message` takes each of the daemon's messages (returning 0 or a
    /// negative errno, which the write fails with), `open` runs when a daemon opens the device (before its first
    /// write), `release` when it closes it or dies.
    public func setHandlers(open: @escaping @Sendable () -> Void, release: @escaping @Sendable () -> Void,
                            message: @escaping @Sendable ([UInt8]) -> Int32) {
        hooks.withLock { $0 = Hooks(message: message, open: open, release: release) }
    }
    private struct Hooks {
        var message: @Sendable ([UInt8]) -> Int32 = { _ in -EINVAL }
        var open: @Sendable () -> Void = {}
        var release: @Sendable () -> Void = {}
    }
    private let hooks = Condition(Hooks())

    /// What the poll callback is given: a function that wakes the kernel's poller and frees its handle.
    private let notifyPoll: @Sendable (UnsafeMutableRawPointer) -> Void
    private let destroyPollHandle: @Sendable (UnsafeMutableRawPointer) -> Void

    /// The largest message a daemon may write: the largest one of the util protocols (`hv_kvp_msg`) with room
    /// to spare; anything longer is refused before it is copied.
    public static let maximumMessageSize = 16 << 10

    public init(name: String,
                notifyPoll: @escaping @Sendable (UnsafeMutableRawPointer) -> Void = { _ in },
                destroyPollHandle: @escaping @Sendable (UnsafeMutableRawPointer) -> Void = { _ in }) {
        self.name = name
        self.notifyPoll = notifyPoll
        self.destroyPollHandle = destroyPollHandle
    }

    // MARK: The guest's side

    /// Whether a daemon holds the device open.
    public var isOpen: Bool { state.withLock { $0.isOpen } }

    /// Queues `message` for the daemon. Returns 0, -EINVAL when no daemon holds the device, or -EFAULT when the
    /// previous message was not read yet (Linux's answers).
    @discardableResult
    public func send(_ message: [UInt8]) -> Int32 { send(message, waitingNanoseconds: 0) }

    /// As ``send(_:)``, but first waits up to `waitingNanoseconds` for the daemon to read the previous message
    /// (a request right after a registration finds the registration's answer still unread).
    public func send(_ message: [UInt8], waitingNanoseconds: UInt64) -> Int32 {
        let sent: (Int32, UnsafeMutableRawPointer?)? = state.wait(timeoutNanoseconds: waitingNanoseconds) { s in
            guard s.isOpen else { return (-EINVAL, nil) }
            guard s.outgoing == nil else { return nil }
            s.outgoing = message
            defer { s.pollHandle = nil }
            return (0, s.pollHandle)
        }
        // Signal the waiters of `state` (a blocked read) after a change made inside a wait.
        state.update { _ in }
        let (result, handle) = sent ?? (-EFAULT, nil)
        if let handle {
            notifyPoll(handle)
            destroyPollHandle(handle)
        }
        return result
    }

    /// Drops a message the daemon has not read (the transaction it carried timed out).
    public func withdraw() { state.update { $0.outgoing = nil } }

    // MARK: The daemon's side (the FUSE callbacks)

    /// Opens for a daemon: -EBUSY while another holds it.
    public func open() -> Int32 {
        let opened = state.update { s -> Bool in
            guard !s.isOpen else { return false }
            s.isOpen = true
            s.outgoing = nil
            s.generation += 1
            return true
        }
        guard opened else { return -EBUSY }
        hooks.withLock { $0.open }()
        return 0
    }

    /// The daemon closed the device.
    public func release() {
        let handle: UnsafeMutableRawPointer? = state.update { s in
            s.isOpen = false
            s.outgoing = nil
            s.generation += 1
            defer { s.pollHandle = nil }
            return s.pollHandle
        }
        if let handle { destroyPollHandle(handle) }
        hooks.withLock { $0.release }()
    }

    /// Copies the waiting message into `buffer`, waiting for one; returns its length or a negative errno:
    /// -EINVAL when `buffer` is too short for it (the message stays), -EINTR when `interrupted` says so while
    /// waiting, -EBADF when the device was released meanwhile.
    public func read(into buffer: UnsafeMutableRawBufferPointer, interrupted: () -> Bool) -> Int {
        let generation = state.withLock { $0.generation }
        while true {
            let r: Int? = state.wait(timeoutNanoseconds: 50_000_000) { s -> Int? in
                guard s.generation == generation else { return -Int(EBADF) }
                guard let m = s.outgoing else { return nil }
                guard buffer.count >= m.count else { return -Int(EINVAL) }
                m.withUnsafeBytes { buffer.copyMemory(from: $0) }
                s.outgoing = nil
                return m.count
            }
            if let r {
                // A sender may be waiting for the slot this read freed.
                if r > 0 { state.update { _ in } }
                return r
            }
            if interrupted() { return -Int(EINTR) }
        }
    }

    /// One message from the daemon: its length, or the link's negative errno.
    public func write(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard bytes.count <= Self.maximumMessageSize else { return -Int(EINVAL) }
        guard state.withLock({ $0.isOpen }) else { return -Int(EBADF) }
        let r = hooks.withLock { $0.message }(Array(bytes))
        return r == 0 ? bytes.count : Int(r)
    }

    /// POLLIN while a message waits. `handle`, when given, is kept and notified when one arrives (a previous
    /// one is freed).
    public func poll(handle: UnsafeMutableRawPointer?) -> Int16 {
        let (ready, stale): (Bool, UnsafeMutableRawPointer?) = state.withLock { s in
            let ready = s.outgoing != nil
            var stale: UnsafeMutableRawPointer?
            if let handle {
                if ready {
                    stale = handle
                } else {
                    stale = s.pollHandle
                    s.pollHandle = handle
                }
            }
            return (ready, stale)
        }
        if let stale { destroyPollHandle(stale) }
        return ready ? Int16(POLLIN | POLLRDNORM) : 0
    }
}
