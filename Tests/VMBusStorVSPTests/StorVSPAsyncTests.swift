import Testing
import VMBusDiskBackend
import VMBusGuest
import VMBusProtocol
import VMBusSCSI
import VMBusSCSITarget
import VMBusStorageProtocol
import VMBusStorVSP
import VMBusTestSupport
import VMBusTransport

/// A backend that completes reads and writes asynchronously, when the test says so: each submitted request
/// waits in `pending` until ``complete(_:with:)`` runs it (or fails it) on the test's thread.
final class ManualAsyncBackend: BlockBackend, @unchecked Sendable {
    let inner = MemoryBackend(capacity: 1 << 20)
    struct Request {
        var offset: UInt64
        var length: Int
        var buffers: IOVector
        var isWrite: Bool
        var completion: any BlockIOCompletion
    }
    private let pending = Condition<[Request]>([])
    var info: BlockBackendInfo { inner.info }
    var completesAsynchronously: Bool { true }
    var pendingOffsets: [UInt64] { pending.withLock { $0.map(\.offset) } }

    func read(at offset: UInt64, length: Int, into buffers: IOVector) throws(BackendError) {
        try inner.read(at: offset, length: length, into: buffers)
    }
    func write(at offset: UInt64, length: Int, from buffers: IOVector, fua: Bool) throws(BackendError) {
        try inner.write(at: offset, length: length, from: buffers, fua: fua)
    }
    func flush() throws(BackendError) {}
    func unmap(at offset: UInt64, length: UInt64) throws(BackendError) {}
    func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(BackendError) {}

    func submitRead(at offset: UInt64, length: Int, into buffers: IOVector, completion: any BlockIOCompletion) {
        pending.update { $0.append(Request(offset: offset, length: length, buffers: buffers, isWrite: false, completion: completion)) }
    }
    func submitWrite(at offset: UInt64, length: Int, from buffers: IOVector, fua: Bool, completion: any BlockIOCompletion) {
        pending.update { $0.append(Request(offset: offset, length: length, buffers: buffers, isWrite: true, completion: completion)) }
    }

    /// Waits until `count` requests are pending.
    func waitForPending(_ count: Int) -> Bool {
        pending.wait(timeoutNanoseconds: 10_000_000_000) { $0.count >= count ? true : nil } != nil
    }

    /// Completes the pending request at `offset`: moves its data, or fails it with `error`.
    func complete(_ offset: UInt64, with error: BackendError? = nil) {
        guard let r = pending.withLock({ p -> Request? in
            guard let i = p.firstIndex(where: { $0.offset == offset }) else { return nil }
            return p.remove(at: i)
        }) else { return }
        var failure = error
        if failure == nil {
            do throws(BackendError) {
                if r.isWrite { try inner.write(at: r.offset, length: r.length, from: r.buffers, fua: false) }
                else { try inner.read(at: r.offset, length: r.length, into: r.buffers) }
            } catch { failure = error }
        }
        r.completion.blockIOCompleted(failure)
    }
}

@Suite(.serialized)
struct StorVSPAsyncTests {
    struct Rig {
        let system: InProcessSystem
        let vsp: StorVSP
        let backend = ManualAsyncBackend()
        let channel: GuestChannel
        let capture = CompletionCapture()

        init(closeTimeoutNanoseconds: UInt64 = 60_000_000_000) throws {
            system = try InProcessSystem(memoryPages: 4096)
            vsp = StorVSP(kind: .scsi, instanceID: InProcessSystem.instanceID(9), ioThreads: 2,
                          closeTimeoutNanoseconds: closeTimeoutNanoseconds)
            vsp.luns.attach(SCSIDisk(backend: backend, serialNumber: "a", identifier: 1), at: 0)
            system.host.addDevice(vsp)
            try system.start()
            let device = try #require(system.guest.devices.first)
            channel = try device.open(userData: [UInt8](repeating: 0, count: 24), handler: capture)
            for op in [VStorOperation.beginInitialization, .queryProtocolVersion, .queryProperties, .endInitialization] {
                var p = VStorPacket(operation: op)
                if op == .queryProtocolVersion { p.version = StorageVersionBody(.win10) }
                _ = try channel.request(p.wireBytes)
            }
        }

        /// Sends a 4 KiB READ(10) or WRITE(10) of block `block` (8 sectors) at guest page `pfn`, as `context`,
        /// without waiting for its completion.
        func send(block: UInt8, pfn: UInt64, write: Bool = false, context: UInt64) throws {
            var s = VMSCSIRequest()
            s.setCDB([write ? 0x2A : 0x28, 0, 0, 0, 0, block * 8, 0, 0, 8, 0])
            s.dataIn = (write ? VMSCSIRequest.DataDirection.write : .read).rawValue
            s.dataTransferLength = 4096
            s.senseInfoLength = 20
            try channel.sendGPADirectRequest(ranges: [GPARange(byteCount: 4096, byteOffset: 0, pfns: [pfn])],
                                             payload: VStorPacket(operation: .executeSRB, srb: s).wireBytes,
                                             context: context)
        }

        /// Sends reads of blocks 0 ..< `count` into as many new guest pages filled with 0xEE, as contexts
        /// `firstContext` on; returns the pages.
        func sendMarkedReads(_ count: Int, firstContext: UInt64) throws -> [UInt64] {
            let pages = try system.partition.pages.allocate(pages: count)
            for (i, pfn) in pages.enumerated() {
                try system.partition.memory.writeBytes(gpa: pfn * 4096, [UInt8](repeating: 0xEE, count: 4096))
                try send(block: UInt8(i), pfn: pfn, context: firstContext + UInt64(i))
            }
            return pages
        }

        func completion(_ context: UInt64, timeoutNanoseconds: UInt64 = 10_000_000_000) throws -> VStorPacket? {
            guard let bytes = capture.wait(context, timeoutNanoseconds: timeoutNanoseconds) else { return nil }
            return try VStorPacket(wireBytes: bytes)
        }
    }

    static func block(_ i: Int) -> [UInt8] { (0..<4096).map { UInt8(truncatingIfNeeded: $0 &* 3 &+ i &* 29 &+ 1) } }

    /// Four reads are all at the backend at once (not one per I/O thread), and the backend answers them last
    /// first: each completion carries its own transaction's data and status.
    @Test func completionsOutOfOrderReachTheRightRequests() throws {
        let rig = try Rig()
        defer { rig.system.stop() }
        for i in 0..<4 {
            try Self.block(i).withUnsafeBytes { b in
                let v = IOVector(capacity: 1)
                try v.append(UnsafeMutableRawBufferPointer(mutating: b))
                try rig.backend.inner.write(at: UInt64(i) * 4096, length: 4096, from: v, fua: false)
            }
        }
        let memory = rig.system.partition.memory
        let pages = try rig.system.partition.pages.allocate(pages: 4)
        for i in 0..<4 { try rig.send(block: UInt8(i), pfn: pages[i], context: UInt64(10 + i)) }
        #expect(rig.backend.waitForPending(4), "four reads in flight at the backend with two I/O threads")
        for i in (0..<4).reversed() {
            rig.backend.complete(UInt64(i) * 4096)
            let reply = try #require(try rig.completion(UInt64(10 + i)))
            #expect(reply.operation == .completeIO && reply.status == .success)
            #expect(reply.srb.srbStatus == .success && reply.srb.dataTransferLength == 4096)
            #expect(try memory.readBytes(gpa: pages[i] * 4096, count: 4096) == Self.block(i))
        }
        // A write goes the same way, and reads back.
        let data = Self.block(9)
        try memory.writeBytes(gpa: pages[0] * 4096, data)
        try rig.send(block: 7, pfn: pages[0], write: true, context: 20)
        #expect(rig.backend.waitForPending(1))
        rig.backend.complete(7 * 4096)
        #expect(try rig.completion(20)?.srb.srbStatus == .success)
        let back = IOVector(capacity: 1)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { buffer.deallocate() }
        try back.append(buffer)
        try rig.backend.inner.read(at: 7 * 4096, length: 4096, into: back)
        #expect(Array(buffer) == data)
    }

    /// The storage goes away with reads in flight: each fails with NOT READY / LOGICAL UNIT COMMUNICATION
    /// FAILURE (as the synchronous path answers), the guest's pages untouched, and the channel goes on.
    @Test func aDisconnectFailsTheReadsInFlightWithNotReady() throws {
        let rig = try Rig()
        defer { rig.system.stop() }
        let memory = rig.system.partition.memory
        let pages = try rig.sendMarkedReads(3, firstContext: 30)
        #expect(rig.backend.waitForPending(3))
        rig.backend.complete(4096)
        #expect(try rig.completion(31)?.srb.srbStatus == .success)
        for i in [2, 0] {
            rig.backend.complete(UInt64(i) * 4096, with: .disconnected("test"))
            let reply = try #require(try rig.completion(UInt64(30 + i)))
            #expect(reply.srb.srbStatus == SRBStatus.error.withAutosense())
            #expect(reply.srb.scsiStatus == SAMStatus.CHECK_CONDITION)
            #expect(reply.srb.dataArea[2] & 0x0F == SenseKey.NOT_READY)
            #expect(reply.srb.dataArea[12] == 0x08, "ASC: logical unit communication failure")
            #expect(reply.srb.dataTransferLength == 0)
            #expect(try memory.readBytes(gpa: pages[i] * 4096, count: 4096) == [UInt8](repeating: 0xEE, count: 4096))
        }
        try rig.send(block: 5, pfn: pages[0], context: 40)
        #expect(rig.backend.waitForPending(1))
        rig.backend.complete(5 * 4096)
        #expect(try rig.completion(40)?.srb.srbStatus == .success)
    }

    /// A close while reads are in flight waits for them (bounded); what completes after the close returned
    /// leaves the guest's pages alone and sends nothing.
    @Test func aCloseWithReadsOutstandingLeavesTheGuestsPagesAlone() throws {
        let rig = try Rig(closeTimeoutNanoseconds: 300_000_000)
        defer { rig.system.stop() }
        let memory = rig.system.partition.memory
        let pages = try rig.sendMarkedReads(2, firstContext: 50)
        #expect(rig.backend.waitForPending(2))
        // One completes while the close waits: it is answered (or dropped with the channel), before the close returns.
        let early = startThread(name: "early") {
            sleepNanoseconds(100_000_000)
            rig.backend.complete(0)
        }
        #expect(early)
        let started = monotonicNanoseconds()
        rig.channel.close()
        #expect(monotonicNanoseconds() - started >= 250_000_000, "the close waited for the request still in flight")
        #expect(rig.backend.pendingOffsets == [4096], "the second read outlived the close")
        // The late one: its data must not land in the closed channel's page.
        rig.backend.complete(4096)
        sleepNanoseconds(50_000_000)
        #expect(try memory.readBytes(gpa: pages[1] * 4096, count: 4096) == [UInt8](repeating: 0xEE, count: 4096))
        #expect(rig.vsp.counterSnapshot.lastError?.contains("closed with I/O still running") == true)
    }
}
