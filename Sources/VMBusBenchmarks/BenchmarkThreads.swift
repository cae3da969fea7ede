import CVMBusShims

#if canImport(Glibc)
import Glibc
#endif

/// A POSIX thread running one closure, optionally pinned to a CPU. Creating it allocates; do that before the
/// measured loop starts.
struct BenchmarkThread {
    private let thread: pthread_t

    private final class Box {
        let body: @Sendable () -> Void
        let cpu: Int?
        let name: String
        init(_ body: @escaping @Sendable () -> Void, cpu: Int?, name: String) {
            self.body = body; self.cpu = cpu; self.name = name
        }
    }

    init(name: String, cpu: Int?, _ body: @escaping @Sendable () -> Void) {
        var t = pthread_t()
        let box = Unmanaged.passRetained(Box(body, cpu: cpu, name: name)).toOpaque()
        let rc = pthread_create(&t, nil, { arg in
            let box = Unmanaged<Box>.fromOpaque(arg!).takeRetainedValue()
            vmbus_shim_set_thread_name(box.name)
            if let cpu = box.cpu { _ = vmbus_shim_pin_to_cpu(Int32(cpu)) }
            box.body()
            return nil
        }, box)
        precondition(rc == 0, "pthread_create failed: \(rc)")
        thread = t
    }

    func join() { pthread_join(thread, nil) }
}

/// Spin briefly, then yield: waits between the benchmark's threads.
@inline(__always)
func relax(_ spins: inout Int) {
    spins += 1
    if spins >= 256 { spins = 0; sched_yield() }
}
