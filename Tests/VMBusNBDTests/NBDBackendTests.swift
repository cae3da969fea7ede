import Foundation
import Glibc
import Testing
import VMBusTestSupport
import VMBusDiskBackend
import VMBusNBD
import VMBusTransport

final class Buffers {
    let buffer: UnsafeMutableRawBufferPointer
    let vector = IOVector(capacity: 1)
    init(_ bytes: [UInt8]) throws {
        buffer = .allocate(byteCount: bytes.count, alignment: 4096)
        bytes.withUnsafeBytes { buffer.copyMemory(from: $0) }
        try vector.append(buffer)
    }
    deinit { buffer.deallocate() }
    var bytes: [UInt8] { Array(buffer) }
}

/// Collects the outcomes of submitted requests.
final class Outcomes: BlockIOCompletion, @unchecked Sendable {
    private let results = Condition<[BackendError?]>([])
    func blockIOCompleted(_ error: BackendError?) { results.update { $0.append(error) } }
    /// The outcomes once there are `count` of them, or those there are after the timeout.
    func wait(_ count: Int, timeoutNanoseconds: UInt64 = 10_000_000_000) -> [BackendError?] {
        _ = results.wait(timeoutNanoseconds: timeoutNanoseconds) { $0.count >= count ? true : nil }
        return results.withLock { $0 }
    }
}

func pattern(_ n: Int, _ seed: Int) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ seed) } }

@Suite(.serialized)
struct NBDBackendTests {
    let dir = NSTemporaryDirectory() + "vmbus-nbd-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    init() { mkdir(dir, 0o755) }

    @Test func diskPathsBecomeLibnbdURIs() {
        #expect(NBDBackend.uri(forDiskPath: "nbd:unix:/run/s.sock") == "nbd+unix:///?socket=/run/s.sock")
        #expect(NBDBackend.uri(forDiskPath: "nbd:unix:/run/s.sock:disk") == "nbd+unix:///disk?socket=/run/s.sock")
        #expect(NBDBackend.uri(forDiskPath: "nbd://127.0.0.1:10809/e") == "nbd://127.0.0.1:10809/e")
        #expect(NBDBackend.uri(forDiskPath: "nbd:unix:") == nil)
        #expect(NBDBackend.uri(forDiskPath: "/a/file") == nil)
    }

    @Test(.enabled(if: toolInstalled("nbdkit"))) func parallelIOAgainstNbdkitAndAReconnect() throws {
        let socket = dir + "/k.sock"
        guard let server = ToolServer(["nbdkit", "-f", "-U", socket, "memory", "64M"], socket: socket) else { return }
        var restarted: ToolServer?
        defer { server.stop(); restarted?.stop() }
        let disk = try NBDBackend(uri: "nbd+unix:///?socket=\(socket)")
        #expect(disk.info.capacity == 64 << 20)
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            guard let b = try? Buffers(pattern(128 << 10, t)) else { return }
            try? disk.write(at: UInt64(t) << 20, length: b.bytes.count, from: b.vector, fua: t % 2 == 0)
        }
        try disk.flush()
        for t in 0..<8 {
            let b = try Buffers([UInt8](repeating: 0, count: 128 << 10))
            try disk.read(at: UInt64(t) << 20, length: 128 << 10, into: b.vector)
            #expect(b.bytes == pattern(128 << 10, t))
        }
        // The server goes: requests fail with an I/O error. It comes back: the disk works again.
        server.stop()
        let b = try Buffers([UInt8](repeating: 0, count: 4096))
        #expect {
            try disk.read(at: 0, length: 4096, into: b.vector)
        } throws: { e in
            guard case .disconnected = e as? BackendError else { return false }
            return true
        }
        unlink(socket)
        restarted = ToolServer(["nbdkit", "-f", "-U", socket, "memory", "64M"], socket: socket)
        var ok = false
        for _ in 0..<8 where !ok { ok = (try? disk.read(at: 0, length: 4096, into: b.vector)) != nil }
        #expect(ok, "the disk reconnects when the server returns")
    }

    /// Runs `body(i)` on `count` threads at once (not a pool sized by the CPUs, so that every request is in
    /// flight together) and waits for all of them.
    func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) {
        let group = DispatchGroup()
        for i in 0..<count {
            group.enter()
            Thread { body(i); group.leave() }.start()
        }
        group.wait()
    }

    /// Eight reads the server holds for 0.4 s each, on one connection: pipelined they take about 0.4 s, one at
    /// a time 3.2 s.
    @Test(.enabled(if: toolInstalled("nbdkit"))) func requestsArePipelinedOnOneConnection() throws {
        let socket = dir + "/p.sock"
        guard let server = ToolServer(["nbdkit", "-f", "-U", socket, "--filter=delay", "memory", "64M", "rdelay=400ms"], socket: socket)
        else { return }
        defer { server.stop() }
        let disk = try NBDBackend(uri: "nbd+unix:///?socket=\(socket)", connections: 1)
        let start = DispatchTime.now().uptimeNanoseconds
        let failures = Condition(0)
        onThreads(8) { t in
            guard let b = try? Buffers([UInt8](repeating: 1, count: 4096)),
                  (try? disk.read(at: UInt64(t) << 20, length: 4096, into: b.vector)) != nil, b.bytes == [UInt8](repeating: 0, count: 4096)
            else { failures.update { $0 += 1 }; return }
        }
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        #expect(failures.withLock { $0 } == 0)
        #expect(seconds < 2.0, "8 delayed reads took \(seconds) s: they were not in flight together")
    }

    /// The server dies with reads in flight: every one fails as a disconnect (none hangs), and the disk works
    /// again once the server is back.
    @Test(.enabled(if: toolInstalled("nbdkit"))) func aDisconnectFailsEveryRequestInFlight() throws {
        let socket = dir + "/d.sock"
        guard let server = ToolServer(["nbdkit", "-f", "-U", socket, "--filter=delay", "memory", "64M", "rdelay=2"], socket: socket)
        else { return }
        var restarted: ToolServer?
        defer { server.stop(); restarted?.stop() }
        let disk = try NBDBackend(uri: "nbd+unix:///?socket=\(socket)", connections: 2)
        let outcomes = Condition<[String]>([])
        let killer = Thread { usleep(300_000); server.stop() }
        killer.start()
        onThreads(6) { t in
            var outcome = "no buffer"
            if let b = try? Buffers([UInt8](repeating: 0, count: 4096)) {
                do throws(BackendError) {
                    try disk.read(at: UInt64(t) << 12, length: 4096, into: b.vector)
                    outcome = "completed"
                } catch .disconnected {
                    outcome = "disconnected"
                } catch {
                    outcome = "\(error)"
                }
            }
            outcomes.update { $0.append(outcome) }
        }
        #expect(outcomes.withLock { $0 } == [String](repeating: "disconnected", count: 6))
        unlink(socket)
        restarted = ToolServer(["nbdkit", "-f", "-U", socket, "memory", "64M"], socket: socket)
        let b = try Buffers([UInt8](repeating: 0, count: 4096))
        var ok = false
        for _ in 0..<8 where !ok { ok = (try? disk.read(at: 0, length: 4096, into: b.vector)) != nil }
        #expect(ok, "the disk reconnects when the server returns")
    }

    /// Reads submitted from one thread are all in flight at once and complete on the connections' threads:
    /// eight reads the server holds for 0.4 s finish in about one delay, into a contiguous buffer (libnbd reads
    /// into it directly) or a scattered one (through the slot's bounce buffer); a write submitted the same
    /// way reads back.
    @Test(.enabled(if: toolInstalled("nbdkit"))) func submittedRequestsAreInFlightTogether() throws {
        let socket = dir + "/a.sock"
        guard let server = ToolServer(["nbdkit", "-f", "-U", socket, "--filter=delay", "memory", "64M", "rdelay=400ms"], socket: socket)
        else { return }
        defer { server.stop() }
        let disk = try NBDBackend(uri: "nbd+unix:///?socket=\(socket)", connections: 2)
        #expect(disk.completesAsynchronously)
        let data = pattern(8192, 3)
        let source = try Buffers(data)
        let wrote = Outcomes()
        disk.submitWrite(at: 1 << 20, length: 8192, from: source.vector, fua: true, completion: wrote)
        #expect(wrote.wait(1) == [nil])
        let buffers = try (0..<8).map { _ in try Buffers([UInt8](repeating: 0xEE, count: 8192)) }
        // The last one scattered: two segments of 4 KiB.
        let scattered = IOVector(capacity: 2)
        try scattered.append(UnsafeMutableRawBufferPointer(rebasing: buffers[7].buffer[4096...]))
        try scattered.append(UnsafeMutableRawBufferPointer(rebasing: buffers[7].buffer[..<4096]))
        let read = Outcomes()
        let start = DispatchTime.now().uptimeNanoseconds
        for i in 0..<8 {
            disk.submitRead(at: 1 << 20, length: 8192, into: i == 7 ? scattered : buffers[i].vector, completion: read)
        }
        let submitted = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        #expect(read.wait(8) == [BackendError?](repeating: nil, count: 8))
        let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        #expect(submitted < 0.3, "submitting took \(submitted) s: it waited for the server")
        #expect(seconds < 2.0, "8 delayed reads took \(seconds) s: they were not in flight together")
        for i in 0..<7 { #expect(buffers[i].bytes == data) }
        #expect(Array(buffers[7].buffer[4096...]) + Array(buffers[7].buffer[..<4096]) == data)
        // Refused before the server sees them.
        let refused = Outcomes()
        disk.submitRead(at: 64 << 20, length: 4096, into: buffers[0].vector, completion: refused)
        #expect(refused.wait(1).first??.description.contains("past the capacity") == true)
    }

    /// The server dies with submitted reads in flight: each completes once, as a disconnect.
    @Test(.enabled(if: toolInstalled("nbdkit"))) func aDisconnectCompletesEverySubmittedRequest() throws {
        let socket = dir + "/s.sock"
        guard let server = ToolServer(["nbdkit", "-f", "-U", socket, "--filter=delay", "memory", "64M", "rdelay=2"], socket: socket)
        else { return }
        defer { server.stop() }
        let disk = try NBDBackend(uri: "nbd+unix:///?socket=\(socket)", connections: 2)
        let buffers = try (0..<6).map { _ in try Buffers([UInt8](repeating: 0, count: 4096)) }
        let outcomes = Outcomes()
        for (i, b) in buffers.enumerated() { disk.submitRead(at: UInt64(i) << 12, length: 4096, into: b.vector, completion: outcomes) }
        usleep(300_000)
        server.stop()
        let all = outcomes.wait(6)
        #expect(all.count == 6)
        #expect(all.allSatisfy { if case .disconnected = $0 { return true } else { return false } }, "\(all)")
        usleep(200_000)
        #expect(outcomes.wait(7, timeoutNanoseconds: 100_000_000).count == 6, "no request completed twice")
    }

    /// A server without multi-conn consistency: a flush covers only its own connection's writes, so ours goes
    /// to every connection (nbdkit's log filter shows which connection each request came on).
    @Test(.enabled(if: toolInstalled("nbdkit"))) func withoutMultiConnAFlushReachesEveryConnection() throws {
        let socket = dir + "/m.sock", log = dir + "/m.log"
        guard let server = ToolServer(["nbdkit", "-f", "-U", socket, "--filter=log", "--filter=multi-conn", "memory", "64M",
                                       "multi-conn-mode=disable", "logfile=\(log)"], socket: socket) else { return }
        defer { server.stop() }
        let disk = try NBDBackend(uri: "nbd+unix:///?socket=\(socket)", connections: 3)
        #expect(!disk.multiConn)
        onThreads(6) { t in
            guard let b = try? Buffers(pattern(65536, t)) else { return }
            try? disk.write(at: UInt64(t) << 20, length: 65536, from: b.vector, fua: false)
        }
        try disk.flush()
        let lines = (try? String(contentsOfFile: log, encoding: .utf8))?.split(separator: "\n") ?? []
        func connections(_ request: String) -> Set<Substring> {
            Set(lines.filter { $0.contains(" \(request) ") }.compactMap { l in
                l.split(separator: " ").first { $0.hasPrefix("connection=") }
            })
        }
        #expect(connections("Flush").count == 3, "flushes: \(lines.filter { $0.contains("Flush") })")
    }

    /// An error the server answers (not a disconnect) fails that request with its errno and keeps the
    /// connection.
    @Test(.enabled(if: toolInstalled("nbdkit"))) func aServerErrorFailsOnlyThatRequest() throws {
        let socket = dir + "/e.sock", trigger = dir + "/e.fail"
        guard let server = ToolServer(["nbdkit", "-f", "-U", socket, "--filter=error", "memory", "64M",
                                       "error-pread=ENOSPC", "error-pread-rate=100%", "error-pread-file=\(trigger)"], socket: socket)
        else { return }
        defer { server.stop() }
        let disk = try NBDBackend(uri: "nbd+unix:///?socket=\(socket)", connections: 1)
        let b = try Buffers([UInt8](repeating: 0, count: 4096))
        try disk.read(at: 0, length: 4096, into: b.vector)
        #expect(FileManager.default.createFile(atPath: trigger, contents: nil))
        #expect {
            try disk.read(at: 0, length: 4096, into: b.vector)
        } throws: { e in
            guard case .io(_, let errno) = e as? BackendError else { return false }
            return errno == ENOSPC
        }
        unlink(trigger)
        try disk.read(at: 0, length: 4096, into: b.vector)
    }

    @Test(.enabled(if: toolInstalled("qemu-nbd") && toolInstalled("qemu-img"))) func aQcow2ImageServedByQemuNbd() throws {
        let image = dir + "/q.qcow2", socket = dir + "/q.sock", raw = dir + "/q.raw"
        #expect(runTool(["qemu-img", "create", "-q", "-f", "qcow2", image, "16M"]) == 0)
        guard let server = ToolServer(["qemu-nbd", "-f", "qcow2", "-k", socket, "-x", "disk", "-e", "8", "-t", image], socket: socket)
        else { return }
        var expected = [UInt8](repeating: 0, count: 16 << 20)
        do {
            defer { server.stop() }
            let disk = try NBDBackend(uri: try #require(NBDBackend.uri(forDiskPath: "nbd:unix:\(socket):disk")))
            #expect(disk.info.capacity == 16 << 20)
            for (offset, seed) in [(0, 1), (5 << 20, 2), ((16 << 20) - 65536, 3)] {
                let p = pattern(65536, seed)
                let b = try Buffers(p)
                try disk.write(at: UInt64(offset), length: p.count, from: b.vector, fua: false)
                expected.replaceSubrange(offset..<(offset + p.count), with: p)
            }
            try disk.flush()
        }
        #expect(runTool(["qemu-img", "convert", "-f", "qcow2", "-O", "raw", image, raw]) == 0)
        #expect((FileManager.default.contents(atPath: raw).map { Array($0) }) == expected, "qemu-img reads in the qcow2 what we wrote through NBD")
    }
}
