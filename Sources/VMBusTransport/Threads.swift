#if canImport(Glibc)
import Glibc
#endif
import CVMBusShims

/// Starts a named, detached OS thread. The data path runs on such threads (one loop per channel), never on
/// Swift tasks. Throws when the thread cannot be created (`EAGAIN`: out of threads or address space); the
/// caller fails whatever needed the thread (a connection, a channel), never the process.
public func spawnThread(name: String, _ body: @escaping @Sendable () -> Void) throws(TransportError) {
    final class Box: @unchecked Sendable {
        let body: @Sendable () -> Void
        let name: String
        init(_ b: @escaping @Sendable () -> Void, _ n: String) { body = b; name = n }
    }
    let box = Unmanaged.passRetained(Box(body, name))
    var thread = pthread_t()
    let r = pthread_create(&thread, nil, { raw in
        guard let raw else { return nil }
        let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
        vmbus_shim_set_thread_name(box.name)
        box.body()
        return nil
    }, box.toOpaque())
    guard r == 0 else {
        box.release()
        throw .system(call: "pthread_create(\(name))", errno: r)
    }
    pthread_detach(thread)
}

/// ``spawnThread(name:_:)`` for callers that cannot fail: returns false (the body never runs) instead of
/// throwing. Kept so that existing call sites compile; code a peer can reach should use the throwing form.
@discardableResult
public func startThread(name: String, _ body: @escaping @Sendable () -> Void) -> Bool {
    do {
        try spawnThread(name: name, body)
        return true
    } catch {
        return false
    }
}

/// Monotonic time in nanoseconds.
@inline(__always)
public func monotonicNanoseconds() -> UInt64 { vmbus_shim_monotonic_ns() }

/// A one-shot latch a thread can wait on: used to join worker threads at shutdown.
public final class Latch: Sendable {
    private let state = Condition(false)
    public init() {}
    public func open() { state.update { $0 = true } }
    public var isOpen: Bool { state.withLock { $0 } }
    @discardableResult
    public func wait(timeoutNanoseconds: UInt64? = nil) -> Bool {
        state.wait(timeoutNanoseconds: timeoutNanoseconds) { $0 ? true : nil } ?? false
    }
}

/// Sleeps the calling thread.
public func sleepNanoseconds(_ ns: UInt64) {
    var ts = timespec(tv_sec: Int(ns / 1_000_000_000), tv_nsec: Int(ns % 1_000_000_000))
    var rest = timespec()
    while nanosleep(&ts, &rest) != 0 && errno == EINTR { ts = rest }
}
