import VMBusProtocol
import VMBusRing

#if canImport(Glibc)
import Glibc
#endif

/// Fixed-work loops for instruction counting (`vmbus-bench --loop NAME N`, driven by Scripts/callgrind-ring).
///
/// Callgrind counts the whole process, start-up included. The script runs each loop with N and 2N iterations
/// and divides the difference by N, so start-up, warm-up and tear-down cancel out and the figure covers only
/// the loop body. Every loop here is deterministic on one thread except `channel`, whose threads poll while
/// they wait (see docs/PERFORMANCE.md on how steady that figure is).
enum CountedLoops {
    static let names = ["ring", "ring-batch", "channel"]

    /// Runs loop `name` for `iterations` and exits: 0 when done and the contents checked out.
    static func main(_ arguments: [String]) -> Never {
        guard let i = arguments.firstIndex(of: "--loop"), i + 2 < arguments.count,
              let n = Int(arguments[i + 2]), n > 0, names.contains(arguments[i + 1]) else {
            print("usage: vmbus-bench --loop \(names.joined(separator: "|")) ITERATIONS")
            exit(2)
        }
        do {
            switch arguments[i + 1] {
            case "ring": try ring(iterations: n, batch: 1)
            case "ring-batch": try ring(iterations: n, batch: 64)
            default: try channel(requests: n)
            }
        } catch {
            print("loop failed: \(error)")
            exit(1)
        }
        exit(0)
    }

    /// 64-byte packets through one 4 MiB ring on one thread: write `batch` packets, commit, read them back into
    /// a PacketBuffer, commit. `batch: 1` is the per-packet worst case (two index publications and two full
    /// barriers per packet); 64 is what the drain loops do.
    static func ring(iterations: Int, batch: Int) throws {
        let memory = try RingBenchmarks.makeRing(scattered: false)
        let writer = OutgoingRing(memory: memory)
        let reader = IncomingRing(memory: memory)
        let source = RingBenchmarks.PayloadSource(count: 64)
        let buffer = PacketBuffer(capacity: 16 + 64)
        try RingBenchmarks.warmUp(writer: writer, reader: reader, source: source, buffer: buffer)
        var check: UInt64 = 0
        var done = 0
        while done < iterations {
            let k = min(batch, iterations - done)
            var out = try writer.beginWrite()
            for j in 0..<k {
                try writer.append(&out, type: .dataInband, flags: 0, transactionID: UInt64(done + j), payload: source.bytes)
            }
            _ = writer.commit(out)
            var incoming = try reader.beginRead()
            while let p = try reader.next(&incoming, into: buffer) {
                check &+= p.descriptor.transactionID &+ UInt64(p.payloadLength)
            }
            _ = reader.commit(incoming)
            done += k
        }
        let n = UInt64(iterations)
        guard check == n * (n - 1) / 2 + n * 64 else { throw RingError.badMemory("the reader saw wrong packets") }
    }

    /// `channel-echo`'s loop: 64-byte requests with completions, window 128, through the whole in-process stack.
    static func channel(requests: Int) throws {
        guard let (system, client, channel) = try ChannelBenchmarks.echoSystem() else {
            throw RingError.badMemory("the echo device was not bound")
        }
        defer { system.stop() }
        try client.pump(channel: channel, count: 1000, size: 64, window: 128)
        try client.pump(channel: channel, count: requests, size: 64, window: 128)
        guard client.mismatches.load(ordering: .relaxed) == 0 else { throw RingError.badMemory("echo payloads mismatched") }
    }
}
