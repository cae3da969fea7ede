import Testing
import VMBusDiskBackend
import VMBusGuest
import VMBusProtocol
import VMBusSCSITarget
import VMBusStorageProtocol
import VMBusStorVSP
import VMBusTestSupport
import VMBusTransport

/// A backend whose reads take their time and record when they last touched the caller's (guest) pages.
final class SlowBackend: BlockBackend, @unchecked Sendable {
    let inner = MemoryBackend(capacity: 1 << 20)
    let delay: UInt64
    private let log = Condition((started: 0, lastTouch: UInt64(0)))
    init(delayNanoseconds: UInt64) { delay = delayNanoseconds }
    var info: BlockBackendInfo { inner.info }
    var started: Int { log.withLock { $0.started } }
    var lastTouch: UInt64 { log.withLock { $0.lastTouch } }
    func read(at offset: UInt64, length: Int, into buffers: IOVector) throws(BackendError) {
        log.update { $0.started += 1 }
        sleepNanoseconds(delay)
        try inner.read(at: offset, length: length, into: buffers)
        log.update { $0.lastTouch = max($0.lastTouch, monotonicNanoseconds()) }
    }
    func write(at offset: UInt64, length: Int, from buffers: IOVector, fua: Bool) throws(BackendError) {
        try inner.write(at: offset, length: length, from: buffers, fua: fua)
    }
    func flush() throws(BackendError) {}
    func unmap(at offset: UInt64, length: UInt64) throws(BackendError) {}
    func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(BackendError) {}
}

@Suite(.serialized)
struct StorVSPCloseTests {
    /// A guest that closes its channel while reads are running on StorVSP's I/O threads: the close is answered only
    /// after the last of them has stopped writing into the guest's pages.
    @Test func aClosedChannelsPagesAreLeftAloneBeforeTheCloseIsAnswered() throws {
        let system = try InProcessSystem(memoryPages: 4096)
        defer { system.stop() }
        let backend = SlowBackend(delayNanoseconds: 300_000_000)
        let vsp = StorVSP(kind: .scsi, instanceID: InProcessSystem.instanceID(8), ioThreads: 4)
        vsp.luns.attach(SCSIDisk(backend: backend, serialNumber: "s", identifier: 1), at: 0)
        system.host.addDevice(vsp)
        try system.start()
        let device = try #require(system.guest.devices.first)
        let capture = CompletionCapture()
        let channel = try device.open(userData: [UInt8](repeating: 0, count: 24), handler: capture)
        for op in [VStorOperation.beginInitialization, .queryProtocolVersion, .queryProperties, .endInitialization] {
            var p = VStorPacket(operation: op)
            if op == .queryProtocolVersion { p.version = StorageVersionBody(.win10) }
            _ = try channel.request(p.wireBytes)
        }
        let pages = try system.partition.pages.allocate(pages: 4)
        for (i, pfn) in pages.enumerated() {
            var s = VMSCSIRequest()
            s.setCDB([0x28, 0, 0, 0, 0, UInt8(i * 8), 0, 0, 8, 0])
            s.dataIn = VMSCSIRequest.DataDirection.read.rawValue
            s.dataTransferLength = 4096
            s.senseInfoLength = 20
            try channel.sendGPADirectRequest(ranges: [GPARange(byteCount: 4096, byteOffset: 0, pfns: [pfn])],
                                             payload: VStorPacket(operation: .executeSRB, srb: s).wireBytes,
                                             context: UInt64(100 + i))
        }
        #expect(eventually { backend.started == 4 }, "all four reads are on I/O threads")
        channel.close()
        let closed = monotonicNanoseconds()
        #expect(backend.lastTouch > 0 && backend.lastTouch <= closed,
                "the host wrote into the guest's pages after it answered the close")
    }
}
