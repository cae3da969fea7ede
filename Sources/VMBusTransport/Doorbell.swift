import Atomics
import CVMBusShims
#if canImport(Glibc)
import Glibc
#endif

/// A signal that may cross a trust boundary: HvSignalEvent guest→host and the SINT interrupt host→guest
/// (docs/TRANSPORT.md §6). An `AF_UNIX` `SOCK_STREAM` socketpair: the waiter keeps both ends, the signaller
/// gets (a copy of) the sending end.
///
/// Why a socket and not an eventfd: `O_NONBLOCK` belongs to the open file description, which a peer holding
/// the descriptor shares, and an eventfd write cannot be made non-blocking per call. Socket calls can:
/// every send here uses `MSG_DONTWAIT | MSG_NOSIGNAL`, every receive `MSG_DONTWAIT`, after `poll`. Whatever
/// the peer does to the descriptor (clears `O_NONBLOCK`, floods it, stops reading, shuts it down), no call
/// of ours blocks on it.
///
/// - A full queue (`EAGAIN`) means a wake-up is already pending: the signal is dropped.
/// - The waiter holds the sending end too, so it can wake itself (stop) and never reads end-of-stream
///   because the peer closed its copy. Should it see end-of-stream or an error anyway (the peer called
///   `shutdown` on the shared socket), the peer can no longer signal: the doorbell is marked dead and every
///   wait becomes a timed sleep of at most ``deadWaitNanoseconds``, never a busy loop.
/// - One wake drains at most ``drainBytesPerWake`` bytes, so a flooded socket cannot hold the waiter.
public final class Doorbell: @unchecked Sendable {
    /// The end the waiter polls and reads; -1 on a doorbell this side only rings (one a peer handed over).
    public let receiveFD: Int32
    /// The end signals are sent on.
    public let sendFD: Int32
    private let buffer: UnsafeMutableRawPointer
    private let dead = ManagedAtomic<Bool>(false)
    /// Waits that found a signal (tests use it to prove a waiter does not spin).
    public let wakeups = ManagedAtomic<UInt64>(0)
    /// Signals dropped because one was already pending (the peer's queue was full).
    public let coalescedSignals = ManagedAtomic<UInt64>(0)

    /// How long a wait on a dead doorbell sleeps when its caller gave no shorter timeout.
    public static let deadWaitNanoseconds: UInt64 = 100_000_000
    static let drainChunk = 512
    static let drainRounds: Int32 = 8
    /// Bytes read from a flooded socket per wake.
    public static let drainBytesPerWake = drainChunk * Int(drainRounds)

    /// A new doorbell (both ends). Throws when the process is out of descriptors.
    public init() throws(TransportError) {
        var fds: [Int32] = [-1, -1]
        guard vmbus_shim_signal_socketpair(&fds) == 0 else { throw .system(call: "socketpair", errno: errno) }
        receiveFD = fds[0]
        sendFD = fds[1]
        buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.drainChunk, alignment: 8)
    }

    /// Takes a sending end the peer handed over (ownership taken, also on failure). Refuses anything that is
    /// not an `AF_UNIX` `SOCK_STREAM` socket.
    public init(adoptingSendEnd fd: Int32) throws(TransportError) {
        guard Self.isSignalSocket(fd) else {
            close(fd)
            throw .protocolViolation("descriptor \(fd) is not an AF_UNIX SOCK_STREAM socket")
        }
        receiveFD = -1
        sendFD = fd
        buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.drainChunk, alignment: 8)
    }

    private init(unavailable: Void) {
        receiveFD = -1
        sendFD = -1
        buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.drainChunk, alignment: 8)
        dead.store(true, ordering: .relaxed)
    }

    /// A doorbell nobody can ring: waits are timed sleeps. For a channel whose doorbell could not be made
    /// (out of descriptors) when the caller cannot fail: its worker then polls.
    public static func unavailable() -> Doorbell { Doorbell(unavailable: ()) }

    deinit {
        if receiveFD >= 0 { close(receiveFD) }
        if sendFD >= 0 { close(sendFD) }
        buffer.deallocate()
    }

    /// Whether `fd` is what a signal descriptor must be: an `AF_UNIX` `SOCK_STREAM` socket (SO_DOMAIN,
    /// SO_TYPE). Anything else (a pipe, an eventfd, a datagram socket, a file) is refused at hand-over.
    public static func isSignalSocket(_ fd: Int32) -> Bool {
        var domain: Int32 = 0, type: Int32 = 0
        guard fd >= 0, vmbus_shim_socket_kind(fd, &domain, &type) == 0 else { return false }
        return domain == vmbus_shim_af_unix() && type == vmbus_shim_sock_stream()
    }

    /// Whether the peer can no longer signal (end-of-stream or an error on the receiving end), or the
    /// doorbell never worked.
    public var isDead: Bool { dead.load(ordering: .relaxed) }

    /// The descriptor to poll for signals: -1 (ignored by `poll`) once the doorbell is dead.
    public var pollFD: Int32 { isDead ? -1 : receiveFD }

    /// Rings the doorbell. Never blocks: a full queue means a wake-up is pending; a broken socket means the
    /// waiter is gone or cannot read, and ringing louder would not help.
    public func signal() {
        guard sendFD >= 0 else { return }
        if vmbus_shim_signal_send(sendFD) == 0 { coalescedSignals.wrappingIncrement(ordering: .relaxed) }
    }

    /// Waits until signalled or until `timeoutNanoseconds` passes (nil: forever, or ``deadWaitNanoseconds``
    /// on a dead doorbell). Consumes pending signals (at most ``drainBytesPerWake``). False on timeout.
    @discardableResult
    public func wait(timeoutNanoseconds: UInt64? = nil) -> Bool {
        guard !isDead, receiveFD >= 0 else {
            sleepNanoseconds(min(timeoutNanoseconds ?? Self.deadWaitNanoseconds, Self.deadWaitNanoseconds))
            return false
        }
        var p = pollfd(fd: receiveFD, events: Int16(POLLIN), revents: 0)
        let ms: Int32 = timeoutNanoseconds.map { Int32(min(UInt64(Int32.max), ($0 + 999_999) / 1_000_000)) } ?? -1
        var r: Int32
        repeat { r = poll(&p, 1, ms) } while r < 0 && errno == EINTR
        guard r > 0 else { return false }
        return consume()
    }

    /// Consumes pending signals without waiting; returns whether any were pending.
    public func tryConsume() -> Bool {
        guard !isDead, receiveFD >= 0 else { return false }
        return consume()
    }

    /// Reads what is queued (bounded), without blocking. A read of end-of-stream or an error marks the
    /// doorbell dead.
    func consume() -> Bool {
        let r = vmbus_shim_signal_drain(receiveFD, buffer, Self.drainChunk, Self.drainRounds)
        if r > 0 {
            wakeups.wrappingIncrement(ordering: .relaxed)
            return true
        }
        if r < 0 { dead.store(true, ordering: .relaxed) }
        return false
    }
}
