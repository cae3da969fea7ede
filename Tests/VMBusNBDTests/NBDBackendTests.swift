import Foundation
import Glibc
import Testing
import VMBusTestSupport
import VMBusDiskBackend
import VMBusNBD

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
