import Atomics
import VMBusSync
import Testing
import VMBusMemory
import VMBusProtocol
@testable import VMBusRing
import VMBusTransport

/// ChannelEndpoint, shared by host and guest, against a peer that writes its incoming ring directly.
@Suite struct ChannelEndpointHostileTests {
    /// An endpoint over two contiguous rings of `dataPages` data pages each, and the peer's writer for the
    /// endpoint's incoming ring.
    struct Pair {
        let memory: GuestMemory
        let incoming: RingMemory
        let outgoing: RingMemory
        let endpoint: ChannelEndpoint
        let peer: OutgoingRing

        init(dataPages: Int = 4, maxPacketSize: Int = PacketBuffer.defaultCapacity) throws {
            memory = try GuestMemory(pages: 2 * (dataPages + 1))
            incoming = try RingMemory(contiguous: memory.base, totalSize: (dataPages + 1) * 4096, owner: memory)
            outgoing = try RingMemory(contiguous: memory.base + (dataPages + 1) * 4096,
                                      totalSize: (dataPages + 1) * 4096, owner: memory)
            OutgoingRing.initializeControl(incoming)
            OutgoingRing.initializeControl(outgoing)
            endpoint = ChannelEndpoint(outgoing: OutgoingRing(memory: outgoing), incoming: IncomingRing(memory: incoming),
                                       maxPacketSize: maxPacketSize, signalPeer: {})
            peer = OutgoingRing(memory: incoming)
        }

        func peerSends(tag: UInt8, payloadBytes: Int = 8) throws {
            var payload = [UInt8](repeating: 0, count: payloadBytes)
            payload[0] = tag
            var batch = try peer.beginWrite()
            try payload.withUnsafeBytes { try peer.append(&batch, type: .dataInband, flags: 0, transactionID: 0, payload: $0) }
            _ = peer.commit(batch)
        }

        var incomingReadIndex: UInt32 { incoming.control.readIndex.load(ordering: .acquiring) }
    }

    @Test func anOversizedPacketCommitsWhatWasHandledThenFailsAndClosesTheEndpoint() throws {
        let pair = try Pair()
        for t: UInt8 in [1, 2] { try pair.peerSends(tag: t) }
        try pair.peerSends(tag: 3, payloadBytes: 6000)
        try pair.peerSends(tag: 4)
        var tags: [UInt8] = []
        let expected = ChannelError.oversizedPacket(length: 16 + 6000, limit: 4096)
        #expect(throws: expected) {
            try pair.endpoint.drain { p, b in tags.append(b.payloadArray(of: p)[0]) }
        }
        #expect(tags == [1, 2])
        #expect(pair.incomingReadIndex == 64, "the two handled packets are committed, never delivered again")
        #expect(pair.endpoint.isClosed)
        #expect(pair.endpoint.failure == expected)
        #expect(throws: ChannelError.closed) { try pair.endpoint.send(type: .dataInband, flags: 0, transactionID: 0, bytes: [1]) }
        #expect(try pair.endpoint.drain { _, _ in tags.append(0) } == 0)
        #expect(tags == [1, 2])
    }

    @Test func aCorruptPacketMidBatchCommitsTheHandledOnes() throws {
        let pair = try Pair()
        for t: UInt8 in 1...3 { try pair.peerSends(tag: t) }
        // The third descriptor (at 64) gets len8 < offset8.
        pair.incoming.copyIn(to: 64, from: [UInt8]([6, 0, 2, 0, 1, 0, 0, 0]), count: 8)
        var n = 0
        #expect(throws: ChannelError.self) { try pair.endpoint.drain { _, _ in n += 1 } }
        #expect(n == 2)
        #expect(pair.incomingReadIndex == 64)
        if case .ring(let why)? = pair.endpoint.failure { #expect(why.contains("len8")) } else { Issue.record("no ring failure") }
    }

    @Test func aBudgetBoundsOneDrainAndSaysMoreIsWaiting() throws {
        let pair = try Pair()
        for t: UInt8 in 1...10 { try pair.peerSends(tag: t) }
        var n = 0
        #expect(try pair.endpoint.drain(maxPackets: 4) { _, _ in n += 1 } == DrainResult(handled: 4, more: true))
        #expect(pair.incomingReadIndex == 4 * 32)
        #expect(try pair.endpoint.drain(maxPackets: 100) { _, _ in n += 1 } == DrainResult(handled: 6, more: false))
        #expect(n == 10)
        #expect(pair.incoming.control.interruptMask.load(ordering: .relaxed) == 0, "unmasked once the ring is empty")
    }

    @Test func closeStopsADrainAfterThePacketBeingHandled() throws {
        let pair = try Pair()
        for t: UInt8 in 1...10 { try pair.peerSends(tag: t) }
        var n = 0
        let handled = try pair.endpoint.drain { _, _ in
            n += 1
            if n == 3 { pair.endpoint.close() }
        }
        #expect(handled == 3)
        #expect(pair.incomingReadIndex == 3 * 32)
    }

    /// Two senders wait for room; the one that gives up first must not withdraw the other's pending_send_sz,
    /// and the last one to leave clears it.
    @Test func oneWaitingSenderDoesNotClearAnothersPendingSendSize() throws {
        let pair = try Pair(dataPages: 1)
        let e = pair.endpoint
        e.sendTimeoutNanoseconds = 0
        let chunk = [UInt8](repeating: 9, count: 200)
        while true {
            do { try e.send(type: .dataInband, flags: 0, transactionID: 0, bytes: chunk) } catch { break }
        }
        e.sendTimeoutNanoseconds = 400_000_000
        let pending = pair.outgoing.control.pendingSendSize
        let done = ManagedAtomic<Int>(0)
        startThread(name: "big") {
            _ = try? e.send(type: .dataInband, flags: 0, transactionID: 0, bytes: [UInt8](repeating: 1, count: 3000))
            done.wrappingIncrement(ordering: .releasing)
        }
        #expect(within(seconds: 5) { pending.load(ordering: .relaxed) != 0 })
        sleepNanoseconds(200_000_000)
        startThread(name: "small") {
            _ = try? e.send(type: .dataInband, flags: 0, transactionID: 0, bytes: [UInt8](repeating: 2, count: 1000))
            done.wrappingIncrement(ordering: .releasing)
        }
        // The big sender gives up first; the small one still waits, and its request must stay published.
        #expect(within(seconds: 5) { done.load(ordering: .acquiring) == 1 })
        var sawZero = false
        let until = monotonicNanoseconds() + 100_000_000
        while monotonicNanoseconds() < until && done.load(ordering: .acquiring) == 1 {
            if pending.load(ordering: .relaxed) == 0 { sawZero = true }
        }
        #expect(!sawZero, "pending_send_sz was cleared while a sender still waited")
        #expect(within(seconds: 5) { done.load(ordering: .acquiring) == 2 })
        #expect(pending.load(ordering: .relaxed) == 0, "the last sender withdraws the request")
    }
}
