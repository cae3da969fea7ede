import Testing
import VMBusDiskBackend
import VMBusSCSITarget
import VMBusStorVSC
import VMBusStorVSP
import VMBusTestSupport
import VMBusTransport

@Suite(.serialized)
struct StorVSCBufferTests {
    @Test func readsAndWritesThroughAGuestBufferMatchTheBouncedPath() throws {
        let rig = try StorageRig(hostMaxTransfer: 64 * 1024)
        defer { rig.stop() }
        let d = try rig.disk()
        let controller = try #require(rig.controller)
        var p = SplitMix64(seed: 11)
        let bytes = p.bytes(300 * 1024)
        let buffer = try controller.makeBuffer(byteCount: bytes.count + 8192)
        // From byte 100 of the buffer: the GPA range starts inside a page (a byte_offset), split at 64 KiB.
        bytes.withUnsafeBytes { UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[100..<(100 + bytes.count)]).copyMemory(from: $0) }
        try d.write(at: 8192, from: buffer, offset: 100, count: bytes.count)
        #expect(try d.read(at: 8192, count: bytes.count).elementsEqual(bytes))
        let back = try controller.makeBuffer(byteCount: bytes.count + 4096)
        try d.read(at: 8192, into: back, offset: 4000, count: bytes.count)
        #expect(UnsafeRawBufferPointer(rebasing: back.bytes[4000..<(4000 + bytes.count)]).elementsEqual(bytes))
        // Not block-aligned on the disk: through the bounce pages, same bytes.
        try d.read(at: 8192 + 7, into: back, offset: 0, count: 1000)
        #expect(UnsafeRawBufferPointer(rebasing: back.bytes[0..<1000]).elementsEqual(bytes[7..<1007]))
        #expect(throws: StorVSCError.self) { try d.read(at: 0, into: back, offset: back.count - 10, count: 4096) }
    }

    @Test func aLentBufferStaysReservedUntilTheHostAnswersALateRequest() throws {
        let rig = try StorVSCHostileHostTests.Rig()
        defer { rig.stop() }
        let allocator = try #require(rig.controller.device.pageAllocator)
        let controller = rig.controller, disk = rig.disk, host = rig.host
        let free = allocator.freePageCount
        var buffer: StorVSCBuffer? = try controller.makeBuffer(byteCount: 8192)
        #expect(allocator.freePageCount == free - 2)
        host.mode.withLock { $0 = .silent }
        if let b = buffer { #expect(throws: StorVSCError.self) { try disk.read(at: 0, into: b, count: 8192) } }
        buffer = nil
        #expect(allocator.freePageCount == free - 2, "the host may still write into the pages")
        host.answerHeld()
        #expect(eventually { allocator.freePageCount == free }, "given back once the host answered")
    }
}
