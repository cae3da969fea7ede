#if canImport(Glibc)
import Glibc
#endif

/// A value guarded by a `pthread_mutex_t`: the lock of every module in this package.
///
/// Why not the standard library's `Synchronization.Mutex`: it is a futex-based lock that ThreadSanitizer
/// does not see (TSan intercepts the pthread calls), so every critical section built on it was reported as a
/// data race and real races would have hidden among them. A pthread mutex costs the same uncontended (one
/// atomic exchange in and out), does not allocate after init, and lets both sanitizers check this code.
///
/// The API mirrors `Mutex.withLock`, so call sites read the same. `value` is not checked for exclusivity at
/// run time (as in ``Condition``): the mutex already makes every access exclusive, and the check costs a
/// thread-local lookup per critical section on the data path.
public final class Lock<Value>: @unchecked Sendable {
    @usableFromInline let mutex: UnsafeMutablePointer<pthread_mutex_t>
    @exclusivity(unchecked) @usableFromInline var value: Value

    public init(_ value: Value) {
        self.value = value
        mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deinitialize(count: 1)
        mutex.deallocate()
    }

    /// Runs `body` with exclusive access to the value.
    @inlinable
    public func withLock<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }

    /// Runs `body` if the lock is free now; returns nil without waiting otherwise.
    @inlinable
    public func withLockIfAvailable<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R? {
        guard pthread_mutex_trylock(mutex) == 0 else { return nil }
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}
