import Testing
import VMBusGuest
import VMBusHost
import VMBusMemory
import VMBusProtocol
import VMBusRing
import VMBusTestSupport
import VMBusTransport
import VMBusWire

/// GPA-direct packets end to end: the guest names its own memory by page number, the host reads it through
/// the bounds-checked guest memory.
@Suite(.serialized)
struct GPADirectTests {
    static let request: [UInt8] = [3, 0, 0, 0, 0, 0, 0, 0]  // EchoProtocol.Operation.echoGPA, reserved

    @Test func hostReadsAGuestBufferThatCrossesScatteredPages() throws {
        let system = try InProcessSystem(memoryPages: 1024)
        system.host.addDevice(EchoDevice(instanceID: InProcessSystem.instanceID(1)))
        try system.start()
        defer { system.stop() }
        let device = try #require(system.guest.devices.first)
        let capture = CompletionCapture()
        let channel = try device.open(handler: capture)

        // 2000 bytes starting 3000 bytes into the first of two pages that are not adjacent in memory.
        let pages = try system.partition.pages.allocate(pages: 2, scattered: true)
        #expect(pages[1] != pages[0] + 1)
        let pattern = (0..<2000).map { UInt8(truncatingIfNeeded: $0 * 7 + 3) }
        try system.partition.memory.writeBytes(gpa: pages[0] * 4096 + 3000, Array(pattern[0..<1096]))
        try system.partition.memory.writeBytes(gpa: pages[1] * 4096, Array(pattern[1096...]))
        let range = GPARange(byteCount: 2000, byteOffset: 3000, pfns: pages)
        try channel.sendGPADirectRequest(ranges: [range], payload: Self.request, context: 1)
        let reply = try #require(capture.wait(1))
        var r = WireReader(reply)
        #expect(try r.readUInt32() == 0)
        #expect(try r.readUInt32() == 2000)
        #expect(try r.readBytes(2000) == pattern)
        system.partition.pages.release(pages)
    }

    @Test func aRangeOutsideGuestMemoryIsRefusedNotRead() throws {
        let system = try InProcessSystem(memoryPages: 256)
        let echo = EchoDevice(instanceID: InProcessSystem.instanceID(1))
        system.host.addDevice(echo)
        try system.start()
        defer { system.stop() }
        let device = try #require(system.guest.devices.first)
        let capture = CompletionCapture()
        let channel = try device.open(handler: capture)
        for (i, pfn) in [UInt64(256), 1 << 40, .max >> 12].enumerated() {
            let range = GPARange(byteCount: 16, byteOffset: 0, pfns: [pfn])
            try channel.sendGPADirectRequest(ranges: [range], payload: Self.request, context: UInt64(10 + i))
            let reply = try #require(capture.wait(UInt64(10 + i)))
            var r = WireReader(reply)
            #expect(try r.readUInt32() == EchoProtocol.statusAccessViolation)
            #expect(try r.readUInt32() == 0)
        }
        // The channel keeps working afterwards.
        let ok = try channel.request([1, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9])
        #expect(ok == [1, 0, 0, 0, 0, 0, 0, 0, 9, 9, 9, 9, 9, 9, 9, 9])
    }
}
