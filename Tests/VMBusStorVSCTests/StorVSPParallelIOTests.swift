import Testing
import VMBusDiskBackend
import VMBusSCSITarget
import VMBusStorVSC
import VMBusStorVSP
import VMBusTestSupport
import VMBusTransport

/// A backend whose reads wait (up to a second) until `width` of them are inside at once, and that records the
/// most it saw: served one at a time, the peak stays 1.
final class BarrierBackend: ForwardingBackend, @unchecked Sendable {
    let width: Int
    private let inside = Condition((now: 0, peak: 0))
    init(capacity: UInt64, width: Int) {
        self.width = width
        super.init(MemoryBackend(capacity: capacity))
    }
    var peak: Int { inside.withLock { $0.peak } }
    override func read(at offset: UInt64, length: Int, into buffers: IOVector) throws(BackendError) {
        inside.update { s in s.now += 1; s.peak = max(s.peak, s.now) }
        _ = inside.wait(timeoutNanoseconds: 1_000_000_000) { $0.now >= width ? true : nil }
        defer { inside.update { $0.now -= 1 } }
        try inner.read(at: offset, length: length, into: buffers)
    }
}

@Suite(.serialized)
struct StorVSPParallelIOTests {
    @Test func oneChannelsQueueDepthRunsOnSeveralIOThreads() throws {
        let system = try InProcessSystem(memoryPages: 8192)
        defer { system.stop() }
        let backend = BarrierBackend(capacity: 4 << 20, width: 4)
        let vsp = StorVSP(kind: .scsi, instanceID: InProcessSystem.instanceID(5), ioThreads: 4)
        vsp.luns.attach(SCSIDisk(backend: backend, serialNumber: "b", identifier: 1), at: 0)
        system.host.addDevice(vsp)
        try system.start()
        var configuration = StorVSCController.Configuration()
        configuration.subchannels = 0
        let controller = try StorVSCController(device: try #require(system.guest.devices.first), configuration: configuration)
        try controller.start()
        defer { controller.stop() }
        #expect(controller.channelCount == 1)
        let disk = try #require(controller.disk(lun: 0))
        let done = Condition(0)
        for t in 0..<4 {
            _ = startThread(name: "reader") {
                _ = try? disk.read(at: UInt64(t) * 65536, count: 4096)
                done.update { $0 += 1 }
            }
        }
        #expect(done.wait(timeoutNanoseconds: 20_000_000_000) { $0 == 4 ? true : nil } == true)
        #expect(backend.peak == 4, "four reads of one channel were inside the backend at once")
    }
}
