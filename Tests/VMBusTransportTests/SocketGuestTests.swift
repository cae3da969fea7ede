#if canImport(Glibc)
import Glibc
#endif
import CVMBusShims
import VMBusSync
import Testing
import VMBusMemory
import VMBusProtocol
import VMBusTestSupport
import VMBusTransport

/// Records what a SocketGuestSynIC delivers.
final class RecordingSink: GuestInterruptSink, @unchecked Sendable {
    let messages = Lock<[[UInt8]]>([])
    let interrupts = Lock<[UInt32]>([])
    let lost = Lock(false)
    func channelInterrupt(relID: UInt32) { interrupts.withLock { $0.append(relID) } }
    func channelMessage(_ bytes: [UInt8]) { messages.withLock { $0.append(bytes) } }
    func hostLost() { lost.withLock { $0 = true } }
}

/// OFFERCHANNEL bytes naming `connectionID`.
func offerBytes(relID: UInt32, connectionID: UInt32) -> [UInt8] {
    ChannelMessage.offerChannel(OfferChannel(interfaceType: InProcessSystem.instanceID(99),
                                             interfaceInstance: InProcessSystem.instanceID(relID),
                                             childRelID: relID, connectionID: connectionID)).bytes
}

/// The guest side of the socket transport against a host played by hand.
@Suite(.serialized)
struct SocketGuestTests {
    /// A host that accepts one connection on its own thread and hands it (and the HELLO) to the test.
    final class HandHost: @unchecked Sendable {
        let directory: SocketDirectory
        let listening: UnixSeqpacketSocket
        let connection = Condition<(UnixSeqpacketSocket, TransportFrame, [Int32])?>(nil)

        init(reply: TransportHelloReply?) throws {
            directory = try SocketDirectory()
            listening = try UnixSeqpacketSocket.listen(path: directory.socket)
            let listening = self.listening
            let connection = self.connection
            startThread(name: "hand-host") {
                guard let c = try? listening.accept(timeoutMilliseconds: 5_000) else { return }
                let (ready, _, _) = c.poll(with: -1, timeoutMilliseconds: 5_000)
                guard ready, let (hello, fds) = try? c.receive(maxFDs: 4) else { return }
                if let reply { try? c.send(TransportFrame(type: .helloReply, payload: reply.bytes)) }
                connection.update { $0 = (c, hello, fds) }
            }
        }

        func accepted() throws -> (UnixSeqpacketSocket, TransportFrame, [Int32]) {
            guard let c = connection.wait(timeoutNanoseconds: 5_000_000_000, until: { $0 }) else {
                throw FixtureError("no connection")
            }
            return c
        }
    }

    @Test func helloCarriesASealedMemfdAndASignalSocketAndMalformedHostFramesAreCounted() throws {
        let host = try HandHost(reply: TransportHelloReply(status: .ok, partitionID: 42))
        let synic = try SocketGuestSynIC(path: host.directory.socket, memoryPages: 16)
        #expect(synic.partitionID == 42)
        let (c, hello, fds) = try host.accepted()
        defer { for fd in fds { close(fd) } }

        // HELLO: version 2, the memory size, page 0 for event flags; memfd first, sealed, then the SINT socket.
        #expect(hello.type == .hello)
        let h = try TransportHello(bytes: hello.payload)
        #expect(h == TransportHello(memoryBytes: 16 * 4096, eventFlagsPFN: 0))
        #expect(fds.count == 2)
        let seals = vmbus_shim_get_seals(fds[0])
        #expect(seals >= 0 && seals & vmbus_shim_seal_shrink() != 0 && seals & vmbus_shim_seal_grow() != 0)
        var st = stat()
        #expect(fstat(fds[0], &st) == 0 && st.st_size == 16 * 4096)
        #expect(Doorbell.isSignalSocket(fds[1]))

        let sink = RecordingSink()
        synic.start(sink)
        let extra = try EventFD()
        let bad: [([UInt8], [Int32])] = [
            ([9, 9, 9], []),
            (TransportFrame(type: .init(rawValue: 0x5642_00FF), payload: []).bytes, []),
            (TransportFrame(type: .doorbell, payload: [1, 0x20, 0, 0, 0, 0, 0, 0]).bytes, []),  // no descriptor
            (TransportFrame(type: .doorbell, payload: [1, 0x20]).bytes, [extra.fd]),  // short payload
            (TransportFrame(type: .helloReply, payload: TransportHelloReply(status: .ok, partitionID: 1).bytes).bytes, []),
            (TransportFrame(type: .channelMessage, payload: [1, 2, 3, 4]).bytes, [extra.fd]),  // a descriptor
            (TransportFrame(type: .doorbell, payload: [1, 0x20, 0, 0, 0, 0, 0, 0]).bytes, [fds[0]]),  // a memfd
            (TransportFrame(type: .doorbell, payload: [1, 0x20, 0, 0, 0, 0, 0, 0]).bytes, [extra.fd]),  // an eventfd
        ]
        for (bytes, fds) in bad { try c.send(bytes: bytes, fds: fds) }
        try c.send(TransportFrame(type: .channelMessage, payload: [0x10, 0, 0, 0, 0, 0, 0, 0]))
        try eventually("message delivered") { sink.messages.withLock { $0.count } == 1 }
        #expect(sink.messages.withLock { $0 } == [[0x10, 0, 0, 0, 0, 0, 0, 0]])
        #expect(synic.violations.load(ordering: .relaxed) == bad.count)
        #expect(!sink.lost.withLock { $0 })

        // A doorbell: once an offer names its connection id, HvSignalEvent on that id signals it; after the
        // revoke it does nothing.
        let bell = try Doorbell()
        try c.send(TransportFrame(type: .doorbell, payload: [0x01, 0x20, 0, 0, 0, 0, 0, 0]), fds: [bell.sendFD])
        try c.send(TransportFrame(type: .channelMessage, payload: offerBytes(relID: 1, connectionID: 0x2001)))
        try eventually("doorbell installed") { sink.messages.withLock { $0.count } == 2 }
        synic.signalEvent(connectionID: 0x2001)
        #expect(bell.wait(timeoutNanoseconds: 2_000_000_000))
        synic.signalEvent(connectionID: 0x2002)  // unknown: nothing
        #expect(!bell.wait(timeoutNanoseconds: 50_000_000))
        try c.send(TransportFrame(type: .doorbellRevoke, payload: [0x01, 0x20, 0, 0, 0, 0, 0, 0]))
        try c.send(TransportFrame(type: .channelMessage, payload: [0x12, 0, 0, 0, 0, 0, 0, 0]))
        try eventually("doorbell revoked") { sink.messages.withLock { $0.count } == 3 }
        synic.signalEvent(connectionID: 0x2001)
        #expect(!bell.wait(timeoutNanoseconds: 50_000_000))
        #expect(synic.violations.load(ordering: .relaxed) == bad.count)

        // An interrupt: bit relid in SINT2's flags (bytes 512..767 of the event-flags page), then the eventfd.
        let hostView = try GuestMemory(mapping: dup(fds[0]), size: 16 * 4096)
        try hostView.writeBytes(gpa: 512 + 1, [0x01])  // bit 8: relid 8
        var one: UInt8 = 1
        #expect(send(fds[1], &one, 1, Int32(MSG_DONTWAIT)) == 1)
        try eventually("interrupt delivered") { sink.interrupts.withLock { $0 } == [8] }

        // The host goes: the guest is told at once.
        c.shutdown()
        try eventually("host lost", seconds: 2) { sink.lost.withLock { $0 } }
        synic.stop()
    }

    @Test func aRefusalIsReportedWithItsStatus() throws {
        let host = try HandHost(reply: TransportHelloReply(status: .badMemory, partitionID: 0))
        #expect(throws: TransportRefused(status: .badMemory)) {
            _ = try SocketGuestSynIC(path: host.directory.socket, memoryPages: 16)
        }
    }

    @Test func aHostThatNeverRepliesTimesOutAndOneThatHangsUpFailsAtOnce() throws {
        let silent = try HandHost(reply: nil)
        let start = monotonicNanoseconds()
        #expect(throws: TransportError.self) {
            _ = try SocketGuestSynIC(path: silent.directory.socket, memoryPages: 16, timeoutMilliseconds: 300)
        }
        #expect(monotonicNanoseconds() - start < 3_000_000_000)

        let directory = try SocketDirectory()
        let listening = try UnixSeqpacketSocket.listen(path: directory.socket)
        startThread(name: "hang-up") {
            guard let c = try? listening.accept(timeoutMilliseconds: 5_000) else { return }
            _ = c.poll(with: -1, timeoutMilliseconds: 5_000)
            if let (_, fds) = try? c.receive() { for fd in fds { close(fd) } }
            c.shutdown()
        }
        let t = monotonicNanoseconds()
        #expect(throws: TransportError.self) {
            _ = try SocketGuestSynIC(path: directory.socket, memoryPages: 16)
        }
        #expect(monotonicNanoseconds() - t < 3_000_000_000)
        #expect(throws: TransportError.self) {
            _ = try SocketGuestSynIC(path: directory.path + "/nobody.sock", memoryPages: 16)
        }
    }
}
