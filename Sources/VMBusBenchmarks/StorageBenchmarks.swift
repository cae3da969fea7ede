import Atomics
import CVMBusShims
import Logging
import VMBusDiskBackend
import VMBusGuest
import VMBusSCSITarget
import VMBusStorVSC
import VMBusStorVSP
import VMBusTestSupport
import VMBusTransport

#if canImport(Glibc)
import Glibc
#endif

/// StorVSC → VMBus → StorVSP → raw file, in one process and without FUSE, against `pread`/`pwrite` on the same
/// page-cached file with the same number of threads (each thread one request at a time: threads = queue depth).
/// Rounds are interleaved (baseline, stack, baseline, …) and the ratio is the median over rounds.
enum StorageBenchmarks {
    static var sections: [BenchmarkSection] {
        [
            BenchmarkSection(name: "storage-4k-randread", summary: "4 KiB random reads, QD32 (32 threads), page-cached raw file: StorVSC→StorVSP vs pread") { context in
                try run(&context, block: 4096, threads: 32, write: false, random: true, opsPerThread: context.count(4000))
            },
            BenchmarkSection(name: "storage-4k-randread-submit", summary: "4 KiB random reads, QD32 kept by one thread submitting (no thread per request) vs pread with 32 threads") { context in
                try submitted(&context, depth: 32, requests: context.count(200_000))
            },
            BenchmarkSection(name: "storage-1m-seqread", summary: "1 MiB sequential reads, 4 streams: StorVSC→StorVSP vs pread") { context in
                try run(&context, block: 1 << 20, threads: 4, write: false, random: false, opsPerThread: context.count(100))
            },
            BenchmarkSection(name: "storage-1m-seqwrite", summary: "1 MiB sequential writes, 4 streams: StorVSC→StorVSP vs pwrite") { context in
                try run(&context, block: 1 << 20, threads: 4, write: true, random: false, opsPerThread: context.count(100))
            },
        ]
    }

    static let fileSize = 256 << 20

    /// Counts completions of submitted requests and wakes nobody: the submitting thread polls the count.
    final class Completions: StorVSCRequestHandler, @unchecked Sendable {
        let done = ManagedAtomic<Int>(0)
        let failed = ManagedAtomic<Int>(0)
        /// Set while the submitting thread sleeps in ``waitForMore(than:)``.
        private let sleeping = ManagedAtomic<Bool>(false)
        private let wake = Condition(0)
        func requestFinished(tag: UInt64, result: Result<Int, StorVSCError>) {
            if case .failure = result { failed.wrappingIncrement(ordering: .relaxed) }
            done.wrappingIncrement(ordering: .sequentiallyConsistent)
            if sleeping.load(ordering: .sequentiallyConsistent) { wake.updateWakingOne { $0 += 1 } }
        }

        /// Returns once more than `count` requests are done, or at once after one `sched_yield` (the default, the
        /// loop the figures were taken with); with `VMBUS_BENCH_SUBMITTER=sleep`, asleep until a completion wakes
        /// it, as a guest's vCPU with nothing to do halts rather than spins.
        func waitForMore(than count: Int) {
            guard ProcessEnv.sleepingSubmitter else { _ = sched_yield(); return }
            while done.load(ordering: .sequentiallyConsistent) <= count {
                sleeping.store(true, ordering: .sequentiallyConsistent)
                _ = wake.wait(timeoutNanoseconds: 1_000_000) { _ in done.load(ordering: .sequentiallyConsistent) > count ? true : nil }
                sleeping.store(false, ordering: .sequentiallyConsistent)
            }
        }
    }

    /// One thread keeps `depth` reads in flight with ``StorVSCDisk/submitRead(at:into:tag:handler:)``.
    static func submitted(_ context: inout BenchmarkContext, depth: Int, requests: Int) throws {
        let path = try makeFile()
        defer { unlink(path) }
        let stack = try Stack(path: path)
        defer { stack.stop() }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        let blocks = UInt64(fileSize / 4096)
        let buffers = UnsafeMutableRawBufferPointer.allocate(byteCount: depth * 4096, alignment: 4096)
        defer { buffers.deallocate() }
        let disk = stack.disk
        func viaSubmit(_ n: Int) -> (Double, UInt64, Bool) {
            let completions = Completions()
            // Made before the clock and the malloc count start: one object per round, not per request.
            let poller = ProcessEnv.pollCompletions ? stack.controller.beginPolling() : nil
            defer { poller?.end() }
            let mallocs = mallocCount()
            let start = now()
            var sent = 0
            var x: UInt64 = 0x1234_5678
            while completions.done.load(ordering: .acquiring) < n {
                while sent < n && sent - completions.done.load(ordering: .acquiring) < depth {
                    x ^= x << 13; x ^= x >> 7; x ^= x << 17
                    let slot = sent % depth
                    do {
                        try disk.submitRead(at: (x % blocks) * 4096,
                                            into: UnsafeMutableRawBufferPointer(rebasing: buffers[(slot * 4096)..<((slot + 1) * 4096)]),
                                            tag: UInt64(sent), handler: completions)
                    } catch { return (0, 0, false) }
                    sent += 1
                }
                // Reap completions here when polling; yield only when there were none (the host's worker
                // needs the other CPU).
                if (poller?.poll() ?? 0) == 0 { sched_yield() }
            }
            let seconds = Double(now() - start) / 1e9
            return (Double(n) / seconds, mallocCount() - mallocs, completions.failed.load(ordering: .relaxed) == 0)
        }
        let direct: @Sendable (Int, Int, UnsafeMutableRawBufferPointer) -> Bool = { t, i, b in
            var x = UInt64(t) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(i) &* 0xBF58_476D_1CE4_E5B9
            x ^= x >> 31
            return pread(fd, b.baseAddress, b.count, off_t((x % blocks) * 4096)) == b.count
        }
        _ = viaSubmit(requests / 10)
        _ = round(threads: depth, ops: max(1, requests / depth / 10), block: 4096, direct)
        var ratios: [Double] = [], ours: [Double] = [], baseline: [Double] = []
        var mallocs: UInt64 = 0
        var ok = true
        for _ in 0..<5 {
            let (b, _, okB) = round(threads: depth, ops: requests / depth, block: 4096, direct)
            let (s, m, okS) = viaSubmit(requests)
            baseline.append(b); ours.append(s); ratios.append(s / b)
            mallocs += m
            ok = ok && okB && okS
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        context.row("direct", "\(format(median(baseline), 0)) IOPS (pread, \(depth) threads)")
        context.row("stack", "\(format(median(ours), 0)) IOPS (StorVSC→StorVSP, 1 submitting thread, \(depth) in flight, \(stack.controller.channelCount) channels, completions \(ProcessEnv.pollCompletions ? "polled by the submitter" : "on the interrupt thread"))")
        context.row("ratio", "stack/direct median \(format(median(ratios), 3)), spread \(format(ratios.min() ?? 0, 3))…\(format(ratios.max() ?? 0, 3)) over 5 interleaved rounds")
        context.row("mallocs", "\(mallocs) in \(5 * requests) requests: \(format(Double(mallocs) / Double(5 * requests), 4)) per request")
        context.require(ok, "an I/O failed")
        context.require(Double(mallocs) / Double(5 * requests) < 0.01, "\(mallocs) allocations on the storage data path")
    }

    final class Stack: @unchecked Sendable {
        let system: InProcessSystem
        let controller: StorVSCController
        let disk: StorVSCDisk
        /// The stack over the raw file at `path`.
        convenience init(path: String) throws {
            try self.init(backend: try RawFileBackend(path: path))
        }
        init(backend: any BlockBackend) throws {
            system = try InProcessSystem(memoryPages: 65536, logLevel: .critical, sintSpinNanoseconds: ProcessEnv.sintSpin)
            let vsp = StorVSP(kind: .scsi, instanceID: InProcessSystem.instanceID(2), maxSubchannels: 4,
                          maxTransferBytes: ProcessEnv.maxTransfer, ioThreads: ProcessEnv.ioThreads)
            vsp.luns.attach(SCSIDisk(backend: backend, serialNumber: "bench", identifier: 1), at: 0)
            system.host.addDevice(vsp)
            try system.start()
            var configuration = StorVSCController.Configuration()
            configuration.subchannels = ProcessEnv.subchannels
            configuration.queueDepthPerChannel = 32
            configuration.maxTransferBytes = ProcessEnv.maxTransfer
            guard let device = system.guest.devices.first else { throw StorVSCError.controllerGone("no offer") }
            controller = try StorVSCController(device: device, configuration: configuration)
            try controller.start()
            controller.waitForSubchannels()
            guard let d = controller.disk(lun: 0) else { throw StorVSCError.controllerGone("no disk") }
            disk = d
        }
        func stop() { controller.stop(); system.stop() }
    }

    static func makeFile() throws -> String {
        let path = "/tmp/vmbus-bench-\(getpid()).raw"
        let fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw StorVSCError.invalidArgument("cannot create \(path)") }
        defer { close(fd) }
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        for i in 0..<(fileSize >> 20) {
            for j in stride(from: 0, to: chunk.count, by: 64) { chunk[j] = UInt8(truncatingIfNeeded: i &+ j) }
            _ = chunk.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, off_t(i) << 20) }
        }
        return path
    }

    /// One round: `threads` threads each doing `ops` requests; returns (requests per second, mallocs).
    static func round(threads: Int, ops: Int, block: Int, _ body: @escaping @Sendable (_ thread: Int, _ i: Int, _ buffer: UnsafeMutableRawBufferPointer) -> Bool) -> (Double, UInt64, Bool) {
        let ready = ManagedAtomic(0), go = ManagedAtomic(false), done = ManagedAtomic(0), failed = ManagedAtomic(false)
        var workers: [BenchmarkThread] = []
        for t in 0..<threads {
            workers.append(BenchmarkThread(name: "bench-io", cpu: nil) {
                let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: block, alignment: 4096)
                defer { buffer.deallocate() }
                buffer.initializeMemory(as: UInt8.self, repeating: 0xA5)
                ready.wrappingIncrement(ordering: .acquiringAndReleasing)
                var spins = 0
                while !go.load(ordering: .acquiring) { relax(&spins) }
                for i in 0..<ops where !body(t, i, buffer) { failed.store(true, ordering: .relaxed); break }
                done.wrappingIncrement(ordering: .acquiringAndReleasing)
            })
        }
        var spins = 0
        while ready.load(ordering: .acquiring) < threads { relax(&spins) }
        let mallocs = mallocCount()
        let start = now()
        go.store(true, ordering: .releasing)
        while done.load(ordering: .acquiring) < threads { usleep(200) }
        let seconds = Double(now() - start) / 1e9
        let used = mallocCount() - mallocs
        for w in workers { w.join() }
        return (Double(threads * ops) / seconds, used, !failed.load(ordering: .relaxed))
    }

    static func run(_ context: inout BenchmarkContext, block: Int, threads: Int, write: Bool, random: Bool, opsPerThread: Int) throws {
        let path = try makeFile()
        defer { unlink(path) }
        let stack = try Stack(path: path)
        defer { stack.stop() }
        let fd = open(path, O_RDWR)
        defer { close(fd) }
        let blocks = UInt64(fileSize / block)
        let region = blocks / UInt64(threads)
        @Sendable func offset(_ t: Int, _ i: Int) -> UInt64 {
            if random {
                var x = UInt64(t) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(i) &* 0xBF58_476D_1CE4_E5B9
                x ^= x >> 31
                return (x % blocks) * UInt64(block)
            }
            return (UInt64(t) * region + UInt64(i) % region) * UInt64(block)
        }
        let disk = stack.disk
        // Each stack thread's buffer lives in guest memory, so the host moves the data straight into it (no
        // bounce copy), as a guest kernel hands the host a bio's pages; VMBUS_BENCH_BOUNCE=1 uses the caller's
        // own buffer and the bounce pages instead.
        let guestBuffers = try (0..<threads).map { _ in try stack.controller.makeBuffer(byteCount: block) }
        let direct: @Sendable (Int, Int, UnsafeMutableRawBufferPointer) -> Bool = { t, i, b in
            let o = off_t(offset(t, i))
            return (write ? pwrite(fd, b.baseAddress, b.count, o) : pread(fd, b.baseAddress, b.count, o)) == b.count
        }
        let viaStack: @Sendable (Int, Int, UnsafeMutableRawBufferPointer) -> Bool = { t, i, b in
            do throws(StorVSCError) {
                if ProcessEnv.bounce {
                    if write { try disk.write(at: offset(t, i), from: UnsafeRawBufferPointer(b)) }
                    else { try disk.read(at: offset(t, i), into: b) }
                } else {
                    if write { try disk.write(at: offset(t, i), from: guestBuffers[t], count: b.count) }
                    else { try disk.read(at: offset(t, i), into: guestBuffers[t], count: b.count) }
                }
                return true
            } catch { return false }
        }
        // Warm-up: the page cache, the threads' first use, the channels.
        _ = round(threads: threads, ops: max(1, opsPerThread / 10), block: block, direct)
        _ = round(threads: threads, ops: max(1, opsPerThread / 10), block: block, viaStack)
        var baseline: [Double] = [], ours: [Double] = [], ratios: [Double] = []
        var mallocs: UInt64 = 0
        var ok = true
        for _ in 0..<5 {
            let (b, _, okB) = round(threads: threads, ops: opsPerThread, block: block, direct)
            let (s, m, okS) = round(threads: threads, ops: opsPerThread, block: block, viaStack)
            baseline.append(b); ours.append(s); ratios.append(s / b)
            mallocs += m
            ok = ok && okB && okS
        }
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        let unit = block >= 1 << 20 ? "MiB/s" : "IOPS"
        let scale = block >= 1 << 20 ? Double(block) / Double(1 << 20) : 1
        context.row("direct", "\(format(median(baseline) * scale, 0)) \(unit) (\(write ? "pwrite" : "pread"), \(threads) threads)")
        context.row("stack", "\(format(median(ours) * scale, 0)) \(unit) (StorVSC→StorVSP, \(threads) threads, \(stack.controller.channelCount) channels)")
        context.row("ratio", "stack/direct median \(format(median(ratios), 3)), spread \(format(ratios.min() ?? 0, 3))…\(format(ratios.max() ?? 0, 3)) over 5 interleaved rounds")
        let ios = Double(5 * threads * opsPerThread) * Double((block + stack.controller.maxTransferBytes - 1) / stack.controller.maxTransferBytes)
        context.row("mallocs", "\(mallocs) in \(Int(ios)) requests: \(format(Double(mallocs) / ios, 4)) per request")
        context.require(ok, "an I/O failed")
        context.require(Double(mallocs) / ios < 0.01, "\(mallocs) allocations on the storage data path")
    }
}

/// Knobs from the environment, for comparing configurations without rebuilding.
enum ProcessEnv {
    /// `VMBUS_BENCH_IO_THREADS`: StorVSP's I/O threads (0: inline on the channel worker). Default 4.
    static var ioThreads: Int { getenv("VMBUS_BENCH_IO_THREADS").flatMap { Int(String(cString: $0)) } ?? 4 }
    /// `VMBUS_BENCH_MAX_TRANSFER`: bytes per request on both sides. Default 1 MiB (the default of both sides).
    static var maxTransfer: Int { getenv("VMBUS_BENCH_MAX_TRANSFER").flatMap { Int(String(cString: $0)) } ?? (1 << 20) }
    /// `VMBUS_BENCH_SINT_SPIN_NS`: how long the guest's interrupt thread polls before it blocks.
    static var sintSpin: UInt64 {
        getenv("VMBUS_BENCH_SINT_SPIN_NS").flatMap { UInt64(String(cString: $0)) } ?? ChannelWorker.spinNanoseconds
    }
    /// `VMBUS_BENCH_NBD_CONNECTIONS`: connections of the NBD backend. Default 2 (the backend's default).
    static var nbdConnections: Int { getenv("VMBUS_BENCH_NBD_CONNECTIONS").flatMap { Int(String(cString: $0)) } ?? 2 }
    /// `VMBUS_BENCH_SUBMITTER`: `sleep` makes a submitting thread with its queue full sleep until a completion
    /// comes; by default it spins on `sched_yield`.
    static let sleepingSubmitter = getenv("VMBUS_BENCH_SUBMITTER").map { String(cString: $0) == "sleep" } ?? false
    /// `VMBUS_BENCH_POLL`: `0` leaves a submitting thread's completions to the guest's interrupt thread; by
    /// default the submitter polls the completion rings itself (``StorVSCController/beginPolling()``).
    static let pollCompletions = getenv("VMBUS_BENCH_POLL").map { String(cString: $0) != "0" } ?? true
    /// `VMBUS_BENCH_BOUNCE`: `1` makes the storage sections' blocking reads and writes go through the bounce
    /// pages from the caller's own buffer; by default the buffer is in guest memory (no copy on the guest side).
    static let bounce = getenv("VMBUS_BENCH_BOUNCE").map { String(cString: $0) == "1" } ?? false
    /// `VMBUS_BENCH_SUBCHANNELS`: sub-channels StorVSC asks for. Default 1.
    static var subchannels: Int { getenv("VMBUS_BENCH_SUBCHANNELS").flatMap { Int(String(cString: $0)) } ?? 1 }
}
