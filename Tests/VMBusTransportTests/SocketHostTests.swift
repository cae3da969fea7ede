#if canImport(Glibc)
import Glibc
#endif
import CVMBusShims
import Testing
import VMBusGuest
import VMBusHost
import VMBusMemory
import VMBusProtocol
import VMBusTestSupport
import VMBusTransport

/// The socket transport's host side in one process: a SocketHostListener with VMBusHosts behind it, and
/// guests over real Unix sockets, well-behaved (SocketGuestSynIC + GuestBus) or rogue (raw frames).
@Suite(.serialized)
struct SocketHostTests {
    // MARK: - A real guest

    @Test func aGuestBusOverTheSocketOpensChannelsEchoesAndUnloads() throws {
        let fixture = try HostFixture()
        defer { fixture.stop() }

        // The socket file is created 0600.
        var st = stat()
        #expect(stat(fixture.socket, &st) == 0)
        #expect(st.st_mode & 0o777 == 0o600)

        let synic = try SocketGuestSynIC(path: fixture.socket, memoryPages: 1024)
        #expect(synic.partitionID == 1)
        let bus = GuestBus(synic: synic, logger: quietLogger("test.guest"))
        try bus.connect()
        #expect(bus.version == .copper)
        let driver = EchoDriver()
        bus.register(driver)
        let client = try #require(driver.clients.first)
        try client.openSubchannels(2)
        #expect(client.channels.count == 3)
        for channel in client.channels { try client.pump(channel: channel, count: 5_000, size: 100) }
        #expect(client.completions.load(ordering: .relaxed) == 15_000)
        #expect(client.mismatches.load(ordering: .relaxed) == 0)
        #expect(fixture.listener.partitionCount == 1)
        let port = try #require(fixture.lastPort)
        #expect(port.violations.load(ordering: .relaxed) == 0)
        #expect(synic.violations.load(ordering: .relaxed) == 0)

        #expect(bus.disconnect())
        try eventually("partition released") { fixture.listener.partitionCount == 0 }
        #expect(fixture.listener.releasedPartitions.load(ordering: .relaxed) == 1)
        let host = try #require(fixture.host(1))
        #expect(host.server.connection == .disconnected)
        #expect(host.openChannels.isEmpty)
        #expect(host.server.rejectedMessages == 0)
    }

    @Test func doorbellsArriveBeforeTheOffersThatNameThem() throws {
        let fixture = try HostFixture(echoDevices: 2)
        defer { fixture.stop() }
        let rogue = try RogueGuest(path: fixture.socket)
        #expect(try rogue.hello().status == .ok)
        try rogue.post(.initiateContact(InitiateContact(versionRequested: .copper, targetVCPU: 0, messageSINT: 2)),
                       connectionID: VMBusConnectionID.message4)
        // The answer, byte for byte as docs/TRANSPORT.md §11 shows it.
        guard case .frame(let response, let none) = rogue.receive() else { throw FixtureError("no VERSION_RESPONSE") }
        #expect(none.isEmpty)
        #expect(response.bytes == [
            0x01, 0x00, 0x00, 0x00, 0x10, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
            0x0F, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00,
        ])
        try rogue.post(.requestOffers(RequestOffers()))
        var seen: [String] = []
        var doorbells: [UInt32] = []
        var offers: [OfferChannel] = []
        while true {
            guard case .frame(let f, let fds) = rogue.receive() else { throw FixtureError("connection lost") }
            defer { for fd in fds { close(fd) } }
            if f.type == .doorbell {
                #expect(fds.count == 1)
                doorbells.append(UInt32(f.payload[0]) | UInt32(f.payload[1]) << 8)
                seen.append("DOORBELL")
                continue
            }
            let m = try ChannelMessage.parse(f.payload)
            if case .offerChannel(let o) = m {
                // Its doorbell came first.
                #expect(doorbells.contains(o.connectionID))
                offers.append(o)
            }
            seen.append("\(m.type)")
            if case .allOffersDelivered = m { break }
        }
        #expect(offers.count == 2)
        #expect(Set(doorbells) == Set(offers.map(\.connectionID)))
        #expect(offers.map(\.connectionID).sorted() == [0x2001, 0x2002])

        // Rescind device 2; once the guest releases the relid the host revokes its doorbell.
        let second = try #require(offers.first { $0.interfaceInstance == InProcessSystem.instanceID(2) })
        fixture.devices(1)[1].rescind()
        _ = try rogue.expectMessage {
            if case .rescindChannelOffer(let r) = $0 { return r.childRelID == second.childRelID }
            return false
        }
        try rogue.post(.relIDReleased(RelIDReleased(childRelID: second.childRelID)))
        guard case .frame(let f, let fds) = rogue.receive() else { throw FixtureError("no DOORBELL_REVOKE") }
        #expect(f.type == .doorbellRevoke)
        #expect(fds.isEmpty)
        #expect(f.payload == [UInt8(second.connectionID & 0xFF), UInt8(second.connectionID >> 8 & 0xFF), 0, 0, 0, 0, 0, 0])
    }

    // MARK: - HELLO checks

    @Test func helloWithAnUnsealedOrTooSmallMemfdIsRefusedWithBadMemory() throws {
        let fixture = try HostFixture()
        defer { fixture.stop() }
        let sint = try Doorbell()

        // Not sealed: the guest could shrink it under the host's mapping.
        let unsealed = try makeMemfd(pages: 64, sealed: false)
        defer { close(unsealed) }
        let a = try RogueGuest(path: fixture.socket)
        try a.socket.send(TransportFrame(type: .hello, payload: TransportHello(memoryBytes: 64 * 4096, eventFlagsPFN: 0).bytes),
                          fds: [unsealed, sint.sendFD])
        #expect(try a.helloReply().status == .badMemory)
        #expect(a.waitForHangUp())

        // Sealed against shrinking only: the memory must be fixed-size.
        let growable = try makeMemfd(pages: 64, sealed: false)
        defer { close(growable) }
        #expect(vmbus_shim_add_seals(growable, vmbus_shim_seal_shrink()) == 0)
        let g = try RogueGuest(path: fixture.socket)
        try g.socket.send(TransportFrame(type: .hello, payload: TransportHello(memoryBytes: 64 * 4096, eventFlagsPFN: 0).bytes),
                          fds: [growable, sint.sendFD])
        #expect(try g.helloReply().status == .badMemory)

        // Sealed against writes: the host cannot map it writable.
        let readOnly = try makeMemfd(pages: 64, sealed: true)
        defer { close(readOnly) }
        #expect(vmbus_shim_add_seals(readOnly, 0x0008 /* F_SEAL_WRITE */) == 0)
        let w = try RogueGuest(path: fixture.socket)
        try w.socket.send(TransportFrame(type: .hello, payload: TransportHello(memoryBytes: 64 * 4096, eventFlagsPFN: 0).bytes),
                          fds: [readOnly, sint.sendFD])
        #expect(try w.helloReply().status == .badMemory)

        // Sealed, but smaller than declared.
        let small = try makeMemfd(pages: 16, sealed: true)
        defer { close(small) }
        let b = try RogueGuest(path: fixture.socket)
        try b.socket.send(TransportFrame(type: .hello, payload: TransportHello(memoryBytes: 64 * 4096, eventFlagsPFN: 0).bytes),
                          fds: [small, sint.sendFD])
        #expect(try b.helloReply().status == .badMemory)

        // A size that is not a page multiple, and an event-flags page outside memory.
        let good = try makeMemfd(pages: 16, sealed: true)
        defer { close(good) }
        for hello in [TransportHello(memoryBytes: 16 * 4096 - 1, eventFlagsPFN: 0),
                      TransportHello(memoryBytes: 16 * 4096, eventFlagsPFN: 16),
                      TransportHello(memoryBytes: 0, eventFlagsPFN: 0)] {
            let c = try RogueGuest(path: fixture.socket)
            try c.socket.send(TransportFrame(type: .hello, payload: hello.bytes), fds: [good, sint.sendFD])
            #expect(try c.helloReply().status == .badMemory)
        }
        #expect(fixture.listener.refusedConnections.load(ordering: .relaxed) == 7)
        #expect(fixture.listener.partitionCount == 0)
    }

    @Test func helloWithTheWrongDescriptorsOrVersionIsRefused() throws {
        let fixture = try HostFixture()
        defer { fixture.stop() }
        let memory = try GuestMemory(pages: 16)
        let sint = try Doorbell()
        let extra = try EventFD()
        let payload = TransportHello(memoryBytes: UInt64(memory.size), eventFlagsPFN: 0).bytes

        func attempt(_ fds: [Int32], payload: [UInt8] = payload, type: TransportFrame.FrameType = .hello)
            throws -> TransportHelloReply.Status {
            let rogue = try RogueGuest(path: fixture.socket)
            try rogue.socket.send(TransportFrame(type: type, payload: payload), fds: fds)
            let status = try rogue.helloReply().status
            if status != .ok { #expect(rogue.waitForHangUp()) }
            return status
        }
        #expect(try attempt([]) == .protocolViolation)
        #expect(try attempt([memory.fd]) == .protocolViolation)
        #expect(try attempt([memory.fd, sint.sendFD, extra.fd]) == .protocolViolation)
        #expect(try attempt([memory.fd, sint.sendFD], payload: Array(payload[0..<20])) == .protocolViolation)
        #expect(try attempt([memory.fd, sint.sendFD], type: .channelMessage) == .protocolViolation)
        // Version 1 (eventfds) and unknown versions.
        for version: UInt32 in [1, 3] {
            #expect(try attempt([memory.fd, sint.sendFD],
                                payload: TransportHello(version: version, memoryBytes: UInt64(memory.size), eventFlagsPFN: 0).bytes)
                    == .versionUnsupported)
        }
        // The SINT descriptor must be an AF_UNIX SOCK_STREAM socket: a pipe or an eventfd (version 1) could
        // block the host's interrupt writes, a datagram socket is not what the document says.
        var pipeFDs: [Int32] = [-1, -1]
        #expect(pipe(&pipeFDs) == 0)
        defer { close(pipeFDs[0]); close(pipeFDs[1]) }
        #expect(try attempt([memory.fd, pipeFDs[1]]) == .badSignalSocket)
        #expect(try attempt([memory.fd, extra.fd]) == .badSignalSocket)
        var dgram: [Int32] = [-1, -1]
        #expect(socketpair(AF_UNIX, Int32(SOCK_DGRAM.rawValue), 0, &dgram) == 0)
        defer { close(dgram[0]); close(dgram[1]) }
        #expect(try attempt([memory.fd, dgram[1]]) == .badSignalSocket)
        // Memory and SINT swapped.
        #expect(try attempt([sint.sendFD, memory.fd]) == .badSignalSocket)
        #expect(fixture.listener.partitionCount == 0)
        #expect(fixture.listener.refusedConnections.load(ordering: .relaxed) == 11)

        // The same descriptors in the right order are fine.
        #expect(try attempt([memory.fd, sint.sendFD]) == .ok)
    }

    @Test func aPeerThatNeverSaysHelloIsDroppedAfterTheTimeout() throws {
        let fixture = try HostFixture(configuration: .init(helloTimeoutMilliseconds: 300))
        defer { fixture.stop() }
        let rogue = try RogueGuest(path: fixture.socket)
        let start = monotonicNanoseconds()
        #expect(try rogue.helloReply(timeoutMilliseconds: 3_000).status == .protocolViolation)
        #expect(rogue.waitForHangUp())
        let ms = (monotonicNanoseconds() - start) / 1_000_000
        #expect(ms >= 250 && ms < 5_000, "dropped after \(ms) ms")
        #expect(fixture.listener.refusedConnections.load(ordering: .relaxed) == 1)
    }

    @Test func aDisallowedUIDIsRefusedWithPermissionDenied() throws {
        let fixture = try HostFixture(configuration: .init(allowedUIDs: []))
        defer { fixture.stop() }
        #expect(throws: TransportRefused(status: .permissionDenied)) {
            _ = try SocketGuestSynIC(path: fixture.socket, memoryPages: 16)
        }
        #expect(String(describing: TransportRefused(status: .permissionDenied)).contains("permission denied"))
    }

    @Test func partitionsBeyondTheLimitAreRefused() throws {
        let fixture = try HostFixture(configuration: .init(maxPartitions: 1))
        defer { fixture.stop() }
        let first = try RogueGuest(path: fixture.socket)
        #expect(try first.hello().status == .ok)
        let second = try RogueGuest(path: fixture.socket)
        #expect(try second.hello().status == .tooManyPartitions)
        _ = first
    }

    // MARK: - After HELLO

    @Test func malformedFramesAreCountedAndThePartitionSurvivesUntilTheViolationLimit() throws {
        let fixture = try HostFixture(configuration: .init(violationLimit: 20))
        defer { fixture.stop() }
        let rogue = try RogueGuest(path: fixture.socket)
        let reply = try rogue.hello()
        #expect(reply.status == .ok)
        let port = try #require(fixture.lastPort)
        let host = try #require(fixture.host(reply.partitionID))
        let extra = try EventFD()

        let contact = ChannelMessage.initiateContact(InitiateContact(versionRequested: .copper, targetVCPU: 0, messageSINT: 2)).bytes
        var wrongLength = TransportFrame(type: .channelMessage, port: 4, payload: contact).bytes
        wrongLength[4] = 10
        var bad: [([UInt8], [Int32])] = [
            ([1, 0, 0, 0, 0], []),  // shorter than a header
            (wrongLength, []),  // payload_size disagrees with the length
            ([UInt8](repeating: 1, count: 300), []),  // longer than any frame
            (TransportFrame(type: .init(rawValue: 0x1234), port: 1, payload: contact).bytes, []),  // unknown type
            (TransportFrame(type: .hello, payload: TransportHello(memoryBytes: 4096, eventFlagsPFN: 0).bytes).bytes, []),
            (TransportFrame(type: .doorbell, payload: [1, 0x20, 0, 0, 0, 0, 0, 0]).bytes, []),  // host-only frame
            (TransportFrame(type: .channelMessage, port: 4, payload: contact).bytes, [extra.fd]),  // a descriptor
            (TransportFrame(type: .channelMessage, port: 7, payload: contact).bytes, []),  // not a message connection id
            (TransportFrame(type: .channelMessage, port: 1 << 32 | 4, payload: contact).bytes, []),  // high port bits
        ]
        for (bytes, fds) in bad { try rogue.socket.send(bytes: bytes, fds: fds) }
        // Still served: the handshake works.
        _ = try rogue.connectVMBus()
        #expect(port.violations.load(ordering: .relaxed) == bad.count)
        #expect(host.server.connection != .disconnected)
        #expect(fixture.listener.partitionCount == 1)

        // Past the limit the guest is disconnected and its partition released.
        bad = (0..<(20 - 9 + 1)).map { _ in ([1, 2, 3], []) }
        for (bytes, fds) in bad { _ = try? rogue.socket.send(bytes: bytes, fds: fds) }
        #expect(rogue.waitForHangUp())
        try eventually("partition released") { fixture.listener.partitionCount == 0 }
        #expect(port.violations.load(ordering: .relaxed) == 21)
        #expect(host.server.connection == .disconnected)
    }

    @Test func aFloodOfChannelMessagesIsBoundedBySocketBackpressure() throws {
        let fixture = try HostFixture()
        defer { fixture.stop() }
        let rogue = try RogueGuest(path: fixture.socket)
        let reply = try rogue.hello()
        let port = try #require(fixture.lastPort)
        let host = try #require(fixture.host(reply.partitionID))
        _ = try rogue.connectVMBus()

        // 100k messages the host refuses without answering (CLOSECHANNEL of an unknown relid): the sender is
        // paced by the socket, the host holds nothing per message, every one is counted.
        let close = ChannelMessage.closeChannel(CloseChannel(childRelID: 999)).bytes
        let frame = TransportFrame(type: .channelMessage, port: 1, payload: close)
        for i in 0..<100_000 {
            do { try rogue.socket.send(frame) } catch {
                Issue.record("send \(i): \(error); host: \(port.endReason ?? "still reading"), dropped \(port.droppedMessages.load(ordering: .relaxed)), violations \(port.violations.load(ordering: .relaxed))")
                return
            }
        }
        try eventually("100k messages handled", seconds: 60) { host.server.rejectedMessages == 100_000 }
        #expect(port.framesReceived.load(ordering: .relaxed) >= 100_000 + 2)
        #expect(port.violations.load(ordering: .relaxed) == 0)

        // 100k messages that each need an answer, from a guest that never reads: once the socket buffers are
        // full the host stops reading and the guest's sends are refused (EAGAIN); nothing queues in the host.
        let contact = TransportFrame(type: .channelMessage, port: 4, payload: ChannelMessage.initiateContact(
            InitiateContact(versionRequested: .copper, targetVCPU: 0, messageSINT: 2)).bytes)
        var accepted = 0
        sending: for _ in 0..<100_000 {
            let sent = Result { () throws(TransportError) -> Bool in try rogue.socket.send(contact, nonBlocking: true) }
            switch sent {
            case .success(let queued): if queued { accepted += 1 }
            case .failure(.disconnected):
                // The host gave up on a guest that did not read its answers for a second (docs/TRANSPORT.md
                // §8): under a sanitizer this loop can take longer than that. Also a bounded outcome.
                break sending
            case .failure(let error): throw error
            }
        }
        #expect(accepted > 10 && accepted < 20_000, "\(accepted) of 100k accepted")
        #expect(port.framesReceived.load(ordering: .relaxed) <= UInt64(100_002 + accepted))

        // The host is blocked answering a guest that does not read; hanging up frees it at once.
        rogue.socket.shutdown()
        try eventually("partition released", seconds: 5) { fixture.listener.partitionCount == 0 }
    }

    @Test func aGPADLNamingPagesOutsideTheMemfdFails() throws {
        let fixture = try HostFixture()
        defer { fixture.stop() }
        let rogue = try RogueGuest(path: fixture.socket)
        #expect(try rogue.hello(memoryPages: 64).status == .ok)
        let offers = try rogue.connectVMBus()
        let relID = try #require(offers.first).childRelID

        func create(_ handle: UInt32, _ pfns: [UInt64]) throws -> UInt32 {
            let (header, bodies) = GPADLMessages.split(childRelID: relID, gpadl: handle,
                                                       ranges: [GPARange(wholePages: pfns)])
            try rogue.post(.gpadlHeader(header))
            for b in bodies { try rogue.post(.gpadlBody(b)) }
            let m = try rogue.expectMessage { if case .gpadlCreated(let c) = $0 { return c.gpadl == handle }; return false }
            guard case .gpadlCreated(let c) = m else { return 0 }
            #expect(c.childRelID == relID)
            return c.creationStatus
        }
        #expect(try create(0x100, [10, 11, 12]) == 0)
        #expect(try create(0x101, [10, 64]) != 0)  // one page past the end
        #expect(try create(0x102, [1 << 40]) != 0)
        #expect(try create(0x103, Array(1...40) + [63, 9_999]) != 0)  // bad page in a GPADL_BODY
        let host = try #require(fixture.host(1))
        #expect(host.server.gpadls.keys.sorted() == [0x100])
    }

    @Test func stoppingTheListenerDisconnectsGuestsAndRemovesTheSocket() throws {
        let fixture = try HostFixture()
        let rogue = try RogueGuest(path: fixture.socket)
        #expect(try rogue.hello().status == .ok)
        fixture.stop()
        #expect(rogue.waitForHangUp())
        var st = stat()
        #expect(stat(fixture.socket, &st) != 0)
    }
}
