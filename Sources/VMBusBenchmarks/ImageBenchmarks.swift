import VMBusDiskBackend
import VMBusNBD
import VMBusStorVSC
import VMBusTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Disk images through StorVSC → VMBus → StorVSP, against the field's own tool on the same image: `qemu-img
/// bench` reading our VHDX, and reading the same qemu-nbd export our NBD backend reads. Both sides read the same
/// offsets: qemu-img bench's, which advance by a fixed step modulo the image size (`-S`); an odd multiple of
/// 4 KiB visits every 4 KiB block once per cycle, scattered over the image. Rounds alternate (theirs, ours, …);
/// the ratio is the median over rounds. The allocating-write section compares a new dynamic VHDX with a new raw
/// file through the same stack.
enum ImageBenchmarks {
    static var sections: [BenchmarkSection] {
        [
            BenchmarkSection(name: "image-vhdx-4k-randread", summary: "4 KiB scattered reads, QD32, a dynamic VHDX: StorVSC→StorVSP→VHDXBackend vs qemu-img bench on the same image") { context in
                try vhdxReads(&context, requests: context.count(200_000))
            },
            BenchmarkSection(name: "image-nbd-4k-randread", summary: "4 KiB scattered reads, QD32, one qemu-nbd export (qcow2, Unix socket): StorVSC→StorVSP→NBDBackend vs qemu-img bench through it") { context in
                try nbdReads(&context, requests: context.count(100_000))
            },
            BenchmarkSection(name: "image-vhdx-1m-seqwrite", summary: "1 MiB sequential writes that allocate, 4 streams: a new dynamic VHDX vs a new raw file, same stack") { context in
                try allocatingWrites(&context)
            },
        ]
    }

    static let size = 256 << 20
    static let depth = 32
    /// qemu-img bench's `-S`: an odd number of 4 KiB blocks.
    static let step = 4096 * 40503

    /// The offset of request `k`, as qemu-img bench computes it.
    @inline(__always) static func offset(_ k: Int) -> UInt64 { UInt64(k) &* UInt64(step) % UInt64(size) }

    /// IOPS of `qemu-img bench` reading `image` (nil when qemu-img is missing or fails).
    static func qemuBench(_ image: String, format: String, requests: Int) -> Double? {
        guard let out = toolOutput(["qemu-img", "bench", "-f", format, "-c", "\(requests)", "-d", "\(depth)", "-s", "4096",
                                    "-S", "\(step)", image]),
              let line = out.split(separator: "\n").first(where: { $0.hasPrefix("Run completed in ") }),
              let seconds = Double(line.dropFirst("Run completed in ".count).prefix { $0 != " " }), seconds > 0
        else { return nil }
        return Double(requests) / seconds
    }

    /// IOPS of one thread keeping `depth` reads in flight through `disk`, at qemu-img bench's offsets.
    static func stackReads(_ disk: StorVSCDisk, requests: Int, buffers: UnsafeMutableRawBufferPointer) -> (Double, Bool) {
        let completions = StorageBenchmarks.Completions()
        // As storage-4k-randread-submit: the submitter reaps its completions unless told to sleep or not to poll.
        let poller = ProcessEnv.pollCompletions && !ProcessEnv.sleepingSubmitter ? disk.controller?.beginPolling() : nil
        defer { poller?.end() }
        let start = now()
        var sent = 0
        while completions.done.load(ordering: .acquiring) < requests {
            while sent < requests && sent - completions.done.load(ordering: .acquiring) < depth {
                let slot = sent % depth
                do {
                    try disk.submitRead(at: offset(sent),
                                        into: UnsafeMutableRawBufferPointer(rebasing: buffers[(slot * 4096)..<((slot + 1) * 4096)]),
                                        tag: UInt64(sent), handler: completions)
                } catch { return (0, false) }
                sent += 1
            }
            if (poller?.poll() ?? 0) == 0 { completions.waitForMore(than: sent - depth) }
        }
        let seconds = Double(now() - start) / 1e9
        return (Double(requests) / seconds, completions.failed.load(ordering: .relaxed) == 0)
    }

    /// Alternates qemu-img bench and the stack over the same data; prints the figures and the ratio.
    static func compare(_ context: inout BenchmarkContext, theirs: String, requests: Int, stack: StorageBenchmarks.Stack,
                        qemu: () -> Double?) {
        let buffers = UnsafeMutableRawBufferPointer.allocate(byteCount: depth * 4096, alignment: 4096)
        defer { buffers.deallocate() }
        // Warm-up: the page cache, the channels, qemu's first start.
        _ = qemu()
        _ = stackReads(stack.disk, requests: requests / 10, buffers: buffers)
        var baseline: [Double] = [], ours: [Double] = [], ratios: [Double] = []
        var ok = true
        var allocations: UInt64 = 0, cpuNanoseconds: UInt64 = 0
        for _ in 0..<5 {
            guard let b = qemu() else {
                context.require(false, "qemu-img bench failed")
                return
            }
            let m = mallocCount(), cpu = processCPUNanoseconds()
            let (s, okS) = stackReads(stack.disk, requests: requests, buffers: buffers)
            allocations += mallocCount() - m
            cpuNanoseconds += processCPUNanoseconds() - cpu
            baseline.append(b); ours.append(s); ratios.append(s / b)
            ok = ok && okS
        }
        context.row("qemu", "\(format(median(baseline), 0)) IOPS (\(theirs), QD\(depth))")
        context.row("stack", "\(format(median(ours), 0)) IOPS (StorVSC→StorVSP, 1 submitting thread, QD\(depth), \(stack.controller.channelCount) channels)")
        context.row("ratio", "stack/qemu median \(format(median(ratios), 3)), spread \(format(ratios.min() ?? 0, 3))…\(format(ratios.max() ?? 0, 3)) over 5 interleaved rounds")
        let perRead = Double(allocations) / Double(5 * requests)
        context.row("allocs", "\(format(perRead, 4)) heap allocations per read in the stack's rounds (this process)")
        context.row("cpu", "\(format(Double(cpuNanoseconds) / 1000 / Double(5 * requests), 2)) µs of this process's CPU per read (guest, host and backend threads; the server's not counted)")
        context.require(ok, "an I/O failed")
    }

    static func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }

    /// User and system time of every thread of this process so far.
    static func processCPUNanoseconds() -> UInt64 {
        var usage = rusage()
        guard getrusage(RUSAGE_SELF.rawValue, &usage) == 0 else { return 0 }
        func ns(_ t: timeval) -> UInt64 { UInt64(t.tv_sec) * 1_000_000_000 + UInt64(t.tv_usec) * 1000 }
        return ns(usage.ru_utime) + ns(usage.ru_stime)
    }

    /// A dynamic VHDX of `size` bytes, every block written (1 MiB at a time) by our backend.
    static func makeVHDX(_ path: String) throws {
        unlink(path)
        try VHDXBackend.create(path: path, size: UInt64(size))
        let d = try VHDXBackend(path: path)
        let chunk = UnsafeMutableRawBufferPointer.allocate(byteCount: 1 << 20, alignment: 4096)
        defer { chunk.deallocate() }
        let v = IOVector(capacity: 1)
        try v.append(chunk)
        for i in 0..<(size >> 20) {
            for j in stride(from: 0, to: chunk.count, by: 64) { chunk[j] = UInt8(truncatingIfNeeded: i &+ j) }
            try d.write(at: UInt64(i) << 20, length: chunk.count, from: v, fua: false)
        }
        try d.closeCleanly()
    }

    static func vhdxReads(_ context: inout BenchmarkContext, requests: Int) throws {
        guard toolInstalled("qemu-img") else {
            context.row("skipped", "qemu-img is not installed (Debian: qemu-utils)")
            return
        }
        let path = "/tmp/vmbus-bench-\(getpid()).vhdx"
        try makeVHDX(path)
        defer { unlink(path) }
        // Read-only on both sides, so that qemu may open the image while our backend has it open.
        let stack = try StorageBenchmarks.Stack(backend: try VHDXBackend(path: path, readOnly: true))
        defer { stack.stop() }
        compare(&context, theirs: "qemu-img bench -f vhdx, the same file", requests: requests, stack: stack) {
            qemuBench(path, format: "vhdx", requests: requests)
        }
    }

    static func nbdReads(_ context: inout BenchmarkContext, requests: Int) throws {
        guard toolInstalled("qemu-img"), toolInstalled("qemu-nbd") else {
            context.row("skipped", "qemu-img or qemu-nbd is not installed (Debian: qemu-utils)")
            return
        }
        let raw = try StorageBenchmarks.makeFile()
        defer { unlink(raw) }
        let image = "/tmp/vmbus-bench-\(getpid()).qcow2", socket = "/tmp/vmbus-bench-\(getpid()).nbd"
        defer { unlink(image); unlink(socket) }
        guard runTool(["qemu-img", "convert", "-f", "raw", "-O", "qcow2", raw, image]) == 0 else {
            context.require(false, "qemu-img convert failed")
            return
        }
        // Shared (-e) by our connections and qemu-img bench's, persistent (-t) across qemu-img bench's runs.
        guard let server = ToolServer(["qemu-nbd", "-f", "qcow2", "-k", socket, "-x", "disk", "-e", "16", "-t", image], socket: socket) else {
            context.require(false, "qemu-nbd did not start")
            return
        }
        defer { server.stop() }
        let uri = "nbd+unix:///disk?socket=\(socket)"
        let stack = try StorageBenchmarks.Stack(backend: try NBDBackend(uri: uri, connections: ProcessEnv.nbdConnections))
        defer { stack.stop() }
        compare(&context, theirs: "qemu-img bench through the same qemu-nbd", requests: requests, stack: stack) {
            qemuBench(uri, format: "raw", requests: requests)
        }
    }

    static func allocatingWrites(_ context: inout BenchmarkContext) throws {
        let threads = 4
        let perThread = size >> 20 / threads
        let raw = "/tmp/vmbus-bench-\(getpid())-alloc.raw", vhdx = "/tmp/vmbus-bench-\(getpid())-alloc.vhdx"
        defer { unlink(raw); unlink(vhdx) }
        /// MiB/s of 1 MiB sequential writes covering a new `backend` once, 4 streams, then the guest's flush
        /// (counted in the time: a VHDX logs its allocations there).
        func writeAll(_ backend: any BlockBackend) throws -> (Double, Bool) {
            let stack = try StorageBenchmarks.Stack(backend: backend)
            defer { stack.stop() }
            let disk = stack.disk
            let (rate, _, ok) = StorageBenchmarks.round(threads: threads, ops: perThread, block: 1 << 20) { t, i, b in
                do throws(StorVSCError) {
                    try disk.write(at: UInt64(t * perThread + i) << 20, from: UnsafeRawBufferPointer(b))
                    return true
                } catch { return false }
            }
            let start = now()
            var flushed = true
            do throws(StorVSCError) { try disk.flush() } catch { flushed = false }
            let seconds = Double(size >> 20) / rate + Double(now() - start) / 1e9
            return (Double(size >> 20) / seconds, ok && flushed)
        }
        func newRaw() throws -> any BlockBackend {
            unlink(raw)
            let fd = open(raw, O_RDWR | O_CREAT | O_TRUNC, 0o600)
            guard fd >= 0, ftruncate(fd, off_t(size)) == 0 else { throw BackendError.io(call: "ftruncate", errno: errno) }
            close(fd)
            return try RawFileBackend(path: raw)
        }
        func newVHDX() throws -> any BlockBackend {
            unlink(vhdx)
            try VHDXBackend.create(path: vhdx, size: UInt64(size))
            return try VHDXBackend(path: vhdx)
        }
        _ = try writeAll(try newRaw())
        _ = try writeAll(try newVHDX())
        var baseline: [Double] = [], ours: [Double] = [], ratios: [Double] = []
        var ok = true
        for _ in 0..<5 {
            let (b, okB) = try writeAll(try newRaw())
            let (s, okS) = try writeAll(try newVHDX())
            baseline.append(b); ours.append(s); ratios.append(s / b)
            ok = ok && okB && okS
        }
        context.row("raw", "\(format(median(baseline), 0)) MiB/s (a new sparse raw file, \(threads) streams, then a flush)")
        context.row("vhdx", "\(format(median(ours), 0)) MiB/s (a new dynamic VHDX, 32 MiB blocks: allocations logged at the flush)")
        context.row("ratio", "vhdx/raw median \(format(median(ratios), 3)), spread \(format(ratios.min() ?? 0, 3))…\(format(ratios.max() ?? 0, 3)) over 5 interleaved rounds")
        context.require(ok, "an I/O failed")
    }
}
