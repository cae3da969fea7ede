import Testing
import VMBusNetProtocol
import VMBusNetVSC
import VMBusNetVSP
import VMBusSync
import VMBusTestSupport
import VMBusTransport
import VMBusWire

/// Batching both ways: frames delivered with `more` share one transfer-page packet that the guest completes
/// once (NetVSP, checked by a raw guest that reads the packet itself), and frames sent with `more` share one
/// send section laid out as Linux's netvsc pads it (NetVSC, checked on the bytes the host reads).
@Suite(.serialized)
struct NetBatchingTests {
    typealias RawGuest = NetVSPHostileGuestTests.RawGuest

    static func frames(_ count: Int, length: Int = 100) -> [[UInt8]] {
        var seed = SplitMix64(seed: 0xBA7C)
        return (0..<count).map { testFrame(length: length + $0, sequence: $0, seed: &seed) }
    }

    /// How many transfer-page packets the raw guest has, after giving the host a moment to send more.
    static func settledTransfers(_ g: RawGuest) -> [(id: UInt64, ranges: [(UInt32, UInt32)])] {
        sleepNanoseconds(50_000_000)
        return g.handler.transfers.withLock { $0 }
    }

    // MARK: Host → guest

    @Test func framesDeliveredWithMoreGoAsOnePacketThatOneCompletionFrees() throws {
        let g = try RawGuest()
        defer { g.stop() }
        try g.setUp()
        try g.initializeRNDIS()
        let sent = Self.frames(11)
        for f in sent.dropLast() {
            #expect(f.withUnsafeBytes { g.vsp.deliver($0, more: true) } == .accepted)
        }
        #expect(Self.settledTransfers(g).isEmpty, "held until the batch ends")
        #expect(sent[10].withUnsafeBytes { g.vsp.deliver($0, more: false) } == .accepted)
        #expect(eventually { g.handler.transfers.withLock { $0.count } == 1 })
        let packet = try #require(Self.settledTransfers(g).first)
        #expect(Self.settledTransfers(g).count == 1)
        #expect(packet.ranges.count == 11)
        for (i, range) in packet.ranges.enumerated() {
            #expect(try g.frame(range) == sent[i], "frame \(i)")
        }
        #expect(g.vsp.outstandingReceiveSlots == 11)
        let unknown = g.vsp.counterSnapshot.unknownCompletions
        let later = UInt64(packet.ranges[5].1) / UInt64(g.vsp.receiveSlotSize) + 1
        try g.complete(later)
        #expect(eventually { g.vsp.counterSnapshot.unknownCompletions == unknown + 1 }, "a later frame's slot names nothing")
        try g.complete(packet.id)
        #expect(eventually { g.vsp.outstandingReceiveSlots == 0 }, "one completion frees the packet's every slot")
        #expect(g.vsp.counterSnapshot.rxPackets == 11)
    }

    @Test func flushDeliveriesEndsTheBatchAndAFullPacketGoesByItself() throws {
        let g = try RawGuest()
        defer { g.stop() }
        try g.setUp()
        try g.initializeRNDIS()
        let limit = 64
        let sent = Self.frames(limit + 5)
        for f in sent { #expect(f.withUnsafeBytes { g.vsp.deliver($0, more: true) } == .accepted) }
        #expect(eventually { g.handler.transfers.withLock { $0.count } == 1 })
        #expect(Self.settledTransfers(g).map(\.ranges.count) == [limit], "a full packet goes without a flush")
        g.vsp.flushDeliveries()
        #expect(eventually { g.handler.transfers.withLock { $0.count } == 2 })
        let packets = Self.settledTransfers(g)
        #expect(packets.map(\.ranges.count) == [limit, 5])
        let got = try packets.flatMap { try $0.ranges.map { try g.frame($0) } }
        #expect(got == sent, "every frame, in order")
    }

    /// Linux breaks if frames arrive after it set the filter to 0: what a batch held then never comes.
    @Test func packetFilterZeroDropsWhatABatchHolds() throws {
        let g = try RawGuest()
        defer { g.stop() }
        try g.setUp()
        try g.initializeRNDIS()
        for f in Self.frames(3) { #expect(f.withUnsafeBytes { g.vsp.deliver($0, more: true) } == .accepted) }
        var w = WireWriter()
        RNDISMessage.setRequest(RNDISSetRequest(requestID: 9, oid: .genCurrentPacketFilter, infoBuffer: [0, 0, 0, 0])).encode(into: &w)
        #expect(try g.sendSection(w.bytes) == .success)
        g.vsp.flushDeliveries()
        #expect(eventually { g.handler.transfers.withLock { $0.count } == 1 }, "the SET's answer")
        let packets = Self.settledTransfers(g)
        #expect(packets.count == 1 && packets[0].ranges.count == 1)
        let answer = try #require(packets.first)
        var bytes = [UInt8](repeating: 0, count: Int(answer.ranges[0].0))
        try #require(g.receiveBuffer).read(at: Int(answer.ranges[0].1), count: bytes.count, into: &bytes)
        var r = WireReader(bytes)
        #expect(try r.peekUInt32() == RNDISMessageType.setComplete.rawValue, "only the SET's answer, no frame")
        try g.complete(answer.id)
        #expect(eventually { g.vsp.outstandingReceiveSlots == 0 }, "the held frames' slots came back")
        #expect(g.vsp.counterSnapshot.rxDropped >= 3)
    }

    /// A guest that completes a held packet's transaction id before it was sent (ids are slot numbers, easy
    /// to guess) hurts only itself: the host keeps its books and the NIC goes on.
    @Test func aGuestCompletingAHeldPacketEarlyDoesNotConfuseTheHost() throws {
        let g = try RawGuest()
        defer { g.stop() }
        try g.setUp()
        try g.initializeRNDIS()
        let sent = Self.frames(4)
        #expect(sent[0].withUnsafeBytes { g.vsp.deliver($0, more: true) } == .accepted)
        #expect(sent[1].withUnsafeBytes { g.vsp.deliver($0, more: true) } == .accepted)
        for id in UInt64(1)...8 { try g.complete(id) }
        #expect(eventually { g.vsp.outstandingReceiveSlots == 0 }, "the early completion freed the held slots")
        #expect(sent[2].withUnsafeBytes { g.vsp.deliver($0, more: true) } == .accepted)
        #expect(sent[3].withUnsafeBytes { g.vsp.deliver($0, more: false) } == .accepted)
        #expect(eventually { !g.handler.transfers.withLock { $0.isEmpty } })
        for p in Self.settledTransfers(g) { try g.complete(p.id) }
        #expect(eventually { g.vsp.outstandingReceiveSlots == 0 })
        g.handler.transfers.update { $0.removeAll() }
        let good = Self.frames(1, length: 300)[0]
        #expect(good.withUnsafeBytes { g.vsp.deliver($0) } == .accepted)
        #expect(eventually { g.handler.transfers.withLock { $0.count } == 1 })
        let packet = try #require(g.handler.transfers.withLock { $0.first })
        #expect(try g.frame(packet.ranges[0]) == good)
    }

    // MARK: Guest → host

    static func hostileRig(mtu: Int = 1500, _ host: (inout NetVSP.Configuration) -> Void = { _ in }) throws -> (NetRig, HostileNetHost) {
        let box = Lock<HostileNetHost?>(nil)
        let rig = try NetRig(mtu: mtu, host: host, provider: { vsp in
            let h = HostileNetHost(vsp)
            box.withLock { $0 = h }
            return h
        })
        try rig.start()
        return (rig, try #require(box.withLock { $0 }))
    }

    /// Walks a batched section as a host does: each message's `msg_len` leads to the next, which starts at the
    /// host's 8-byte alignment; the padding is zero and belongs to the message before it.
    static func messages(in section: [UInt8]) throws -> [(start: Int, length: Int, frame: [UInt8])] {
        var out: [(Int, Int, [UInt8])] = []
        var at = 0
        while at < section.count {
            var r = WireReader(section, start: at, end: section.count)
            let view = try RNDISPacketView(from: &r)
            let end = view.dataIndex + view.dataLength
            #expect(section[end..<(at + view.messageLength)].allSatisfy { $0 == 0 }, "padding after the frame at \(at)")
            out.append((at, view.messageLength, Array(view.data)))
            at += view.messageLength
        }
        return out
    }

    @Test func framesSentWithMoreShareOneSectionPaddedAsLinuxPadsThem() throws {
        let (rig, host) = try Self.hostileRig()
        defer { rig.stop() }
        #expect(rig.nic.batchLimit == 8)
        #expect(rig.nic.packetAlignment == 8)
        host.sections.update { $0.removeAll() }
        let sent = [61, 100, 77].map { Self.frames(1, length: $0)[0] }
        #expect(rig.nic.send(bytes: sent[0], more: true) == .sent)
        #expect(rig.nic.send(bytes: sent[1], more: true) == .sent)
        sleepNanoseconds(50_000_000)
        #expect(rig.backend.queuedFrames == 0, "held until the batch ends")
        #expect(rig.nic.send(bytes: sent[2]) == .sent)
        #expect(rig.backend.take(3) == sent)
        let sections = host.sections.withLock { $0 }
        #expect(sections.count == 1, "one request for the three")
        let walked = try Self.messages(in: try #require(sections.first).bytes)
        #expect(walked.map(\.frame) == sent)
        #expect(walked.map(\.start).allSatisfy { $0 % 8 == 0 })
        #expect(walked.last.map { $0.start + $0.length } == sections.first?.bytes.count, "the size ends with the last message")
        #expect(rig.nic.counterSnapshot.txBatched == 3)
        #expect(rig.vsp.counterSnapshot.protocolErrors == 0)
    }

    @Test func aBatchGoesAtTheHostsMaxPacketsPerMessageAndFlushSendsEndsIt() throws {
        let (rig, host) = try Self.hostileRig { $0.maxPacketsPerMessage = 2 }
        defer { rig.stop() }
        #expect(rig.nic.batchLimit == 2)
        host.sections.update { $0.removeAll() }
        let sent = Self.frames(5)
        for f in sent { #expect(rig.nic.send(bytes: f, more: true) == .sent) }
        #expect(rig.backend.take(4) == Array(sent.prefix(4)))
        sleepNanoseconds(50_000_000)
        #expect(rig.backend.queuedFrames == 0, "the fifth waits for the batch's end")
        rig.nic.flushSends()
        #expect(rig.backend.take(1) == [sent[4]])
        #expect(host.sections.withLock { $0.map { try? Self.messages(in: $0.bytes).count } } == [2, 2, 1])
    }

    /// A frame too large for a section (GPA-direct) or on another queue ends the batch before it: the order
    /// of a flow is kept.
    @Test func aLargeFrameAfterABatchComesAfterIt() throws {
        let (rig, _) = try Self.hostileRig(mtu: 9000)
        defer { rig.stop() }
        let small = Self.frames(3)
        let large = Self.frames(1, length: 8000)[0]
        for f in small { #expect(rig.nic.send(bytes: f, more: true) == .sent) }
        #expect(rig.nic.send(bytes: large, more: true) == .sent)
        rig.nic.flushSends()
        #expect(rig.backend.take(4) == small + [large])
        #expect(rig.nic.counterSnapshot.txGPADirect == 1)
    }

    /// A host whose alignment factor is past a page gets no batches: every frame is its own request.
    @Test func aHostileAlignmentTurnsBatchingOff() throws {
        let (rig, host) = try Self.hostileRig { $0.packetAlignmentFactor = 31 }
        defer { rig.stop() }
        #expect(rig.nic.batchLimit == 1)
        host.sections.update { $0.removeAll() }
        let sent = Self.frames(3)
        for f in sent { #expect(rig.nic.send(bytes: f, more: true) == .sent) }
        #expect(rig.backend.take(3) == sent)
        #expect(host.sections.withLock { $0.count } == 3)
    }
}
