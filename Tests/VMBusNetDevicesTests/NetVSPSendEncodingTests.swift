import Testing
import VMBusMemory
import VMBusNetProtocol
import VMBusNetVSP
import VMBusProtocol
import VMBusTestSupport
import VMBusWire

/// The send encodings Linux uses that NetVSC itself does not: several PACKETs batched in one section (each
/// padded, `msg_len` including the pad) and the partial copy (earlier packets in the section, the last one
/// in GPA ranges).
@Suite(.serialized)
struct NetVSPSendEncodingTests {
    /// A PACKET padded to 8 bytes with the pad counted in `msg_len`, as Linux batches them.
    static func padded(_ frame: [UInt8]) -> [UInt8] {
        var b = rndisPacketBytes(frame: frame)
        while b.count % 8 != 0 { b.append(0) }
        b.setLE32(UInt32(b.count), at: 4)
        return b
    }

    @Test func packetsBatchedInOneSectionAllReachTheBackend() throws {
        let g = try NetVSPHostileGuestTests.RawGuest()
        defer { g.stop() }
        try g.setUp()
        var seed = SplitMix64(seed: 21)
        let frames = (0..<3).map { testFrame(length: 61 + $0 * 333, sequence: $0, seed: &seed) }
        let section = frames.flatMap(Self.padded)
        #expect(try g.sendSection(section) == .success)
        let got = g.backend.take(3)
        #expect(got.count == 3)
        for (a, b) in zip(got, frames) { #expect(firstDifference(a, b) == nil) }
    }

    @Test func aPartialCopyJoinsTheSectionAndTheGPARanges() throws {
        let g = try NetVSPHostileGuestTests.RawGuest()
        defer { g.stop() }
        try g.setUp()
        var seed = SplitMix64(seed: 22)
        let first = testFrame(length: 100, sequence: 0, seed: &seed)
        let last = testFrame(length: 1400, sequence: 1, seed: &seed)
        let inSection = Self.padded(first)
        try inSection.withUnsafeBytes { try #require(g.sendBuffer).write(at: 0, from: $0) }
        // The last packet straddles two pages, starting 3000 bytes into the first.
        let device = try #require(g.system.guest.devices.first)
        let allocator = try #require(device.pageAllocator)
        let pages = try allocator.allocate(pages: 2)
        let buffer = try GuestPageBuffer(memory: allocator.memory, pages: pages)
        let message = rndisPacketBytes(frame: last)
        try message.withUnsafeBytes { try buffer.write(at: 3000, from: $0) }
        let range = GPARange(byteCount: UInt32(message.count), byteOffset: 3000, pfns: pages)
        let request = NVSPMessage.sendRNDISPacket(NVSPSendRNDISPacket(channelType: .data, sendBufferSectionIndex: 0,
                                                                      sendBufferSectionSize: UInt32(inSection.count)))
        try g.channel.sendGPADirectRequest(ranges: [range], payload: request.wireBytes, context: 77)
        let reply = try #require(g.handler.wait(77))
        #expect(try NVSPMessage(wireBytes: reply, direction: .hostToGuest) ==
                .sendRNDISPacketComplete(NVSPSendRNDISPacketComplete(status: .success)))
        let got = g.backend.take(2)
        #expect(got.count == 2)
        if got.count == 2 {
            #expect(firstDifference(got[0], first) == nil)
            #expect(firstDifference(got[1], last) == nil)
        }
    }
}
