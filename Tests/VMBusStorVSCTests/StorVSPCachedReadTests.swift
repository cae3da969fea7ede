import Foundation
import Testing
import VMBusDiskBackend
import VMBusSCSITarget
import VMBusStorVSC
import VMBusStorVSP
import VMBusTestSupport
import VMBusTransport

/// Records which threads read through which call; `cached` decides whether reads may be answered from memory.
final class CacheRecordingBackend: ForwardingBackend, @unchecked Sendable {
    let cached: Bool
    let calls = Condition<(cachedOn: [String], readOn: [String])>(([], []))
    init(_ inner: any BlockBackend, cached: Bool) {
        self.cached = cached
        super.init(inner)
    }
    /// The calling thread's name (pthread_getname_np is not imported by the Glibc module).
    static func threadName() -> String {
        ((try? String(contentsOfFile: "/proc/thread-self/comm", encoding: .utf8)) ?? "?")
            .trimmingCharacters(in: .whitespacesAndNewlines)
    }
    override func readIfCached(at offset: UInt64, length: Int, into buffers: IOVector) -> Bool {
        let name = Self.threadName()
        calls.withLock { $0.cachedOn.append(name) }
        return cached && (try? inner.read(at: offset, length: length, into: buffers)) != nil
    }
    override func read(at offset: UInt64, length: Int, into buffers: IOVector) throws(BackendError) {
        let name = Self.threadName()
        calls.withLock { $0.readOn.append(name) }
        try inner.read(at: offset, length: length, into: buffers)
    }
}

@Suite(.serialized)
struct StorVSPCachedReadTests {
    static func run(cached: Bool) throws -> (cachedOn: [String], readOn: [String]) {
        let system = try InProcessSystem(memoryPages: 8192)
        let backend = CacheRecordingBackend(MemoryBackend(capacity: 4 << 20), cached: cached)
        let vsp = StorVSP(kind: .scsi, instanceID: InProcessSystem.instanceID(5), ioThreads: 2)
        vsp.luns.attach(SCSIDisk(backend: backend, serialNumber: "c", identifier: 1), at: 0)
        system.host.addDevice(vsp)
        try system.start()
        var configuration = StorVSCController.Configuration()
        configuration.subchannels = 0
        let device = try #require(system.guest.devices.first)
        let controller = try StorVSCController(device: device, configuration: configuration)
        try controller.start()
        defer { controller.stop(); system.stop() }
        let disk = try #require(controller.disk(lun: 0))
        backend.calls.withLock { $0 = ([], []) }  // discovery's reads are not READs of the disk
        var p = SplitMix64(seed: 5)
        let bytes = p.bytes(64 * 1024)
        try disk.write(at: 8192, bytes)
        #expect(backend.calls.withLock { $0.cachedOn.isEmpty }, "a write is never answered from the cache")
        #expect(try disk.read(at: 8192, count: bytes.count).elementsEqual(bytes))
        #expect(try disk.read(at: 8192 + 4096, count: 512).elementsEqual(bytes[4096..<4608]))
        return backend.calls.withLock { $0 }
    }

    @Test func readsTheBackendHasInMemoryAreAnsweredOnTheChannelWorker() throws {
        let calls = try Self.run(cached: true)
        #expect(calls.cachedOn.count == 2)
        #expect(calls.cachedOn.allSatisfy { $0.hasPrefix("vmbus-ch") }, "\(calls.cachedOn)")
        #expect(calls.readOn.isEmpty, "no read went to an I/O thread: \(calls.readOn)")
    }

    @Test func readsThatWouldWaitGoToTheIOThreads() throws {
        let calls = try Self.run(cached: false)
        #expect(calls.cachedOn.count == 2)
        #expect(calls.readOn.count == 2)
        #expect(calls.readOn.allSatisfy { $0.hasPrefix("storvsp-io") }, "\(calls.readOn)")
    }
}
