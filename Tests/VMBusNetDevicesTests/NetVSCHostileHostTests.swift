import Testing
import VMBusMemory
import VMBusNetProtocol
import VMBusNetVSC
import VMBusNetVSP
import VMBusTestSupport
import VMBusTransport
import VMBusWire

/// NetVSC against a host that sends malformed receive traffic: every bad packet is dropped and counted,
/// nothing reaches the receive handler, and the NIC keeps working.
@Suite(.serialized)
struct NetVSCHostileHostTests {
    static func withRig(_ body: (NetRig, HostileNetHost, GuestPageBufferInfo) throws -> Void) throws {
        var hostile: HostileNetHost?
        let rig = try NetRig(provider: { vsp in
            let h = HostileNetHost(vsp)
            hostile = h
            return h
        })
        defer { rig.stop() }
        try rig.start()
        let host = try #require(hostile)
        let rb = try host.receiveBuffer()
        try body(rig, host, GuestPageBufferInfo(size: rb.size, slot: rig.nic.receiveSlotSize, buffer: rb))
        // Still healthy: a real frame gets through.
        let port = try #require(rig.backend.waitForPort())
        var seed = SplitMix64(seed: 9)
        let frame = testFrame(length: 300, sequence: 1, seed: &seed)
        #expect(port.deliver(bytes: frame) == .accepted)
        let got = rig.takeReceived(1)
        #expect(got.count == 1 && firstDifference(got[0], frame) == nil)
    }

    struct GuestPageBufferInfo {
        let size: Int
        let slot: Int
        let buffer: GuestPageBuffer
        /// The last slot: the host's allocator hands it out last, so a test may scribble there.
        var lastSlot: Int { (size / slot - 1) * slot }
    }

    static func expectDropped(_ rig: NetRig, malformedAtLeast n: Int) {
        #expect(eventually { rig.nic.counterSnapshot.malformed >= n }, "\(rig.nic.counterSnapshot)")
        #expect(rig.receivedCount == 0)
    }

    @Test func badTransferPageHeadersAreDroppedAndCounted() throws {
        try Self.withRig { rig, host, rb in
            try host.sendTransferPage(setID: 0xBEEF, ranges: [(64, 0)])
            try host.sendTransferPage(ranges: [(64, 0)], claimedRanges: 1000)
            try host.sendTransferPage(ranges: [(64, 0)], claimedRanges: 0)
            try host.sendTransferPage(ranges: [(64, 0)], payload: NVSPMessage.`init`(NVSPInit(version: .v61)).wireBytes)
            try host.sendTransferPage(ranges: [(64, 0)], payload: [1, 2, 3, 4])
            Self.expectDropped(rig, malformedAtLeast: 5)
        }
    }

    @Test func rangesOutsideTheBufferOrLongerThanASlotAreDropped() throws {
        try Self.withRig { rig, host, rb in
            try host.sendTransferPage(ranges: [(64, UInt32(rb.size))])
            try host.sendTransferPage(ranges: [(64, UInt32(rb.size - 32))])
            try host.sendTransferPage(ranges: [(0xFFFF_FFFF, 0xFFFF_FFF0)])
            try host.sendTransferPage(ranges: [(UInt32(rb.slot + 8), 0)])
            try host.sendTransferPage(ranges: [(4, 0)])
            Self.expectDropped(rig, malformedAtLeast: 5)
        }
    }

    @Test func malformedRNDISInTheReceiveBufferIsDropped() throws {
        try Self.withRig { rig, host, rb in
            var seed = SplitMix64(seed: 8)
            let frame = testFrame(length: 200, sequence: 0, seed: &seed)
            let cases: [[UInt8]] = [
                rndisPacketBytes(frame: frame) { $0.setLE32(0x10000, at: 4) },            // msg_len past the range
                rndisPacketBytes(frame: frame) { $0.setLE32(0xFFFF_FF00, at: 8) },        // data_offset far out
                rndisPacketBytes(frame: frame) { $0.setLE32(4096, at: 12) },              // data_len past msg_len
                rndisPacketBytes(frame: frame, info: RNDISPacketInfo(hashValue: 7)) {
                    $0.setLE32(0x1000, at: 8 + 36)                                         // PPI size past its area
                },
                rndisPacketBytes(frame: frame, info: RNDISPacketInfo(hashValue: 7)) {
                    $0.setLE32(400, at: 8 + 36 + 8)                                        // ppi_offset past the PPI
                },
                rndisPacketBytes(frame: [1, 2, 3]),                                        // a runt frame
                [0x04, 0, 0, 0x80, 8, 0, 0, 0],                                            // QUERY_C cut short
            ]
            for (i, bytes) in cases.enumerated() {
                try bytes.withUnsafeBytes { try rb.buffer.write(at: rb.lastSlot, from: $0) }
                try host.sendTransferPage(ranges: [(UInt32(bytes.count), UInt32(rb.lastSlot))],
                                          transactionID: 0xDEAD_0000 + UInt64(i))
                // The guest copies the range before parsing; wait for it before the slot is rewritten.
                #expect(eventually { rig.nic.counterSnapshot.malformed + rig.nic.counterSnapshot.rxDropped > i })
            }
            #expect(rig.receivedCount == 0)
        }
    }

    /// RSC fragments that do not make a packet: a middle fragment with nothing begun, a packet that ends
    /// before the last fragment, a join past the largest frame. None reaches the handler; a good pair does.
    @Test func brokenRSCFragmentsAreDroppedAndAGoodPairIsJoined() throws {
        try Self.withRig { rig, host, rb in
            func fragment(_ flags: UInt8, _ data: [UInt8]) -> [UInt8] {
                rndisPacketBytes(frame: data, info: RNDISPacketInfo(packetID: RNDISPacketInfoID(
                    flags: RNDISPacketInfoID.flagSubAllocation | flags, packetID: 1)))
            }
            var seed = SplitMix64(seed: 5)
            let head = testFrame(length: 1000, sequence: 0, seed: &seed)
            let big = [UInt8](repeating: 0xAB, count: rb.slot - 200)
            // Three slots from the end: a first fragment, a middle one, a last one.
            let slots = [rb.lastSlot - 2 * rb.slot, rb.lastSlot - rb.slot, rb.lastSlot]
            let pieces = [fragment(RNDISPacketInfoID.flagFirstFragment, head), fragment(0, big),
                          fragment(RNDISPacketInfoID.flagLastFragment, [1, 2, 3, 4])]
            for (slot, bytes) in zip(slots, pieces) {
                try bytes.withUnsafeBytes { try rb.buffer.write(at: slot, from: $0) }
            }
            func range(_ i: Int) -> (UInt32, UInt32) { (UInt32(pieces[i].count), UInt32(slots[i])) }
            var malformed = rig.nic.counterSnapshot.malformed
            func expectOneMore(_ what: String) {
                #expect(eventually { rig.nic.counterSnapshot.malformed == malformed + 1 }, "\(what): \(rig.nic.counterSnapshot)")
                malformed += 1
            }
            try host.sendTransferPage(ranges: [range(1)], transactionID: 0xDEAD_0001)
            expectOneMore("a middle fragment alone")
            try host.sendTransferPage(ranges: [range(0), range(1)], transactionID: 0xDEAD_0002)
            expectOneMore("a packet that ends before its last fragment")
            let tooMany = 72 * 1024 / big.count + 1
            try host.sendTransferPage(ranges: [range(0)] + [(UInt32, UInt32)](repeating: range(1), count: tooMany) + [range(2)],
                                      transactionID: 0xDEAD_0003)
            // The join that overflows, then the last fragment, which finds nothing begun.
            #expect(eventually { rig.nic.counterSnapshot.malformed == malformed + 2 }, "a join past the largest frame")
            #expect(rig.receivedCount == 0)
            try host.sendTransferPage(ranges: [range(0), range(1), range(2)], transactionID: 0xDEAD_0004)
            let got = rig.takeReceived(1)
            #expect(got.count == 1 && firstDifference(got[0], head + big + [1, 2, 3, 4]) == nil, "a good packet is joined")
            #expect(rig.nic.counterSnapshot.rxCoalesced == 1)
        }
    }

    /// A send indirection table of a size Linux would not take is counted and ignored; entries naming queues
    /// that do not exist wrap to open ones, so sends still go out.
    @Test func oddSendTablesAreIgnoredOrWrapped() throws {
        try Self.withRig { rig, host, _ in
            let before = rig.nic.counterSnapshot.malformed
            try host.sendInband(NVSPMessage.sendIndirectionTable(NVSPSendIndirectionTable(entries: [0, 1, 2])).wireBytes)
            #expect(eventually { rig.nic.counterSnapshot.malformed == before + 1 })
            try host.sendInband(NVSPMessage.sendIndirectionTable(NVSPSendIndirectionTable(
                entries: [UInt32](repeating: 0xFFFF_FFFF, count: 16))).wireBytes)
            var seed = SplitMix64(seed: 3)
            #expect(eventually { NetDataPathTests.sendRetrying(rig.nic, testFrame(length: 200, sequence: 0, seed: &seed)) == .sent })
            #expect(rig.backend.take(1).count == 1)
            #expect(rig.nic.counterSnapshot.malformed == before + 1)
        }
    }

    @Test func unsolicitedAndUnknownPacketsAreCounted() throws {
        try Self.withRig { rig, host, rb in
            try host.sendCompletion(transactionID: 0x1234_5678, [108, 0, 0, 0, 1, 0, 0, 0])
            try host.sendInband([0xFF, 0xFF, 0, 0])
            #expect(eventually { rig.nic.counterSnapshot.malformed >= 1 }, "\(rig.nic.counterSnapshot)")
        }
    }
}


