import Atomics
import Logging
import VMBusSync
import Testing
import VMBusHost
import VMBusMemory
import VMBusProtocol
import VMBusRing
import VMBusTestSupport
import VMBusTransport

/// A hostile guest against the real host runtime (VMBusHost, its workers and rings), through a port where the
/// test plays the guest: it keeps rings busy, sends oversized packets, rewrites the host's own ring indices,
/// places rings on the event-flags page and aliases ring pages, and checks exactly what the host answers and
/// what it writes to guest memory.
@Suite(.serialized)
struct HostHostileGuestTests {
    static let quiet: Logger = {
        var l = Logger(label: "vmbus.host.test")
        l.logLevel = .critical
        return l
    }()

    func makeHost(_ devices: [RecordingDevice], pages: Int = 512) throws -> (VMBusHost, RogueGuestPort) {
        let port = try RogueGuestPort(pages: pages)
        let host = VMBusHost(port: port, configuration: Server.Configuration(guestPageCount: UInt64(pages)),
                             logger: Self.quiet)
        for d in devices { host.addDevice(d) }
        host.start()
        RogueGuest.connect(host)
        return (host, port)
    }

    /// The messages that say "the host is done with this memory", and how the guest (or device) asks for them.
    enum Ending: String, CaseIterable, CustomTestStringConvertible {
        case unload, reconnect, rescind, closeThenTeardown
        var testDescription: String { rawValue }
    }

    /// A guest keeps the ring full while the host's handler is slow; then the connection (or channel) ends.
    /// The answer comes within a bound, only after the worker has exited, and nothing the host writes in guest
    /// memory moves after it.
    @Test(arguments: Ending.allCases)
    func theEndIsAnnouncedOnlyAfterTheWorkerStoppedAndBoundedWhateverTheGuestDoes(ending: Ending) throws {
        let device = RecordingDevice(handlerNanoseconds: 200_000)
        let (host, port) = try makeHost([device])
        defer { host.stop() }
        let ch = try RogueGuest.open(host, port, relID: 1, handle: 0xE1E10, pfns: (16..<32).map { UInt64($0) },
                                     downstream: 8)
        let bell = port.doorbell(connectionID: ch.connectionID)

        // The flood stops by itself after 3 s, so that a host that waits for an idle ring still ends the test.
        let flooding = ManagedAtomic<Bool>(true)
        let flooderDone = Latch()
        startThread(name: "flood") {
            let until = monotonicNanoseconds() + 3_000_000_000
            var tag: UInt8 = 0
            while flooding.load(ordering: .relaxed) && monotonicNanoseconds() < until {
                tag &+= 1
                if (try? ch.send(tag: tag)) != true { sleepNanoseconds(50_000) }
                bell.signal()
            }
            flooderDone.open()
        }
        defer { flooding.store(false, ordering: .relaxed); _ = flooderDone.wait(timeoutNanoseconds: 5_000_000_000) }
        #expect(within(seconds: 5) { device.packets.load(ordering: .relaxed) > 20 })

        struct Seen { var closedWhenPosted = -1; var words: [UInt32] = [] }
        let seen = Lock(Seen())
        let isEnding: @Sendable (ChannelMessage) -> Bool = { m in
            switch (ending, m) {
            case (.unload, .unloadResponse), (.reconnect, .versionResponse), (.rescind, .rescindChannelOffer),
                 (.closeThenTeardown, .gpadlTorndown):
                return true
            default:
                return false
            }
        }
        port.onPost.withLock {
            $0 = { m in
                guard isEnding(m) else { return }
                let closed = device.closed.load(ordering: .acquiring)
                let words = ch.hostWrittenWords()
                seen.withLock { $0 = Seen(closedWhenPosted: closed, words: words) }
            }
        }

        let start = monotonicNanoseconds()
        switch ending {
        case .unload:
            RogueGuest.post(host, .unload(Unload()))
        case .reconnect:
            RogueGuest.post(host, .initiateContact(InitiateContact(versionRequested: .copper, targetVCPU: 0,
                                                                   messageSINT: VMBusSynIC.messageSINT)))
        case .rescind:
            device.handle.withLock { $0 }?.rescind()
        case .closeThenTeardown:
            // Teardown of an open ring: answered only once the channel has stopped.
            RogueGuest.post(host, .gpadlTeardown(GPADLTeardown(childRelID: 1, gpadl: ch.gpadl)))
            #expect(!port.posted.contains { if case .gpadlTorndown = $0 { return true } else { return false } })
            RogueGuest.post(host, .closeChannel(CloseChannel(childRelID: 1)))
        }
        let elapsed = monotonicNanoseconds() - start
        #expect(elapsed < 2_000_000_000, "teardown took \(elapsed / 1_000_000) ms with a busy ring")

        let atPost = seen.withLock { $0 }
        #expect(atPost.closedWhenPosted == 1, "the answer was posted before the channel's worker had exited")
        sleepNanoseconds(50_000_000)
        #expect(ch.hostWrittenWords() == atPost.words, "the host wrote to guest memory after announcing the end")
    }

    /// A device rescinds itself from its own packet handler (on the worker thread, which cannot join itself):
    /// the RESCIND still goes out only after the worker's loop has ended, with more packets waiting.
    @Test func aDeviceThatRescindsItselfFromItsHandlerIsAnnouncedAfterItsWorkerEnds() throws {
        let device = RecordingDevice(handlerNanoseconds: 1_000_000, rescindOnTag: 3)
        let (host, port) = try makeHost([device])
        defer { host.stop() }
        let ch = try RogueGuest.open(host, port, relID: 1, handle: 0xE1E10, pfns: (16..<32).map { UInt64($0) },
                                     downstream: 8)
        struct Seen { var closedWhenPosted = -1; var words: [UInt32] = [] }
        let seen = Lock(Seen())
        port.onPost.withLock {
            $0 = { m in
                guard case .rescindChannelOffer = m else { return }
                sleepNanoseconds(5_000_000)  // give a worker that is still running the time to write
                let words = ch.hostWrittenWords()
                seen.withLock { $0 = Seen(closedWhenPosted: device.closed.load(ordering: .acquiring), words: words) }
            }
        }
        for t: UInt8 in 1...8 { #expect(try ch.send(tag: t)) }
        port.doorbell(connectionID: ch.connectionID).signal()
        #expect(within(seconds: 5) { seen.withLock { $0.closedWhenPosted } >= 0 })
        let atPost = seen.withLock { $0 }
        #expect(atPost.closedWhenPosted == 1, "RESCIND posted while the worker was still running")
        sleepNanoseconds(50_000_000)
        #expect(ch.hostWrittenWords() == atPost.words)
        #expect(device.tags.withLock { $0 } == [1, 2, 3], "no packet is handled after the device rescinded")
        #expect(ch.word(ch.toHost, 4) == 3 * 32, "the three handled packets are committed")
    }

    /// Two good packets, then one over the device's maximum packet size (4 KiB), then another good one, all in
    /// one batch. The good ones are delivered once and committed; the channel is rescinded, logged and counted.
    @Test func anOversizedPacketCommitsWhatCameBeforeAndRescindsTheChannel() throws {
        let device = RecordingDevice()
        let (host, port) = try makeHost([device])
        defer { host.stop() }
        let ch = try RogueGuest.open(host, port, relID: 1, handle: 0xE1E10, pfns: (16..<32).map { UInt64($0) },
                                     downstream: 8)
        #expect(try ch.send(tag: 1))
        #expect(try ch.send(tag: 2))
        #expect(try ch.send(tag: 3, payloadBytes: 6000))
        #expect(try ch.send(tag: 4))
        port.doorbell(connectionID: ch.connectionID).signal()

        let rescinded = within(seconds: 5) {
            port.posted.contains { $0 == .rescindChannelOffer(RescindChannelOffer(childRelID: 1)) }
        }
        #expect(rescinded)
        #expect(device.tags.withLock { $0 } == [1, 2])
        #expect(host.channelFailures == 1)
        #expect(host.lastChannelFailure?.contains("maximum packet size 4096") == true)
        // Committed up to the oversized packet: two 32-byte packets.
        #expect(ch.word(ch.toHost, 4) == 2 * UInt32(OutgoingRing.bytesNeeded(payloadCount: 8)))
        #expect(host.server.channels[1]?.state == .rescinded)
        #expect(within(seconds: 2) { device.closed.load(ordering: .relaxed) == 1 })
        // The guest releases the relid as after any rescind.
        RogueGuest.post(host, .relIDReleased(RelIDReleased(childRelID: 1)))
        #expect(host.server.channels[1] == nil)
    }

    /// The guest rewinds the host's own read_index after the host consumed three requests. The host keeps its
    /// own copy: it does not execute them again; it treats the ring as corrupt and rescinds the channel.
    @Test func aRewoundReadIndexIsCorruptionNotAReplay() throws {
        let device = RecordingDevice()
        let (host, port) = try makeHost([device])
        defer { host.stop() }
        let ch = try RogueGuest.open(host, port, relID: 1, handle: 0xE1E10, pfns: (16..<32).map { UInt64($0) },
                                     downstream: 8)
        let bell = port.doorbell(connectionID: ch.connectionID)
        for t: UInt8 in 1...3 { #expect(try ch.send(tag: t)) }
        bell.signal()
        #expect(within(seconds: 5) { device.packets.load(ordering: .relaxed) == 3 })
        #expect(within(seconds: 5) { ch.word(ch.toHost, 4) == ch.word(ch.toHost, 0) })

        ch.setWord(ch.toHost, 4, 0)
        #expect(try ch.send(tag: 9))
        bell.signal()
        #expect(within(seconds: 5) {
            port.posted.contains { $0 == .rescindChannelOffer(RescindChannelOffer(childRelID: 1)) }
        })
        sleepNanoseconds(20_000_000)
        #expect(device.tags.withLock { $0 } == [1, 2, 3])
        #expect(host.channelFailures == 1)
        #expect(host.lastChannelFailure?.contains("read_index was rewritten") == true)
    }

    /// The guest puts an invalid read_index on the host→guest ring. The host's next send sees it: the channel
    /// is rescinded, and the failure is logged and counted (it used to stop sending silently).
    @Test func aBadReadIndexOnTheHostToGuestRingRescindsTheChannel() throws {
        let device = RecordingDevice(replies: true)
        let (host, port) = try makeHost([device])
        defer { host.stop() }
        let ch = try RogueGuest.open(host, port, relID: 1, handle: 0xE1E10, pfns: (16..<32).map { UInt64($0) },
                                     downstream: 8)
        ch.setWord(ch.fromHost, 4, 3)
        #expect(try ch.send(tag: 1))
        port.doorbell(connectionID: ch.connectionID).signal()
        #expect(within(seconds: 5) {
            port.posted.contains { $0 == .rescindChannelOffer(RescindChannelOffer(childRelID: 1)) }
        })
        #expect(device.replyFailures.load(ordering: .relaxed) == 1)
        #expect(host.channelFailures == 1)
        #expect(host.lastChannelFailure?.contains("read_index 0x3 is invalid") == true)
        #expect(ch.word(ch.fromHost, 0) == 0, "nothing was written to the corrupt ring")
    }

    /// A ring GPADL that names the event-flags page (page 0 here) is refused with a failing GPADL_CREATED;
    /// the same ring elsewhere is accepted.
    @Test func aRingOnTheEventFlagsPageIsRefused() throws {
        let device = RecordingDevice()
        let (host, port) = try makeHost([device])
        defer { host.stop() }
        #expect(port.memory.isReserved(pfn: 0))
        let onFlags = [0] + (17..<24).map { UInt64($0) }
        #expect(RogueGuest.createGPADL(host, port, relID: 1, handle: 5, pfns: onFlags) == Server.statusFailure)
        #expect(host.server.gpadls[5] == nil)
        #expect(host.server.lastRejection?.contains("reserved") == true)
        #expect(RogueGuest.createGPADL(host, port, relID: 1, handle: 6, pfns: (16..<24).map { UInt64($0) }) == 0)
    }

    /// Malformed GPADL_HEADERs, as raw bytes a Linux-style guest waits on: each is answered with a failure.
    @Test func malformedGPADLHeadersAreAnsweredWithFailure() throws {
        let device = RecordingDevice()
        let (host, port) = try makeHost([device])
        defer { host.stop() }
        var handle: UInt32 = 0x100
        for (buflen, count): (UInt16, UInt16) in [(16, 0), (12, 1), (0, 1), (16, 3), (0xFFF8, 0xFFFF)] {
            handle += 1
            let header = GPADLHeader(childRelID: 1, gpadl: handle, rangeBufferLength: buflen, rangeCount: count,
                                     rangeData: [UInt8](repeating: 0, count: 16))
            host.guestMessage(connectionID: VMBusConnectionID.message4, header.wireBytes)
            #expect(port.posted.last == .gpadlCreated(GPADLCreated(childRelID: 1, gpadl: handle,
                                                                  creationStatus: Server.statusFailure)),
                    "range_buflen \(buflen), rangecount \(count)")
        }
    }

    /// Rounds of open and close over rings whose data pages all alias one guest page (16 MiB of ring for one
    /// page of guest memory): each channel's packet buffer is the device's 4 KiB, every channel object is
    /// released after close, and resident memory does not grow with the rounds.
    @Test func aliasedRingsCostTheDevicesPacketSizeAndMemoryReturnsAfterClose() throws {
        let devices = [RecordingDevice(instance: 1), RecordingDevice(instance: 2)]
        let (host, port) = try makeHost(devices)
        defer { host.stop() }
        // 8190 pages, the most one GPADL range can name: 4095 per ring, all data pages aliased.
        func ringPFNs(_ base: UInt64) -> [UInt64] {
            [base] + [UInt64](repeating: base + 1, count: 4094) + [base + 2] + [UInt64](repeating: base + 3, count: 4094)
        }
        var baseline = 0
        var handle: UInt32 = 0xE1E10
        for round in 0..<12 {
            for (i, device) in devices.enumerated() {
                let relID = UInt32(i + 1)
                handle += 1
                let ch = try RogueGuest.open(host, port, relID: relID, handle: handle,
                                             pfns: ringPFNs(UInt64(16 + 8 * i)), downstream: 4095)
                let capacities = device.channels.withLock { $0.compactMap { $0.channel?.endpoint.buffer.capacity } }
                #expect(capacities == [PacketBuffer.defaultCapacity])
                #expect(try ch.send(tag: UInt8(round)))
                port.doorbell(connectionID: ch.connectionID).signal()
                #expect(within(seconds: 5) { device.packets.load(ordering: .relaxed) == round + 1 })
                RogueGuest.post(host, .closeChannel(CloseChannel(childRelID: relID)))
                RogueGuest.post(host, .gpadlTeardown(GPADLTeardown(childRelID: relID, gpadl: handle)))
                #expect(port.posted.last == .gpadlTorndown(GPADLTorndown(gpadl: handle)))
                #expect(within(seconds: 5) { device.liveChannels == 0 }, "round \(round): channel still alive")
            }
            if round == 1 { baseline = residentBytes() }
        }
        let growth = residentBytes() - baseline
        // Ring-sized buffers would add 16 MiB per open (320 MiB over these rounds). Other suites run at the same
        // time, so the bound is loose. AddressSanitizer keeps freed memory in quarantine (256 MiB by default),
        // so resident memory says nothing there; the freed channels above still do.
        if Sanitizer.active != .address {
            #expect(growth < 96 << 20, "resident memory grew by \(growth >> 20) MiB over 10 rounds")
        }
    }
}
