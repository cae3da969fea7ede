import VMBusTransport

/// The async face of ``StorVSCDisk``. The blocking core waits on a request slot; these run it on a small pool
/// of I/O threads so that no task of the cooperative pool blocks, and resume the caller when it is done.
extension StorVSCDisk {
    public func read(at offset: UInt64, count: Int) async throws(StorVSCError) -> [UInt8] {
        try await StorVSCIOThreads.shared.run { () throws(StorVSCError) -> [UInt8] in
            var out = [UInt8](repeating: 0, count: count)
            let r: Result<Void, StorVSCError> = out.withUnsafeMutableBytes { b in
                do throws(StorVSCError) { try self.read(at: offset, into: b); return .success(()) } catch { return .failure(error) }
            }
            try r.get()
            return out
        }
    }

    public func write(at offset: UInt64, _ bytes: [UInt8], fua: Bool = false) async throws(StorVSCError) {
        try await StorVSCIOThreads.shared.run { () throws(StorVSCError) in
            let r: Result<Void, StorVSCError> = bytes.withUnsafeBytes { b in
                do throws(StorVSCError) { try self.write(at: offset, from: b, fua: fua); return .success(()) } catch { return .failure(error) }
            }
            try r.get()
        }
    }

    public func flush() async throws(StorVSCError) {
        try await StorVSCIOThreads.shared.run { () throws(StorVSCError) in try self.flush() }
    }

    public func unmap(at offset: UInt64, length: UInt64) async throws(StorVSCError) {
        try await StorVSCIOThreads.shared.run { () throws(StorVSCError) in try self.unmap(at: offset, length: length) }
    }
}

/// Threads that run blocking disk calls for async callers. A fixed number, started on first use: a caller
/// cannot make it grow.
final class StorVSCIOThreads: Sendable {
    static let shared = StorVSCIOThreads(threads: 16)
    private let queue = BlockingQueue<@Sendable () -> Void>(capacity: 4096)

    init(threads: Int) {
        for _ in 0..<threads {
            _ = startThread(name: "storvsc-async") { [queue] in
                while let job = queue.pop() { job() }
            }
        }
    }

    func run<T: Sendable>(_ body: @escaping @Sendable () throws(StorVSCError) -> T) async throws(StorVSCError) -> T {
        let r: Result<T, StorVSCError> = await withCheckedContinuation { (c: CheckedContinuation<Result<T, StorVSCError>, Never>) in
            let accepted = queue.push {
                do throws(StorVSCError) { c.resume(returning: .success(try body())) }
                catch { c.resume(returning: .failure(error)) }
            }
            if !accepted { c.resume(returning: .failure(.invalidArgument("too many async disk requests waiting"))) }
        }
        return try r.get()
    }
}
