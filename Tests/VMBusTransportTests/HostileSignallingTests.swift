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
@testable import VMBusTransport

/// Clears O_NONBLOCK on a descriptor: what a hostile peer does to the open file description it shares.
func clearNonBlocking(_ fd: Int32) {
    let flags = fcntl(fd, F_GETFL)
    _ = fcntl(fd, F_SETFL, flags & ~O_NONBLOCK)
}

/// Sends bytes on `fd` until its peer's queue is full (per-call non-blocking, so the flooder never blocks).
@discardableResult
func flood(_ fd: Int32) -> Int {
    var sent = 0
    var byte: UInt8 = 0xFF
    while send(fd, &byte, 1, Int32(MSG_DONTWAIT | MSG_NOSIGNAL)) == 1 { sent += 1 }
    return sent
}

/// Runs `body` on its own thread and reports whether it finished within `seconds` (a blocked thread is left
/// behind, but the test fails instead of hanging).
func finishes(within seconds: Double, _ body: @escaping @Sendable () -> Void) -> Bool {
    let done = Latch()
    startThread(name: "bounded") {
        body()
        done.open()
    }
    return done.wait(timeoutNanoseconds: UInt64(seconds * 1e9))
}

/// Descriptors open in this process.
func openDescriptorCount() -> Int {
    guard let d = opendir("/proc/self/fd") else { return -1 }
    defer { closedir(d) }
    var n = 0
    while readdir(d) != nil { n += 1 }
    return n - 2
}

/// Hostile peers on the signal sockets (docs/TRANSPORT.md §6), both directions: whatever a peer does to a
/// descriptor it shares with us (clears O_NONBLOCK, floods it, stops reading, shuts it down), no thread of
/// ours blocks or spins, traffic goes on or the peer is disconnected, and stop completes within a bound.
@Suite(.serialized)
struct HostileSignallingTests {
    // MARK: - The primitive

    @Test func aDoorbellNeverBlocksAndADeadOneDoesNotSpin() throws {
        let bell = try Doorbell()
        // The peer's copy of the sending end is the same socket: clearing O_NONBLOCK through it, or through
        // ours, changes both; our calls still never block.
        let peer = dup(bell.sendFD)
        defer { close(peer) }
        clearNonBlocking(peer)
        clearNonBlocking(bell.receiveFD)
        #expect(flood(peer) > 0)
        // A full queue: signalling is dropped, not blocked on.
        #expect(finishes(within: 5) { for _ in 0..<10_000 { bell.signal() } })
        #expect(bell.coalescedSignals.load(ordering: .relaxed) >= 10_000)
        // A flooded socket is drained a bounded amount per wake, and the wait after the last drain times out
        // instead of blocking in recv.
        var wakes = 0
        while bell.wait(timeoutNanoseconds: 0) { wakes += 1; if wakes > 10_000 { break } }
        #expect(wakes >= 1 && wakes < 1_000)
        #expect(!bell.wait(timeoutNanoseconds: 10_000_000))
        bell.signal()
        #expect(bell.wait(timeoutNanoseconds: 1_000_000_000))

        // The peer shuts the shared socket down: we read end-of-stream once, then the doorbell is dead and
        // every wait is a timed sleep (no busy loop on a descriptor that polls readable forever).
        #expect(Glibc.shutdown(peer, Int32(SHUT_RDWR)) == 0)
        #expect(!bell.wait(timeoutNanoseconds: 100_000_000))
        #expect(bell.isDead)
        #expect(bell.pollFD == -1)
        let before = bell.wakeups.load(ordering: .relaxed)
        let start = monotonicNanoseconds()
        var waits = 0
        while monotonicNanoseconds() - start < 300_000_000 {
            _ = bell.wait(timeoutNanoseconds: 50_000_000)
            waits += 1
        }
        #expect(waits <= 8, "\(waits) waits in 300 ms on a dead doorbell")
        #expect(bell.wakeups.load(ordering: .relaxed) == before)
        bell.signal()  // EPIPE, ignored
        #expect(finishes(within: 1) { _ = bell.wait() })  // a dead doorbell's wait(nil) sleeps, bounded
    }

    @Test func onlyAFStreamSocketsAreSignalSockets() throws {
        let bell = try Doorbell()
        #expect(Doorbell.isSignalSocket(bell.sendFD) && Doorbell.isSignalSocket(bell.receiveFD))
        let e = try EventFD()
        #expect(!Doorbell.isSignalSocket(e.fd))
        var p: [Int32] = [-1, -1]
        #expect(pipe(&p) == 0)
        defer { close(p[0]); close(p[1]) }
        #expect(!Doorbell.isSignalSocket(p[1]))
        #expect(throws: TransportError.self) { _ = try Doorbell(adoptingSendEnd: dup(e.fd)) }
        #expect(!Doorbell.isSignalSocket(-1))
    }

    // MARK: - The host as victim

    @Test func aGuestThatBlocksFloodsOrShutsItsSINTCannotStallTheHost() throws {
        let fixture = try HostFixture()
        defer { fixture.stop() }
        let rogue = try RogueGuest(path: fixture.socket)
        #expect(try rogue.hello().status == .ok)
        let port = try #require(fixture.lastPort)
        // The attack of issue 6 §1 on an eventfd: clear O_NONBLOCK on the shared description, fill the queue,
        // never read.
        clearNonBlocking(rogue.sint.sendFD)
        clearNonBlocking(rogue.sint.receiveFD)
        #expect(flood(rogue.sint.sendFD) > 0)
        #expect(finishes(within: 5) { for r in 0..<20_000 { port.interruptGuest(relID: UInt32(r % 2047 + 1)) } })
        #expect(port.sint.coalescedSignals.load(ordering: .relaxed) > 0)
        // Now the guest shuts its SINT down altogether: interrupts still return at once.
        _ = Glibc.shutdown(rogue.sint.sendFD, Int32(SHUT_RDWR))
        #expect(finishes(within: 5) { for _ in 0..<20_000 { port.interruptGuest(relID: 1) } })
        // The host still serves this guest's control messages and further guests, and stops within a bound.
        _ = try rogue.connectVMBus()
        let (bus, completions) = try realGuestEchoes(1_000, through: fixture.socket)
        #expect(completions == 1_000)
        #expect(finishes(within: 10) { fixture.stop() })
        bus.disconnect()
    }

    @Test func aGuestThatBlocksFloodsOrShutsItsDoorbellsCannotStallTheHostsChannelWorkers() throws {
        let fixture = try HostFixture()
        defer { fixture.stop() }
        let synic = try SocketGuestSynIC(path: fixture.socket, memoryPages: 1024)
        let bus = GuestBus(synic: synic, logger: quietLogger("test.guest"))
        try bus.connect()
        let driver = EchoDriver()
        bus.register(driver)
        let client = try #require(driver.clients.first)
        try client.openSubchannels(1)
        #expect(client.channels.count == 2)
        let bells = synic.doorbells.withLock { Array($0.active.values) }
        #expect(bells.count == 2)
        // The guest clears O_NONBLOCK on every doorbell the host gave it and floods them: the host's workers
        // drain a bounded amount per wake and keep serving.
        for b in bells {
            clearNonBlocking(b.sendFD)
            #expect(flood(b.sendFD) > 0)
        }
        for channel in client.channels { try client.pump(channel: channel, count: 2_000, size: 64) }
        #expect(client.completions.load(ordering: .relaxed) == 4_000)
        // Then it shuts one doorbell down for good: that channel's worker falls back to timed waits (no busy
        // loop), and echoes on it still complete, slowly.
        let first = client.channels[0]
        let dead = try #require(synic.doorbells.withLock { $0.active[first.offer.connectionID] })
        _ = Glibc.shutdown(dead.sendFD, Int32(SHUT_RDWR))
        try client.pump(channel: first, count: 20, size: 64, window: 1)
        try client.pump(channel: client.channels[1], count: 2_000, size: 64)
        #expect(client.completions.load(ordering: .relaxed) == 6_020)
        let port = try #require(fixture.lastPort)
        let hostBell = try #require(port.doorbells.withLock { $0[first.offer.connectionID] })
        try eventually("the host sees the doorbell dead", seconds: 5) { hostBell.isDead }
        let wakeups = hostBell.wakeups.load(ordering: .relaxed)
        sleepNanoseconds(300_000_000)
        #expect(hostBell.wakeups.load(ordering: .relaxed) == wakeups)
        // Stop is bounded: the listener, every partition and its workers.
        #expect(finishes(within: 10) { fixture.stop() })
        bus.disconnect()
    }

    @Test func aGuestMemfdOnHugetlbfsIsRefused() throws {
        let fd = vmbus_shim_memfd_create("huge", vmbus_shim_mfd_cloexec() | vmbus_shim_mfd_allow_sealing() | 0x0004 /* MFD_HUGETLB */)
        guard fd >= 0 else { return }  // no hugetlbfs here: nothing to refuse
        defer { close(fd) }
        guard ftruncate(fd, 2 << 20) == 0, vmbus_shim_add_seals(fd, vmbus_shim_seal_shrink() | vmbus_shim_seal_grow()) == 0 else {
            return
        }
        let fixture = try HostFixture()
        defer { fixture.stop() }
        let rogue = try RogueGuest(path: fixture.socket)
        try rogue.socket.send(TransportFrame(type: .hello, payload: TransportHello(memoryBytes: 2 << 20, eventFlagsPFN: 0).bytes),
                              fds: [fd, rogue.sint.sendFD])
        #expect(try rogue.helloReply().status == .badMemory)
        #expect(fixture.listener.partitionCount == 0)
    }

    // MARK: - §6: no offer without its doorbell

    @Test func aDoorbellThatCannotBeHandedOverDisconnectsTheGuestInsteadOfOfferingWithoutIt() throws {
        let fixture = try HostFixture()
        defer { fixture.stop() }
        let rogue = try RogueGuest(path: fixture.socket)
        #expect(try rogue.hello().status == .ok)
        let port = try #require(fixture.lastPort)
        // The guest stops reading; the host offers channel after channel until its socket is full.
        var failedAt: UInt32?
        for relID in UInt32(100)..<UInt32(2_000) {
            if !port.postMessage(offerBytes(relID: relID, connectionID: 0x4000 + relID)) { failedAt = relID; break }
        }
        #expect(failedAt != nil)
        #expect(port.failedDoorbells.load(ordering: .relaxed) + port.droppedMessages.load(ordering: .relaxed) >= 1)
        // What the guest read: every offer came after its doorbell, then the connection ended.
        var doorbells: Set<UInt32> = []
        var offers = 0
        loop: while true {
            switch rogue.receive(timeoutMilliseconds: 5_000) {
            case .frame(let f, let fds):
                for fd in fds { close(fd) }
                if f.type == .doorbell { doorbells.insert(try TransportDoorbell(bytes: f.payload).connectionID); continue }
                if case .offerChannel(let o) = try ChannelMessage.parse(f.payload) {
                    #expect(doorbells.contains(o.connectionID), "offer 0x\(String(o.connectionID, radix: 16)) without its doorbell")
                    offers += 1
                }
            case .closed: break loop
            case .malformed, .timedOut: throw FixtureError("no hang-up")
            }
        }
        #expect(offers > 0)
        try eventually("partition released") { fixture.listener.partitionCount == 0 }
    }

    // MARK: - The guest as victim

    @Test func aHostThatBlocksFloodsOrShutsDoorbellsAndTheSINTCannotStallTheGuest() throws {
        let host = try SocketGuestTests.HandHost(reply: TransportHelloReply(status: .ok, partitionID: 3))
        let synic = try SocketGuestSynIC(path: host.directory.socket, memoryPages: 16)
        let (c, _, fds) = try host.accepted()
        defer { for fd in fds { close(fd) } }
        let sink = RecordingSink()
        synic.start(sink)

        // A doorbell, made blocking and full by the host, which never reads it.
        let bell = try Doorbell()
        clearNonBlocking(bell.sendFD)
        flood(bell.sendFD)
        try c.send(TransportFrame(type: .doorbell, payload: TransportDoorbell(connectionID: 0x2001).bytes), fds: [bell.sendFD])
        try c.send(TransportFrame(type: .channelMessage, payload: offerBytes(relID: 1, connectionID: 0x2001)))
        try eventually("offer delivered") { sink.messages.withLock { $0.count } == 1 }
        #expect(finishes(within: 5) { for _ in 0..<20_000 { synic.signalEvent(connectionID: 0x2001) } })
        _ = Glibc.shutdown(bell.sendFD, Int32(SHUT_RDWR))
        #expect(finishes(within: 5) { for _ in 0..<20_000 { synic.signalEvent(connectionID: 0x2001) } })

        // The SINT the guest handed over: the host clears O_NONBLOCK, floods it, then shuts it down.
        let sint = fds[1]
        clearNonBlocking(sint)
        #expect(flood(sint) > 0)
        try c.send(TransportFrame(type: .channelMessage, payload: [0x20, 0, 0, 0, 0, 0, 0, 0]))
        try eventually("message after the flood") { sink.messages.withLock { $0.count } == 2 }
        _ = Glibc.shutdown(sint, Int32(SHUT_RDWR))
        try eventually("the SINT is seen dead", seconds: 5) { synic.sint.isDead }
        // No busy loop on it, and interrupts still arrive (the flags page is polled on a timer).
        let wakeups = synic.sint.wakeups.load(ordering: .relaxed)
        let hostView = try GuestMemory(mapping: dup(fds[0]), size: 16 * 4096)
        try hostView.writeBytes(gpa: 512, [0x04])  // relid 2
        try eventually("interrupt without a signal", seconds: 5) { sink.interrupts.withLock { $0.contains(2) } }
        sleepNanoseconds(200_000_000)
        #expect(synic.sint.wakeups.load(ordering: .relaxed) == wakeups)
        try c.send(TransportFrame(type: .channelMessage, payload: [0x21, 0, 0, 0, 0, 0, 0, 0]))
        try eventually("messages still delivered") { sink.messages.withLock { $0.count } == 3 }

        // Host loss is still noticed, and stop is bounded.
        c.shutdown()
        try eventually("host lost", seconds: 5) { sink.lost.withLock { $0 } }
        #expect(finishes(within: 5) { synic.stop() })
    }

    @Test func fifteenThousandDoorbellsFromARogueHostDoNotExhaustTheGuestsDescriptors() throws {
        let host = try SocketGuestTests.HandHost(reply: TransportHelloReply(status: .ok, partitionID: 4))
        let synic = try SocketGuestSynIC(path: host.directory.socket, memoryPages: 16)
        let (c, _, fds) = try host.accepted()
        defer { for fd in fds { close(fd) } }
        let sink = RecordingSink()
        synic.start(sink)
        let before = openDescriptorCount()
        let bell = try Doorbell()
        for i in UInt32(0)..<15_000 {
            try c.send(TransportFrame(type: .doorbell, payload: TransportDoorbell(connectionID: 0x10000 + i).bytes), fds: [bell.sendFD])
        }
        try c.send(TransportFrame(type: .channelMessage, payload: [0x30, 0, 0, 0, 0, 0, 0, 0]))
        try eventually("all doorbells handled", seconds: 30) { sink.messages.withLock { $0.count } == 1 }
        // None was offered: at most GuestDoorbells.maxPending are held, every other one was refused.
        #expect(synic.doorbellCount <= GuestDoorbells.maxPending)
        #expect(openDescriptorCount() - before < 200, "\(openDescriptorCount() - before) more descriptors")
        #expect(synic.violations.load(ordering: .relaxed) >= 15_000 - GuestDoorbells.maxPending)
        // Pending ones expire when no offer names them.
        for _ in 0..<Int(GuestDoorbells.pendingLifetimeFrames) + 1 {
            try c.send(TransportFrame(type: .channelMessage, payload: [0x31, 0, 0, 0, 0, 0, 0, 0]))
        }
        try eventually("pending doorbells expired") { synic.doorbellCount == 0 }
        // The honest order still works: DOORBELL, then the OFFERCHANNEL that names it.
        let real = try Doorbell()
        try c.send(TransportFrame(type: .doorbell, payload: TransportDoorbell(connectionID: 0x2005).bytes), fds: [real.sendFD])
        try c.send(TransportFrame(type: .channelMessage, payload: offerBytes(relID: 5, connectionID: 0x2005)))
        try eventually("doorbell active") { synic.doorbells.withLock { $0.active[0x2005] != nil } }
        synic.signalEvent(connectionID: 0x2005)
        #expect(real.wait(timeoutNanoseconds: 2_000_000_000))
        c.shutdown()
        synic.stop()
    }

    @Test func theGuestRefusesAHostOfAnUntrustedUIDBeforeHandingOverItsMemory() throws {
        let directory = try SocketDirectory()
        let listening = try UnixSeqpacketSocket.listen(path: directory.socket)
        let got = Condition<(Int, [Int32])?>(nil)
        startThread(name: "untrusted-host") {
            guard let c = try? listening.accept(timeoutMilliseconds: 5_000) else { return }
            _ = c.poll(with: -1, timeoutMilliseconds: 5_000)
            let r = try? c.receive(maxFDs: 4)
            got.update { $0 = (r == nil ? 0 : 1, r?.1 ?? []) }
        }
        #expect(throws: HostNotTrusted.self) {
            _ = try SocketGuestSynIC(path: directory.socket, memoryPages: 16, allowedHostUIDs: [getuid() &+ 1])
        }
        // The host read end-of-stream: no HELLO, no memfd.
        let seen = try #require(got.wait(timeoutNanoseconds: 5_000_000_000) { $0 })
        #expect(seen.0 == 0)
        #expect(seen.1.isEmpty)
    }
}
