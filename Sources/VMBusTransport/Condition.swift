#if canImport(Glibc)
import Glibc
#endif
import CVMBusShims

/// A mutex-protected value with a condition variable, for the control plane's blocking waits
/// (a response message, a queue item), and the short critical sections of the send path and the requestor.
///
/// The lock operations are inlinable so that each caller gets them specialised for its value and closure
/// (unspecialised, a generic call with a closure context per lock; Scripts/callgrind-ring), and `value` is
/// not checked for exclusivity at run time: the mutex already makes every access exclusive.
public final class Condition<Value>: @unchecked Sendable {
    @usableFromInline let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    @usableFromInline let cond = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)
    @exclusivity(unchecked) @usableFromInline var value: Value

    public init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
        var attr = pthread_condattr_t()
        pthread_condattr_init(&attr)
        pthread_condattr_setclock(&attr, CLOCK_MONOTONIC)
        pthread_cond_init(cond, &attr)
        pthread_condattr_destroy(&attr)
    }

    deinit {
        pthread_cond_destroy(cond)
        pthread_mutex_destroy(mutex)
        cond.deallocate()
        mutex.deallocate()
    }

    /// Runs `body` under the lock and wakes all waiters afterwards.
    @inlinable @discardableResult
    public func update<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try mutate(body, wakingAll: true)
    }

    /// As ``update(_:)``, but wakes one waiter instead of all: for changes that only one waiter can use (one
    /// item queued), where waking every thread would send all but one straight back to sleep.
    @inlinable @discardableResult
    public func updateWakingOne<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        try mutate(body, wakingAll: false)
    }

    @inlinable
    func mutate<R>(_ body: (inout Value) throws -> R, wakingAll: Bool) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer {
            if wakingAll { pthread_cond_broadcast(cond) } else { pthread_cond_signal(cond) }
            pthread_mutex_unlock(mutex)
        }
        return try body(&value)
    }

    /// Runs `body` under the lock without waking anyone.
    @inlinable
    public func withLock<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }

    /// Waits until `body` returns non-nil (it is re-evaluated under the lock after every update), or until the
    /// timeout passes (returns nil). `body` may mutate the value (e.g. pop from a queue).
    public func wait<R>(timeoutNanoseconds: UInt64? = nil, until body: (inout Value) -> R?) -> R? {
        let deadline = timeoutNanoseconds.map { vmbus_shim_monotonic_ns() &+ $0 }
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while true {
            if let r = body(&value) { return r }
            if let d = deadline {
                let now = vmbus_shim_monotonic_ns()
                if now >= d { return nil }
                var ts = timespec(tv_sec: Int(d / 1_000_000_000), tv_nsec: Int(d % 1_000_000_000))
                pthread_cond_timedwait(cond, mutex, &ts)
            } else {
                pthread_cond_wait(cond, mutex)
            }
        }
    }
}
