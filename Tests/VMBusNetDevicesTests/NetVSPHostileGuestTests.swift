import Testing
import VMBusGuest
import VMBusMemory
import VMBusNetProtocol
import VMBusNetVSP
import VMBusProtocol
import VMBusRing
import VMBusTestSupport
import VMBusTransport
import VMBusWire

/// NetVSP against a raw guest that speaks NVSP and RNDIS by hand and gets them wrong: each bad request is
/// refused (FAIL where a completion was asked for) and counted, nothing reaches the backend, and the NIC
/// still carries a good frame afterwards.
@Suite(.serialized)
struct NetVSPHostileGuestTests {
    /// Records the completions of GPA-direct and in-band requests sent with a context.
    final class RawHandler: GuestChannelHandler, @unchecked Sendable {
        let completions = Condition<[UInt64: [UInt8]]>([:])
        func completionReceived(context: UInt64, packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {
            let bytes = buffer.payloadArray(of: packet)
            completions.update { $0[context] = bytes }
        }
        /// Transfer-page packets from the host: transaction id and (length, offset) ranges.
        let transfers = Condition<[(id: UInt64, ranges: [(UInt32, UInt32)])]>([])
        func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {
            guard packet.descriptor.type == .dataUsingXferPages else { return }
            var r = buffer.wireReader(wholePacket: packet)
            guard (try? r.skip(PacketDescriptor.wireSize + 4)) != nil, let count = try? r.readUInt32() else { return }
            var ranges: [(UInt32, UInt32)] = []
            for _ in 0..<count {
                guard let length = try? r.readUInt32(), let offset = try? r.readUInt32() else { return }
                ranges.append((length, offset))
            }
            transfers.update { $0.append((packet.descriptor.transactionID, ranges)) }
        }
        func wait(_ context: UInt64) -> [UInt8]? {
            completions.wait(timeoutNanoseconds: 5_000_000_000) { $0.removeValue(forKey: context) }
        }
    }

    final class RawGuest {
        let system: InProcessSystem
        let backend = MemoryNetBackend()
        let vsp: NetVSP
        let channel: GuestChannel
        let handler = RawHandler()
        var sendBuffer: GuestPageBuffer?
        var receiveBuffer: GuestPageBuffer?
        var context: UInt64 = 1

        init() throws {
            system = try InProcessSystem(memoryPages: 8192)
            vsp = NetVSP(instanceID: InProcessSystem.instanceID(8), configuration: .init(macAddress: NetRig.mac),
                         backend: backend)
            system.host.addDevice(vsp)
            try system.start()
            let device = try #require(system.guest.devices.first)
            channel = try device.open(nil, outgoingRingSize: 64 * 1024, incomingRingSize: 64 * 1024, maxPacketSize: 8192,
                                      handler: handler)
        }

        func request(_ m: NVSPMessage) throws -> NVSPMessage {
            try NVSPMessage(wireBytes: try channel.request(m.wireBytes, timeoutNanoseconds: 5_000_000_000),
                            direction: .hostToGuest)
        }

        func requestRaw(_ bytes: [UInt8]) throws -> [UInt8] {
            try channel.request(bytes, timeoutNanoseconds: 5_000_000_000)
        }

        /// INIT 6.1 and both buffers, as Linux would.
        func setUp() throws {
            _ = try request(.`init`(NVSPInit(version: .v61)))
            let device = try #require(system.guest.devices.first)
            let allocator = try #require(device.pageAllocator)
            let recv = try allocator.allocate(pages: 64)
            let recvHandle = try device.createGPADL(pages: recv)
            _ = try request(.sendReceiveBuffer(NVSPSendReceiveBuffer(gpadlHandle: recvHandle)))
            receiveBuffer = try GuestPageBuffer(memory: allocator.memory, pages: recv)
            let send = try allocator.allocate(pages: 16)
            let sendHandle = try device.createGPADL(pages: send)
            _ = try request(.sendSendBuffer(NVSPSendSendBuffer(gpadlHandle: sendHandle)))
            sendBuffer = try GuestPageBuffer(memory: allocator.memory, pages: send)
        }

        /// SEND_RNDIS_PKT naming section `index` of `size` bytes, after writing `bytes` into section 0.
        func sendSection(_ bytes: [UInt8]?, index: UInt32 = 0, size: UInt32? = nil) throws -> NVSPStatus? {
            if let bytes, let sb = sendBuffer { try bytes.withUnsafeBytes { try sb.write(at: 0, from: $0) } }
            let reply = try request(.sendRNDISPacket(NVSPSendRNDISPacket(
                channelType: .data, sendBufferSectionIndex: index, sendBufferSectionSize: size ?? UInt32(bytes?.count ?? 0))))
            guard case .sendRNDISPacketComplete(let c) = reply else { return nil }
            return c.status
        }

        /// RNDIS INITIALIZE and the packet filter, as Linux's set-up ends; waits for both answers.
        func initializeRNDIS(filter: UInt8 = 0x0D) throws {
            for m in [RNDISMessage.initializeRequest(RNDISInitializeRequest(requestID: 1, maxTransferSize: 0x4000)),
                      .setRequest(RNDISSetRequest(requestID: 2, oid: .genCurrentPacketFilter, infoBuffer: [filter, 0, 0, 0]))] {
                var w = WireWriter()
                m.encode(into: &w)
                guard try sendSection(w.bytes) == .success else { throw NetTestError.notReady }
            }
            let answered = eventually { handler.transfers.withLock { $0.count } >= 2 }
            guard answered else { throw NetTestError.notReady }
            for t in handler.transfers.withLock({ $0 }) { try complete(t.id) }
            handler.transfers.update { $0.removeAll() }
            let returned = eventually { vsp.outstandingReceiveSlots == 0 }
            guard returned else { throw NetTestError.notReady }
        }

        /// The frame a range of the receive buffer holds (its RNDIS PACKET decoded).
        func frame(_ range: (UInt32, UInt32)) throws -> [UInt8] {
            let rb = try #require(receiveBuffer)
            var bytes = [UInt8](repeating: 0, count: Int(range.0))
            try rb.read(at: Int(range.1), count: bytes.count, into: &bytes)
            return Array(try RNDISPacketView(wireBytes: bytes).data)
        }

        func complete(_ id: UInt64) throws {
            try [UInt8](repeating: 0, count: 8).withUnsafeBytes { try channel.sendCompletion(transactionID: id, $0) }
        }

        func stop() {
            channel.close()
            system.stop()
        }
    }

    /// A guest that turned RSC on and then completes a coalesced packet wrongly (by a later fragment's slot,
    /// or twice): only the first slot's id completes it, and then all of its slots come back.
    @Test func anRSCPacketIsCompletedOnlyByItsFirstSlotAndOnlyOnce() throws {
        let g = try RawGuest()
        defer { g.stop() }
        try g.setUp()
        func control(_ m: RNDISMessage) throws {
            var w = WireWriter()
            m.encode(into: &w)
            #expect(try g.sendSection(w.bytes) == .success)
        }
        try control(.initializeRequest(RNDISInitializeRequest(requestID: 1, maxTransferSize: 0x4000)))
        try control(.setRequest(RNDISSetRequest(requestID: 2, oid: .genCurrentPacketFilter, infoBuffer: [0x0D, 0, 0, 0])))
        var params = NDISOffloadParams(header: NDISOffloadParams.header(legacy: false))
        params.rscIPv4 = NDISOffloadParams.rscEnabled
        params.rscIPv6 = NDISOffloadParams.rscEnabled
        var pw = WireWriter()
        params.encode(into: &pw)
        try control(.setRequest(RNDISSetRequest(requestID: 3, oid: .tcpOffloadParameters, infoBuffer: pw.bytes)))
        #expect(eventually { g.handler.transfers.withLock { $0.count } >= 3 }, "the three control answers")
        g.handler.transfers.update { $0.removeAll() }
        let (frame, offload) = NetReceiveCoalescingTests.gsoFrame(payload: 20_000)
        #expect(frame.withUnsafeBytes { g.vsp.deliver($0, offload: offload) } == .accepted)
        #expect(eventually { g.handler.transfers.withLock { $0.count } == 1 })
        let packet = try #require(g.handler.transfers.withLock { $0.first })
        #expect(packet.ranges.count > 10)
        let slot = UInt64(g.vsp.receiveSlotSize)
        let later = UInt64(packet.ranges[3].1) / slot + 1
        let unknown = g.vsp.counterSnapshot.unknownCompletions
        func complete(_ id: UInt64) throws {
            try [UInt8](repeating: 0, count: 8).withUnsafeBytes { try g.channel.sendCompletion(transactionID: id, $0) }
        }
        try complete(later)
        #expect(eventually { g.vsp.counterSnapshot.unknownCompletions == unknown + 1 }, "a later fragment's id names nothing")
        try complete(packet.id)
        try complete(packet.id)
        #expect(eventually { g.vsp.counterSnapshot.unknownCompletions == unknown + 2 }, "the second completion names nothing")
        // Every slot came back once: the whole buffer's worth of coalesced packets fits again, no more.
        g.handler.transfers.update { $0.removeAll() }
        var accepted = 0
        while accepted < 1000, frame.withUnsafeBytes({ g.vsp.deliver($0, offload: offload) }) == .accepted { accepted += 1 }
        let slots = 64 * 4096 / g.vsp.receiveSlotSize
        #expect(accepted == slots / packet.ranges.count, "\(accepted) packets of \(packet.ranges.count) in \(slots) slots")
    }

    @Test func malformedNVSPIsRefusedAndCounted() throws {
        let g = try RawGuest()
        defer { g.stop() }
        // Before INIT: buffers and sends are out of order.
        _ = try g.requestRaw([0x65, 0, 0, 0])                                                  // SEND_RECV_BUF, no body
        #expect(try g.request(.sendReceiveBuffer(NVSPSendReceiveBuffer(gpadlHandle: 1))) ==
                .sendReceiveBufferComplete(NVSPSendReceiveBufferComplete(status: .fail, sections: [])))
        _ = try g.request(.`init`(NVSPInit(version: .v61)))
        // A GPADL that does not exist, a send without a section, a revoke of nothing.
        #expect(try g.request(.sendReceiveBuffer(NVSPSendReceiveBuffer(gpadlHandle: 0xBAD))) ==
                .sendReceiveBufferComplete(NVSPSendReceiveBufferComplete(status: .fail, sections: [])))
        #expect(try g.request(.sendSendBuffer(NVSPSendSendBuffer(gpadlHandle: 0xBAD))) ==
                .sendSendBufferComplete(NVSPSendSendBufferComplete(status: .fail, sectionSize: 0)))
        #expect(try g.sendSection(nil, index: NVSPSendRNDISPacket.noSection) == .fail)
        _ = try g.requestRaw([0x6B, 0, 0, 0, 0, 0])                                            // SEND_RNDIS_PKT, short
        _ = try g.requestRaw([0x67, 0, 0, 0, 0x34, 0x12])                                      // REVOKE_RECV_BUF, unknown id
        #expect(eventually { g.vsp.counterSnapshot.protocolErrors >= 7 }, "\(g.vsp.counterSnapshot)")
        #expect(g.backend.queuedFrames == 0)
    }

    @Test func badSectionsAndBadRNDISAreRefusedAndTheNICStillWorks() throws {
        let g = try RawGuest()
        defer { g.stop() }
        try g.setUp()
        var seed = SplitMix64(seed: 11)
        let frame = testFrame(length: 500, sequence: 0, seed: &seed)
        let good = rndisPacketBytes(frame: frame)
        #expect(try g.sendSection(good, index: 170_000) == .fail)                            // section out of range
        #expect(try g.sendSection(good, index: 0, size: 6145) == .fail)                      // larger than a section
        let bad: [[UInt8]] = [
            rndisPacketBytes(frame: frame) { $0.setLE32(0x10000, at: 4) },                   // msg_len past the section
            rndisPacketBytes(frame: frame) { $0.setLE32(3, at: 4) },                         // msg_len below the header
            rndisPacketBytes(frame: frame) { $0.setLE32(0xFFFF_FF00, at: 8) },               // data_offset far out
            rndisPacketBytes(frame: frame) { $0.setLE32(4, at: 8) },                         // data over the fixed fields
            rndisPacketBytes(frame: frame, info: RNDISPacketInfo(hashValue: 1)) { $0.setLE32(0x2000, at: 8 + 36) },
            rndisPacketBytes(frame: frame, info: RNDISPacketInfo(hashValue: 1)) { $0.setLE32(4, at: 8 + 36) },
            rndisPacketBytes(frame: frame, info: RNDISPacketInfo(hashValue: 1)) { $0.setLE32(0x40, at: 8 + 36 + 8) },
            [0x05, 0, 0, 0, 0x20, 0, 0, 0, 1, 0, 0, 0, 0x0E, 1, 1, 0, 4, 0, 0, 0, 0xFF, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ]
        for (i, b) in bad.enumerated() {
            #expect(try g.sendSection(b) == .fail, "case \(i)")
        }
        #expect(g.backend.queuedFrames == 0)
        #expect(g.vsp.counterSnapshot.protocolErrors >= bad.count + 2)
        // A GPA-direct send naming a page outside guest memory.
        let range = GPARange(byteCount: 100, byteOffset: 0, pfns: [0xFFFF_FFF])
        try g.channel.sendGPADirectRequest(ranges: [range],
                                           payload: NVSPMessage.sendRNDISPacket(NVSPSendRNDISPacket(channelType: .data)).wireBytes,
                                           context: 42)
        let reply = try #require(g.handler.wait(42))
        #expect(try NVSPMessage(wireBytes: reply, direction: .hostToGuest) ==
                .sendRNDISPacketComplete(NVSPSendRNDISPacketComplete(status: .fail)))
        // A completion for a receive slot the host never sent.
        try [UInt8](repeating: 0, count: 8).withUnsafeBytes { try g.channel.sendCompletion(transactionID: 999_999, $0) }
        #expect(eventually { g.vsp.counterSnapshot.unknownCompletions == 1 })
        // Still healthy.
        #expect(try g.sendSection(good) == .success)
        let got = g.backend.take(1)
        #expect(got.count == 1 && firstDifference(got[0], frame) == nil)
    }
}
