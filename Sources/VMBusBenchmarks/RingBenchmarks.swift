import Atomics
import VMBusMemory
import VMBusProtocol
import VMBusRing

#if canImport(Glibc)
import Glibc
#endif

/// Ring throughput between two threads of one process: a producer appending batches and a consumer copying
/// every packet into its PacketBuffer, both polling (no doorbells), pinned to CPUs 0 and 1 when possible.
enum RingBenchmarks {
    static let ringDataBytes = 4 << 20
    /// A batch (either side) ends after this many ring bytes, so that big packets flow while the other side
    /// works instead of the ring filling and draining as a whole.
    static let batchBytes = ringDataBytes / 16

    static var sections: [BenchmarkSection] {
        [
            BenchmarkSection(
                name: "ring-64B", summary: "64-byte payloads through a 4 MiB ring, two threads, batched commits (goal >= 10 M packets/s)"
            ) { context in
                try measure(&context, payload: 64, packets: context.count(30_000_000), scattered: false,
                            goal: (10e6, "M packets/s"))
            },
            BenchmarkSection(
                name: "ring-64KiB", summary: "64 KiB payloads through a 4 MiB ring, two threads, batched commits (goal >= 5 GB/s)"
            ) { context in
                try measure(&context, payload: 64 << 10, packets: context.count(150_000), scattered: false,
                            goal: (5e9, "GB/s"))
            },
            BenchmarkSection(
                name: "ring-64B-paged", summary: "as ring-64B over scattered 4 KiB pages (a host's view of a GPADL ring)"
            ) { context in
                try measure(&context, payload: 64, packets: context.count(30_000_000), scattered: true, goal: nil)
            },
        ]
    }

    /// A 4 MiB ring in fresh guest memory, contiguous or over deliberately scattered pages.
    static func makeRing(scattered: Bool) throws -> RingMemory {
        let pages = ringDataBytes / 4096 + 1
        let guest = try GuestMemory(pages: scattered ? 2 * pages + 2 : pages)
        let memory: RingMemory
        if scattered {
            let pfns = try PageAllocator(memory: guest).allocate(pages: pages, scattered: true)
            memory = try guest.ringMemory(pfns: pfns[...])
        } else {
            memory = try RingMemory(contiguous: guest.base, totalSize: pages * 4096, owner: guest)
        }
        OutgoingRing.initializeControl(memory)
        return memory
    }

    static func measure(
        _ context: inout BenchmarkContext, payload: Int, packets: Int, scattered: Bool, goal: (Double, String)?
    ) throws {
        let memory = try makeRing(scattered: scattered)
        let writer = OutgoingRing(memory: memory)
        let reader = IncomingRing(memory: memory)
        let source = PayloadSource(count: payload)
        let maxBatchPackets = max(1, min(64, batchBytes / OutgoingRing.bytesNeeded(payloadCount: payload)))
        let buffer = PacketBuffer(capacity: 16 + payload)
        let go = ManagedAtomic<Bool>(false)
        let ready = ManagedAtomic<Int>(0)
        let result = Result()
        // Warm-up on this thread: one-time costs (runtime metadata for generic types, first-touch page faults of
        // the ring) must not land in the measured window.
        try warmUp(writer: writer, reader: reader, source: source, buffer: buffer)

        let producer = BenchmarkThread(name: "bench-producer", cpu: context.pin ? 0 : nil) {
            ready.wrappingIncrement(ordering: .releasing)
            while !go.load(ordering: .acquiring) {}
            var sent = 0
            var spins = 0
            do {
                while sent < packets {
                    var batch = try writer.beginWrite()
                    while sent < packets && batch.packetCount < maxBatchPackets {
                        do throws(RingError) {
                            try writer.append(&batch, type: .dataInband, flags: 0, transactionID: UInt64(sent),
                                              payload: source.bytes)
                        } catch {
                            guard case .full = error else { throw error }
                            break
                        }
                        sent += 1
                    }
                    if batch.isEmpty { relax(&spins) } else { _ = writer.commit(batch) }
                }
            } catch {
                fatalError("producer: \(error)")
            }
        }
        let consumer = BenchmarkThread(name: "bench-consumer", cpu: context.pin ? 1 : nil) {
            ready.wrappingIncrement(ordering: .releasing)
            while !go.load(ordering: .acquiring) {}
            var received = 0
            var spins = 0
            var check: UInt64 = 0
            do {
                while received < packets {
                    var batch = try reader.beginRead()
                    while batch.packetCount < maxBatchPackets, let p = try reader.next(&batch, into: buffer) {
                        check &+= p.descriptor.transactionID &+ UInt64(p.payloadLength)
                        received += 1
                    }
                    if batch.isEmpty { relax(&spins) } else { _ = reader.commit(batch) }
                }
            } catch {
                fatalError("consumer: \(error)")
            }
            result.end.store(now(), ordering: .relaxed)
            result.mallocsAtEnd.store(mallocCount(), ordering: .releasing)
            result.check.store(check, ordering: .relaxed)
        }

        // Both threads have started (thread start-up allocates) and spin on `go`.
        while ready.load(ordering: .acquiring) < 2 { sched_yield() }
        let mallocsAtStart = mallocCount()
        let start = now()
        go.store(true, ordering: .releasing)
        producer.join()
        consumer.join()
        let seconds = Double(result.end.load(ordering: .relaxed) - start) / 1e9
        let mallocs = result.mallocsAtEnd.load(ordering: .acquiring) - mallocsAtStart
        let n = UInt64(packets)
        let expected = n * (n - 1) / 2 + n * UInt64((payload + 7) & ~7)
        context.require(result.check.load(ordering: .relaxed) == expected, "consumer saw wrong packets")

        let packetsPerSecond = Double(packets) / seconds
        let bytesPerSecond = packetsPerSecond * Double(payload)
        let copyNs = memcpyNanosecondsPerCopy(size: payload, count: packets, window: ringDataBytes)
        let copiesPerSecond = 1e9 / copyNs
        context.row("ring", "\(format(packetsPerSecond / 1e6)) M packets/s   \(format(bytesPerSecond / 1e9)) GB/s payload   "
                    + "(\(packets) packets in \(format(seconds, 3)) s)")
        context.row("memcpy", "\(format(copiesPerSecond / 1e6)) M copies/s     \(format(copiesPerSecond * Double(payload) / 1e9)) GB/s"
                    + "   (\(payload) B each, one thread, same run)")
        context.row("ratio", "ring/memcpy \(format(packetsPerSecond / copiesPerSecond, 3))"
                    + "   (the ring copies twice per packet: in and out)")
        context.row("mallocs", "\(mallocs) during the measured loop (must be 0)")
        context.record("ring", packetsPerSecond / 1e6, unit: "M packets/s")
        context.record("memcpy (same size)", copiesPerSecond / 1e6, unit: "M packets/s")
        context.record("allocations in the loop", Double(mallocs), unit: "allocations")
        context.require(mallocs == 0, "\(mallocs) allocations in the measured ring loop")
        if let (target, unit) = goal {
            let value = unit == "GB/s" ? bytesPerSecond : packetsPerSecond
            let shown = unit == "GB/s" ? format(value / 1e9) : format(value / 1e6)
            let goalShown = unit == "GB/s" ? format(target / 1e9, 0) : format(target / 1e6, 0)
            context.row("goal", ">= \(goalShown) \(unit): \(value >= target ? "met" : "NOT met") (\(shown))")
        }
    }

    /// Fills the whole ring once and drains it, on the calling thread.
    static func warmUp(writer: OutgoingRing, reader: IncomingRing, source: PayloadSource, buffer: PacketBuffer) throws {
        var remaining = 2 * writer.dataSize / OutgoingRing.bytesNeeded(payloadCount: source.bytes.count) + 2
        while remaining > 0 {
            var batch = try writer.beginWrite()
            while remaining > 0 {
                do throws(RingError) {
                    try writer.append(&batch, type: .dataInband, flags: 0, transactionID: 0, payload: source.bytes)
                } catch {
                    guard case .full = error else { throw error }
                    break
                }
                remaining -= 1
            }
            _ = writer.commit(batch)
            var read = try reader.beginRead()
            while try reader.next(&read, into: buffer) != nil {}
            _ = reader.commit(read)
        }
    }

    /// The bytes every packet carries, owned by a class so the producer thread can capture them.
    final class PayloadSource: @unchecked Sendable {
        let storage: UnsafeMutableRawBufferPointer
        var bytes: UnsafeRawBufferPointer { UnsafeRawBufferPointer(storage) }
        init(count: Int) {
            storage = .allocate(byteCount: count, alignment: 64)
            for i in 0..<count { storage[i] = UInt8(truncatingIfNeeded: i) }
        }
        deinit { storage.deallocate() }
    }

    final class Result: Sendable {
        let end = ManagedAtomic<UInt64>(0)
        let mallocsAtEnd = ManagedAtomic<UInt64>(0)
        let check = ManagedAtomic<UInt64>(0)
    }
}
