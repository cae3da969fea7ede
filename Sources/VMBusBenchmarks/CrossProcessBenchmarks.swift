import Atomics
import CVMBusShims
import VMBusMemory
import VMBusProtocol
import VMBusRing
import VMBusTransport

#if canImport(Glibc)
import Glibc
#endif

/// Ring traffic between two processes that share guest memory (a memfd) and signal with eventfds, as the
/// socket transport's host and guest do, measured next to the very same loops between two threads of one
/// process and a memcpy baseline, all in the same run.
///
/// Memory: ring A (parent → peer) in pages [0, ringPages), ring B (peer → parent) in [ringPages, 2·ringPages).
/// The peer is this executable started again with `--peer ROLE` and the memfd and two eventfds on fds 3, 4, 5.
enum CrossProcessBenchmarks {
    static let ringDataBytes = 4 << 20
    static var ringPages: Int { ringDataBytes / 4096 + 1 }
    static let memfdFD: Int32 = 3
    static let toPeerFD: Int32 = 4
    static let toParentFD: Int32 = 5

    /// The sink peer's first packet on ring B: it is mapped and reading.
    static let readyTransactionID = UInt64.max - 1

    enum Role: String { case sink, echoPolled = "echo-polled", echoEvent = "echo-event", echoBlock = "echo-block" }

    /// Signalled roles: spin-then-block, or block at once (shows the bare eventfd wake-up cost).
    static func spin(_ role: Role) -> UInt64 { role == .echoBlock ? 0 : ChannelWorker.spinNanoseconds }
    static func signalled(_ role: Role) -> Bool { role == .echoEvent || role == .echoBlock }

    static var sections: [BenchmarkSection] {
        [64, 1500, 64 << 10].map { size in
            BenchmarkSection(
                name: "xproc-\(size == 64 << 10 ? "64KiB" : "\(size)B")",
                summary: "\(size)-byte packets through a 4 MiB ring: two processes vs two threads vs memcpy"
                    + (size == 64 << 10 ? " (goal: cross-process >= 80% of in-process)" : "")
            ) { context in
                let count = context.count(size >= 1024 ? max(50_000, (20 << 30) / size / 4) : 10_000_000)
                try throughput(&context, payload: size, packets: count)
            }
        } + [
            BenchmarkSection(name: "xproc-pingpong", summary: "64-byte round trips: polled, eventfd spin-then-block, eventfd block at once; two processes vs two threads (goal: polled p50 < 2 us)") { context in
                try pingPong(&context, iterations: context.count(200_000))
            },
        ]
    }

    // MARK: - Set-up

    final class Shared: @unchecked Sendable {
        let memory: GuestMemory
        let a: RingMemory
        let b: RingMemory
        let toPeer: EventFD
        let toParent: EventFD
        init(memory: GuestMemory, toPeer: EventFD, toParent: EventFD, initialize: Bool) throws {
            self.memory = memory
            a = try RingMemory(contiguous: memory.base, totalSize: CrossProcessBenchmarks.ringPages * 4096, owner: memory)
            b = try RingMemory(contiguous: memory.base + CrossProcessBenchmarks.ringPages * 4096,
                               totalSize: CrossProcessBenchmarks.ringPages * 4096, owner: memory)
            if initialize {
                OutgoingRing.initializeControl(a)
                OutgoingRing.initializeControl(b)
            }
            self.toPeer = toPeer
            self.toParent = toParent
        }
        static func create() throws -> Shared {
            try Shared(memory: GuestMemory(pages: 2 * CrossProcessBenchmarks.ringPages), toPeer: EventFD(),
                       toParent: EventFD(), initialize: true)
        }
    }

    /// Starts the peer as a child process (cross-process) or as a thread (in-process).
    static func startPeer(_ role: Role, payload: Int, count: Int, shared: Shared, process: Bool, pin: Bool) throws -> () -> Void {
        guard process else {
            let t = BenchmarkThread(name: "bench-peer", cpu: pin ? 1 : nil) {
                runPeer(role, payload: payload, count: count, shared: shared, pin: false)
            }
            return { t.join() }
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        // dup2 clears close-on-exec on the target descriptors, so exactly these three are inherited.
        posix_spawn_file_actions_adddup2(&actions, shared.memory.fd, memfdFD)
        posix_spawn_file_actions_adddup2(&actions, shared.toPeer.fd, toPeerFD)
        posix_spawn_file_actions_adddup2(&actions, shared.toParent.fd, toParentFD)
        let exe = "/proc/self/exe"
        let args = [exe, "--peer", role.rawValue, "--payload", "\(payload)", "--count", "\(count)", pin ? "--pin" : "--no-pin"]
        var cargs = args.map { strdup($0) } + [nil]
        defer { for a in cargs { free(a) } }
        var pid: pid_t = 0
        let rc = posix_spawn(&pid, exe, &actions, nil, &cargs, environ)
        guard rc == 0 else { throw TransportError.system(call: "posix_spawn", errno: rc) }
        return {
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }

    /// Entry point of the peer process: `vmbus-bench --peer ROLE --payload N --count N`.
    static func peerMain(_ arguments: [String]) -> Never {
        func value(_ flag: String) -> Int { arguments.firstIndex(of: flag).flatMap { Int(arguments[$0 + 1]) } ?? 0 }
        guard let i = arguments.firstIndex(of: "--peer"), let role = Role(rawValue: arguments[i + 1]) else { exit(2) }
        var st = stat()
        guard fstat(memfdFD, &st) == 0, let memory = try? GuestMemory(mapping: memfdFD, size: Int(st.st_size)),
              let shared = try? Shared(memory: memory, toPeer: EventFD(adopting: toPeerFD),
                                       toParent: EventFD(adopting: toParentFD), initialize: false) else {
            print("peer: cannot map the shared memory")
            exit(1)
        }
        runPeer(role, payload: value("--payload"), count: value("--count"), shared: shared,
                pin: arguments.contains("--pin"))
        exit(0)
    }

    /// The peer's loop: drain ring A (sink, then one acknowledgement on B) or echo every packet of A onto B.
    static func runPeer(_ role: Role, payload: Int, count: Int, shared: Shared, pin: Bool) {
        if pin { _ = vmbus_shim_pin_to_cpu(1) }
        let reader = IncomingRing(memory: shared.a)
        let writer = OutgoingRing(memory: shared.b)
        let buffer = PacketBuffer(capacity: 16 + payload + 8)
        var received = 0
        var spins = 0
        do {
            if role == .sink {
                // "Ready": the writer starts its clock only now, so a process's start-up (exec, the Swift runtime
                // loading) is not charged to the ring.
                var ready = try writer.beginWrite()
                try writer.append(&ready, type: .dataInband, flags: 0, transactionID: readyTransactionID,
                                  payload: UnsafeRawBufferPointer(start: nil, count: 0))
                _ = writer.commit(ready)
            }
            while received < count {
                if signalled(role) { waitForData(reader, shared.toPeer, spin: spin(role)) }
                var batch = try reader.beginRead()
                var echoes: OutgoingBatch? = role == .sink ? nil : try writer.beginWrite()
                while let p = try reader.next(&batch, into: buffer) {
                    received += 1
                    if role != .sink {
                        try buffer.withUnsafeBytes(of: p) { (raw: UnsafeRawBufferPointer) throws(RingError) in
                            try writer.append(&echoes!, type: .dataInband, flags: 0, transactionID: p.descriptor.transactionID,
                                              payload: UnsafeRawBufferPointer(rebasing: raw[p.payloadRange]))
                        }
                    }
                    if role == .sink && batch.packetCount >= 64 { break }
                }
                if batch.isEmpty { relax(&spins); continue }
                _ = reader.commit(batch)
                if role != .sink, writer.commit(echoes!), signalled(role) { shared.toParent.signal() }
            }
            if role == .sink {
                var ack = try writer.beginWrite()
                try writer.append(&ack, type: .dataInband, flags: 0, transactionID: UInt64.max, payload: UnsafeRawBufferPointer(start: nil, count: 0))
                _ = writer.commit(ack)
            }
        } catch {
            print("peer: \(error)")
        }
    }

    /// Spin-then-block wait for data on `ring`: poll with doorbells suppressed for a while, then unmask,
    /// re-check and sleep on the eventfd (ChannelWorker's policy).
    @inline(__always)
    static func waitForData(_ ring: IncomingRing, _ doorbell: EventFD, spin: UInt64) {
        if (try? ring.isEmpty()) == false { return }
        ring.maskInterrupts()
        let until = now() &+ spin
        while now() < until {
            if (try? ring.isEmpty()) == false { return }
        }
        while !ring.unmaskInterrupts() {
            doorbell.wait()
            if (try? ring.isEmpty()) == false { return }
        }
    }

    // MARK: - Throughput

    static func throughput(_ context: inout BenchmarkContext, payload: Int, packets: Int) throws {
        let source = RingBenchmarks.PayloadSource(count: payload)
        var results: [(String, Double)] = []
        for process in [false, true] {
            let rate = try packetRate(payload: payload, packets: packets, process: process, pin: context.pin, source: source)
            results.append((process ? "2 processes" : "2 threads", rate))
        }
        let copyNs = memcpyNanosecondsPerCopy(size: payload, count: min(packets, 2_000_000), window: ringDataBytes)
        for (label, pps) in results {
            context.row(label, "\(format(pps / 1e6, 3)) M packets/s   \(format(pps * Double(payload) / 1e9)) GB/s")
        }
        context.row("memcpy", "\(format(1e3 / copyNs, 3)) M copies/s   \(format(Double(payload) / copyNs)) GB/s (same run)")
        let ratio = results[1].1 / results[0].1
        for (label, pps) in results.reversed() { context.record(label, pps / 1e6, unit: "M packets/s") }
        context.record("memcpy (same size)", 1e3 / copyNs, unit: "M packets/s")
        context.row("ratio", "processes/threads \(format(ratio, 3))   processes/memcpy \(format(results[1].1 * copyNs / 1e9, 3))")
        if payload == 64 << 10 {
            context.row("goal", ">= 0.80 of in-process: \(ratio >= 0.8 ? "met" : "NOT met") (\(format(ratio, 3)))")
        }
    }

    /// One run of the throughput workload: `packets` packets of `source` through ring A to a sink peer (a
    /// process or a thread), batches of up to 64; packets per second from the first write until the peer's
    /// acknowledgement arrives.
    static func packetRate(payload: Int, packets: Int, process: Bool, pin: Bool,
                           source: RingBenchmarks.PayloadSource) throws -> Double {
        let shared = try Shared.create()
        let writer = OutgoingRing(memory: shared.a)
        let acks = IncomingRing(memory: shared.b)
        let buffer = PacketBuffer(capacity: 64)
        let join = try startPeer(.sink, payload: payload, count: packets, shared: shared, process: process, pin: pin)
        if pin { _ = vmbus_shim_pin_to_cpu(0) }
        let maxBatch = max(1, min(64, (ringDataBytes / 16) / OutgoingRing.bytesNeeded(payloadCount: payload)))
        var spins = 0
        var ready = false
        while !ready {
            var batch = try acks.beginRead()
            while let p = try acks.next(&batch, into: buffer) { ready = ready || p.descriptor.transactionID == readyTransactionID }
            if batch.isEmpty { relax(&spins) } else { _ = acks.commit(batch) }
        }
        let start = now()
        var sent = 0
        while sent < packets {
            var batch = try writer.beginWrite()
            while sent < packets && batch.packetCount < maxBatch {
                do throws(RingError) {
                    try writer.append(&batch, type: .dataInband, flags: 0, transactionID: UInt64(sent), payload: source.bytes)
                } catch {
                    guard case .full = error else { throw error }
                    break
                }
                sent += 1
            }
            if batch.isEmpty { relax(&spins) } else { _ = writer.commit(batch) }
        }
        var done = false
        while !done {
            var batch = try acks.beginRead()
            while let p = try acks.next(&batch, into: buffer) { done = done || p.descriptor.transactionID == .max }
            if batch.isEmpty { relax(&spins) } else { _ = acks.commit(batch) }
        }
        let seconds = Double(now() - start) / 1e9
        join()
        return Double(packets) / seconds
    }

    // MARK: - Ping-pong

    static func pingPong(_ context: inout BenchmarkContext, iterations: Int) throws {
        let source = RingBenchmarks.PayloadSource(count: 64)
        var samples = [UInt64](repeating: 0, count: iterations)
        for role in [Role.echoPolled, .echoEvent, .echoBlock] {
            for process in [false, true] {
                let shared = try Shared.create()
                let writer = OutgoingRing(memory: shared.a)
                let reader = IncomingRing(memory: shared.b)
                let buffer = PacketBuffer(capacity: 128)
                let join = try startPeer(role, payload: 64, count: iterations, shared: shared, process: process, pin: context.pin)
                if context.pin { _ = vmbus_shim_pin_to_cpu(0) }
                // Counted after a warm-up, so thread start-up in the peer is not charged to the data path.
                let warmUp = min(1000, iterations / 10)
                var mallocsBefore = mallocCount()
                for i in 0..<iterations {
                    if i == warmUp { mallocsBefore = mallocCount() }
                    let t0 = now()
                    var batch = try writer.beginWrite()
                    try writer.append(&batch, type: .dataInband, flags: 0, transactionID: UInt64(i), payload: source.bytes)
                    if writer.commit(batch), signalled(role) { shared.toPeer.signal() }
                    var got = false
                    while !got {
                        if signalled(role) { waitForData(reader, shared.toParent, spin: spin(role)) }
                        var read = try reader.beginRead()
                        while try reader.next(&read, into: buffer) != nil { got = true }
                        if !read.isEmpty { _ = reader.commit(read) }
                    }
                    samples[i] = now() - t0
                }
                let mallocs = mallocCount() - mallocsBefore
                join()
                samples.sort()
                let p50 = Double(samples[iterations / 2]) / 1e3
                let p99 = Double(samples[iterations * 99 / 100]) / 1e3
                let mode = role == .echoPolled ? "polled" : role == .echoEvent ? "spin+block" : "block"
                let label = "\(mode) \(process ? "procs" : "threads")"
                context.require(mallocs == 0, "\(mallocs) allocations in the \(label) loop")
                context.row(label.padding(17), "round trip p50 \(format(p50, 2)) us   p99 \(format(p99, 2)) us   (\(iterations) round trips, \(mallocs) mallocs)")
                if role == .echoPolled && process {
                    context.row("goal", "polled p50 < 2 us: \(p50 < 2 ? "met" : "NOT met")")
                }
            }
        }
    }
}
