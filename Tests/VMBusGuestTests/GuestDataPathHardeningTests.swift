import Atomics
import Testing
@testable import VMBusGuest
import VMBusProtocol
import VMBusRing
import VMBusTestSupport
import VMBusTransport
import VMBusWire

/// The guest against a hostile host on the data path (issue 6 §3, §5, §8): the test plays the host's end of
/// the rings itself (``ScriptedRings``) and checks what the guest does: closes the channel for real, rejects
/// and counts, stays responsive, frees ring pages only when nothing can touch them.
@Suite(.serialized)
struct GuestDataPathHardeningTests {
    /// Records every callback; `onPacket` runs inside the drain.
    final class Handler: GuestChannelHandler, @unchecked Sendable {
        let packets = Condition<[[UInt8]]>([])
        let failed = Condition<[(UInt64, GuestError)]>([])
        let closed = Condition<GuestError?>(nil)
        let onPacket: @Sendable ([UInt8]) -> Void
        init(onPacket: @escaping @Sendable ([UInt8]) -> Void = { _ in }) { self.onPacket = onPacket }

        func packetReceived(_ packet: ReceivedPacket, buffer: PacketBuffer, on channel: GuestChannel) {
            let bytes = buffer.payloadArray(of: packet)
            onPacket(bytes)
            packets.update { $0.append(bytes) }
        }
        func requestsFailed(contexts: [UInt64], error: GuestError, on channel: GuestChannel) {
            failed.update { f in for c in contexts { f.append((c, error)) } }
        }
        func channelClosed(_ channel: GuestChannel, error: GuestError) { closed.update { $0 = error } }
    }

    /// Opens the primary channel of every device it is probed for; closes it on remove.
    final class Driver: VMBusDriver, @unchecked Sendable {
        let name = "test_vsc"
        var classIDs: [GUID] { [EchoProtocol.classID] }
        let handler: Handler
        let channels = Condition<[UInt32: GuestChannel]>([:])
        init(handler: Handler) { self.handler = handler }
        func probe(_ device: GuestDevice) throws {
            let c = try device.open(handler: handler)
            channels.update { $0[device.relID] = c }
        }
        func remove(_ device: GuestDevice) {
            channels.update { $0.removeValue(forKey: device.relID) }?.close()
        }
    }

    static func bytes(_ n: UInt8, count: Int = 32) -> [UInt8] { [UInt8](repeating: n, count: count) }

    // MARK: - Oversized packets and mid-batch errors

    @Test func anOversizedPacketClosesTheChannelForRealAfterDeliveringThePacketsBeforeIt() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        let device = try #require(system.guest.devices.first)
        let free = system.partition.pages.freePageCount
        let handler = Handler()
        let channel = try device.open(maxPacketSize: 4096, handler: handler)
        for context: UInt64 in [21, 22] {
            try Self.bytes(1).withUnsafeBytes { _ = try channel.sendRequest($0, context: context) }
        }
        let rings = try system.host.rings(relID: 1)
        for n: UInt8 in 1...3 { try rings.write(Self.bytes(n)) }
        // Fits the 64 KiB ring, not the guest's 4 KiB packet buffer.
        try rings.write(Self.bytes(9, count: 6000))
        rings.interrupt()

        // The driver hears of it, with the cause; the requests fail with it too.
        let closed = try #require(handler.closed.wait(timeoutNanoseconds: 10_000_000_000) { $0 })
        guard case .channel(.ring(let why)) = closed else { Issue.record("closed with \(closed)"); return }
        #expect(why.contains("too large"))
        let failed = handler.failed.withLock { $0 }
        #expect(Set(failed.map(\.0)) == [21, 22])
        #expect(failed.allSatisfy { $0.1 == closed })
        // The host is told as on a normal close, and the ring pages come back once it confirmed.
        #expect(system.host.waitForMessage { $0 == .closeChannel(CloseChannel(childRelID: 1)) } != nil)
        #expect(system.host.waitForMessage { $0.type == .gpadlTeardown } != nil)
        try waitUntil { system.partition.pages.freePageCount == free }
        #expect(channel.isClosed)
        #expect(device.openChannels.isEmpty)
        // The three packets before the bad one were delivered exactly once, and were consumed.
        #expect(handler.packets.withLock { $0 } == [Self.bytes(1), Self.bytes(2), Self.bytes(3)])
        #expect(throws: GuestError.channel(.closed)) {
            try Self.bytes(1).withUnsafeBytes { try channel.sendInband($0) }
        }
        // The device still works: a new open succeeds.
        let again = try device.open(handler: Handler())
        again.close()
        #expect(system.host.messages(ofType: .closeChannel).count == 2)
    }

    @Test func aCorruptWriteIndexClosesTheChannelAndTellsTheHost() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        let device = try #require(system.guest.devices.first)
        let free = system.partition.pages.freePageCount
        let handler = Handler()
        let channel = try device.open(handler: handler)
        try channel.sendRequest(bytes: Self.bytes(1), context: 31)
        let rings = try system.host.rings(relID: 1)
        for n: UInt8 in 1...2 { try rings.write(Self.bytes(n)) }
        rings.interrupt()
        try waitUntil { handler.packets.withLock { $0.count } == 2 }
        // Not a multiple of 8: no packet can end there.
        try rings.corruptWriteIndex(13)
        rings.interrupt()
        let closed = try #require(handler.closed.wait(timeoutNanoseconds: 10_000_000_000) { $0 })
        guard case .channel(.ring(let why)) = closed else { Issue.record("closed with \(closed)"); return }
        #expect(why.contains("corrupt"))
        #expect(handler.failed.withLock { $0.map(\.0) } == [31])
        #expect(system.host.waitForMessage { $0 == .closeChannel(CloseChannel(childRelID: 1)) } != nil)
        #expect(system.host.waitForMessage { $0.type == .gpadlTeardown } != nil)
        try waitUntil { system.partition.pages.freePageCount == free }
        #expect(handler.packets.withLock { $0.count } == 2)
        #expect(channel.isClosed)
        #expect(system.guest.disconnect())
    }

    @Test func aBrokenChannelIsStillClosedWhenTheHostNeverAnswersTheTeardown() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)], timeoutMilliseconds: 300)
        defer { system.stop() }
        try system.connect()
        let device = try #require(system.guest.devices.first)
        let handler = Handler()
        let channel = try device.open(handler: handler)
        system.host.setScript { m in m.type == .gpadlTeardown ? .silence : .normal }
        let free = system.partition.pages.freePageCount
        let rings = try system.host.rings(relID: 1)
        try rings.write(Self.bytes(9, count: 6000))
        rings.interrupt()
        #expect(handler.closed.wait(timeoutNanoseconds: 10_000_000_000) { $0 } != nil)
        #expect(system.host.waitForMessage { $0.type == .gpadlTeardown } != nil)
        // The bus gives up on the teardown after its response timeout and keeps the pages out of use.
        system.guest.flushWork()
        #expect(channel.isClosed)
        #expect(system.partition.pages.freePageCount == free)
        #expect(device.openChannels.isEmpty)
    }

    // MARK: - A host that never drains

    @Test func aHostThatNeverDrainsGetsSendTimedOutAndCloseStillWorks() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        let device = try #require(system.guest.devices.first)
        let channel = try device.open(outgoingRingSize: 8192, handler: Handler())
        channel.endpoint.sendTimeoutNanoseconds = 200_000_000
        let start = monotonicNanoseconds()
        var sent = 0
        var failure: GuestError?
        while failure == nil && sent < 1000 {
            do throws(GuestError) {
                try channel.sendInband(bytes: Self.bytes(7, count: 64))
                sent += 1
            } catch { failure = error }
        }
        #expect(failure == .channel(.sendTimedOut))
        #expect(sent > 10 && sent < 100)
        #expect(monotonicNanoseconds() - start < 5_000_000_000)

        // A sender blocked on the full ring is woken by close, which then completes.
        channel.endpoint.sendTimeoutNanoseconds = 60_000_000_000
        let blocked = Background { () throws(GuestError) -> Bool in
            try channel.sendInband(bytes: Self.bytes(7, count: 64))
            return true
        }
        #expect(blocked.wait(timeoutNanoseconds: 100_000_000) == nil)
        let closeStart = monotonicNanoseconds()
        channel.close()
        #expect(monotonicNanoseconds() - closeStart < 5_000_000_000)
        let result = try #require(blocked.wait(timeoutNanoseconds: 5_000_000_000))
        #expect(throws: GuestError.channel(.closed)) { try result.get() }
        #expect(system.host.messages(ofType: .closeChannel).count == 1)
        #expect(system.guest.disconnect())
    }

    // MARK: - Late completions

    @Test func aLateCompletionForAReusedSlotIsRejectedAndTheNewRequestGetsItsOwn() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        let channel = try #require(system.guest.devices.first).open(requestSlots: 1, handler: Handler())
        let rings = try system.host.rings(relID: 1)
        #expect(throws: GuestError.timedOut("completion on channel 1")) {
            _ = try channel.request(Self.bytes(0xA0), timeoutNanoseconds: 50_000_000)
        }
        let first = try #require(rings.waitForPackets().first).0
        let second = Background { () throws(GuestError) -> [UInt8] in try channel.request(Self.bytes(0xB0)) }
        let secondID = try #require(rings.waitForPackets().first).0
        // The same slot (the table has one), another generation.
        #expect(secondID & 0xFFFF_FFFF == first & 0xFFFF_FFFF)
        #expect(secondID != first)

        try rings.complete(first, Self.bytes(0xAA))
        try waitUntil { channel.rejectedCompletions == 1 }
        #expect(second.wait(timeoutNanoseconds: 100_000_000) == nil)
        try rings.complete(secondID, Self.bytes(0xBB))
        let answer = try #require(second.wait())
        #expect(try answer.get() == Self.bytes(0xBB))
        #expect(channel.rejectedCompletions == 1)
        #expect(channel.requestor.outstanding == 0)
        channel.close()
    }

    // MARK: - Floods and starvation

    @Test func anInterruptFloodLeavesTheGuestResponsive() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1), offer(relID: 2, instance: 2)])
        defer { system.stop() }
        try system.connect()
        let handler = Handler()
        let channel = try #require(system.guest.device(instance: InProcessSystem.instanceID(1))).open(handler: handler)
        let stop = ManagedAtomic<Bool>(false)
        let flooded = ManagedAtomic<Int>(0)
        let partition = system.partition
        let flood = Background { () throws(GuestError) -> Bool in
            while !stop.load(ordering: .relaxed) {
                // The open channel, a relid never offered, one offered but not open, and the last flag bit.
                for relID: UInt32 in [1, 777, 2, 2047] { partition.host.interruptGuest(relID: relID) }
                flooded.wrappingIncrement(ordering: .relaxed)
            }
            return true
        }
        defer { stop.store(true, ordering: .relaxed) }
        try waitUntil { flooded.load(ordering: .relaxed) > 1000 }
        // Control messages still get through in time, and so do packets.
        let start = monotonicNanoseconds()
        let pages = try system.partition.pages.allocate(pages: 2)
        for _ in 0..<10 {
            let handle = try system.guest.createGPADL(relID: 1, pages: pages)
            try system.guest.teardownGPADL(relID: 1, handle: handle)
        }
        let rings = try system.host.rings(relID: 1)
        try rings.write(Self.bytes(5))
        try waitUntil { handler.packets.withLock { $0.count } == 1 }
        #expect(monotonicNanoseconds() - start < 10_000_000_000)
        stop.store(true, ordering: .relaxed)
        #expect(flood.wait() != nil)
        channel.close()
        #expect(system.guest.disconnect())
    }

    @Test func aRingKeptFullDoesNotStarveMessagesAndPacketsStayInOrder() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1), offer(relID: 2, instance: 2)])
        defer { system.stop() }
        try system.connect()
        // A driver that takes its time per packet: with the ring kept full, one drain would never end.
        let handler = Handler(onPacket: { _ in sleepNanoseconds(20_000) })
        let channel = try #require(system.guest.device(instance: InProcessSystem.instanceID(1))).open(handler: handler)
        let rings = try system.host.rings(relID: 1)
        let stop = ManagedAtomic<Bool>(false)
        let flood = Background { () throws(GuestError) -> UInt64 in
            var n: UInt64 = 0
            while !stop.load(ordering: .relaxed) {
                var payload = [UInt8](repeating: 0, count: 16)
                withUnsafeBytes(of: n.littleEndian) { for (i, b) in $0.enumerated() { payload[i] = b } }
                if (try? rings.write(payload)) == true {
                    n += 1
                    rings.interrupt()
                } else {
                    sleepNanoseconds(10_000)
                }
            }
            return n
        }
        defer { stop.store(true, ordering: .relaxed) }
        // More than two budgets: the drain has been handed on at least once.
        try waitUntil { handler.packets.withLock { $0.count } > 600 }
        let start = monotonicNanoseconds()
        let pages = try system.partition.pages.allocate(pages: 2)
        for _ in 0..<5 {
            let handle = try system.guest.createGPADL(relID: 2, pages: pages)
            try system.guest.teardownGPADL(relID: 2, handle: handle)
        }
        let other = try #require(system.guest.device(instance: InProcessSystem.instanceID(2))).open(handler: Handler())
        other.close()
        #expect(monotonicNanoseconds() - start < 10_000_000_000)
        stop.store(true, ordering: .relaxed)
        let written = try #require(flood.wait()).get()
        try waitUntil { UInt64(handler.packets.withLock { $0.count }) == written }
        // Delivered once each, in the order written, although two threads took turns draining.
        let sequence = handler.packets.withLock { $0 }.map { p in
            p.prefix(8).enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) }
        }
        #expect(sequence == Array(0..<written))
        channel.close()
        #expect(system.guest.disconnect())
    }

    // MARK: - Rescind during traffic

    @Test func aRescindDuringADrainFreesTheRingOnlyAfterTheDrainHasLeft() throws {
        let entered = Latch()
        let release = Latch()
        let handler = Handler(onPacket: { _ in
            entered.open()
            _ = release.wait(timeoutNanoseconds: 10_000_000_000)
        })
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        let driver = Driver(handler: handler)
        let beforeOpen = system.partition.pages.freePageCount
        system.guest.register(driver)
        let channel = try #require(driver.channels.withLock { $0[1] })
        let bound = system.partition.pages.freePageCount
        #expect(bound < beforeOpen)
        try Self.bytes(1).withUnsafeBytes { _ = try channel.sendRequest($0, context: 5) }
        let rings = try system.host.rings(relID: 1)
        try rings.write(Self.bytes(3))
        // Drain on a thread of the test, standing for the interrupt thread, so the RESCIND can arrive meanwhile.
        let guest = system.guest
        let drain = Background { () throws(GuestError) -> Bool in guest.channelInterrupt(relID: 1); return true }
        #expect(entered.wait(timeoutNanoseconds: 10_000_000_000))
        system.host.send(.rescindChannelOffer(RescindChannelOffer(childRelID: 1)))
        // The rescind is seen at once (requests fail), but the close waits for the drain.
        try waitUntil { handler.failed.withLock { $0.count } == 1 }
        #expect(handler.failed.withLock { $0.first?.1 } == .rescinded(relID: 1))
        sleepNanoseconds(200_000_000)
        #expect(system.partition.pages.freePageCount == bound)
        #expect(system.host.messages(ofType: .closeChannel).isEmpty)
        release.open()
        #expect(drain.wait() != nil)
        #expect(system.host.waitForMessage { $0 == .relIDReleased(RelIDReleased(childRelID: 1)) } != nil)
        try waitUntil { system.partition.pages.freePageCount == beforeOpen }
        #expect(system.host.messages(ofType: .closeChannel).count == 1)
        #expect(system.guest.devices.isEmpty)
    }

    @Test func aRescindDuringTrafficFailsEverythingAndTheGuestUnloadsCleanly() throws {
        let handler = Handler()
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        let driver = Driver(handler: handler)
        let free = system.partition.pages.freePageCount
        system.guest.register(driver)
        let channel = try #require(driver.channels.withLock { $0[1] })
        let rings = try system.host.rings(relID: 1)
        let stop = ManagedAtomic<Bool>(false)
        let hostTraffic = Background { () throws(GuestError) -> Bool in
            while !stop.load(ordering: .relaxed) {
                if (try? rings.write(Self.bytes(4))) == true { rings.interrupt() } else { sleepNanoseconds(10_000) }
            }
            return true
        }
        let guestTraffic = Background { () throws(GuestError) -> Int in
            var context: UInt64 = 0
            while true {
                context += 1
                do throws(GuestError) {
                    try channel.sendRequest(bytes: Self.bytes(1), context: context)
                } catch .channel(.tooManyOutstandingRequests) {
                    sleepNanoseconds(10_000)
                }
            }
        }
        defer { stop.store(true, ordering: .relaxed) }
        try waitUntil { handler.packets.withLock { $0.count } > 100 }
        system.host.send(.rescindChannelOffer(RescindChannelOffer(childRelID: 1)))
        let sendResult = try #require(guestTraffic.wait())
        // A send already past the rescind check finds the endpoint closed instead.
        #expect {
            try sendResult.get()
        } throws: { error in
            [GuestError.rescinded(relID: 1), .channel(.closed)].contains(error as? GuestError)
        }
        #expect(system.host.waitForMessage { $0 == .relIDReleased(RelIDReleased(childRelID: 1)) } != nil)
        stop.store(true, ordering: .relaxed)
        #expect(hostTraffic.wait() != nil)
        try waitUntil { system.partition.pages.freePageCount == free }
        #expect(handler.failed.withLock { $0 }.allSatisfy { $0.1 == .rescinded(relID: 1) })
        #expect(channel.requestor.outstanding == 0)
        #expect(system.guest.disconnect())
    }

    // MARK: - DOORBELL_REVOKE

    @Test func aRevokedDoorbellLeavesTheChannelWorkingByPolling() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        let channel = try #require(system.guest.devices.first).open(handler: Handler())
        let rings = try system.host.rings(relID: 1)
        let doorbell = system.partition.host.doorbell(connectionID: channel.offer.connectionID)
        system.partition.host.removeDoorbell(connectionID: channel.offer.connectionID)
        // Signals now go nowhere: the guest neither fails nor stops; the host polls the ring.
        let signalsBefore = channel.endpoint.signalsSent.load(ordering: .relaxed)
        let answer = Background { () throws(GuestError) -> [UInt8] in try channel.request(Self.bytes(0xC0)) }
        let request = try #require(rings.waitForPackets().first)
        #expect(request.1 == Self.bytes(0xC0))
        // The guest counts its signal after publishing the packet, so the host may see the packet first.
        try waitUntil { channel.endpoint.signalsSent.load(ordering: .relaxed) > signalsBefore }
        #expect(!doorbell.tryConsume())
        try rings.complete(request.0, Self.bytes(0xC1))
        #expect(try #require(answer.wait()).get() == Self.bytes(0xC1))
        channel.close()
        #expect(system.host.messages(ofType: .closeChannel).count == 1)
        #expect(system.guest.disconnect())
    }

    // MARK: - Echo pump against a silent host

    @Test func theEchoPumpThrowsWhenTheHostGoesSilent() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        let driver = EchoDriver()
        system.guest.register(driver)
        let client = try #require(driver.clients.first)
        let channel = try #require(client.channels.first)
        let start = monotonicNanoseconds()
        #expect(throws: EchoPumpError.timedOut(completed: 0, of: 10)) {
            try client.pump(channel: channel, count: 10, window: 4, timeoutNanoseconds: 200_000_000)
        }
        #expect(monotonicNanoseconds() - start < 5_000_000_000)
        #expect(throws: GuestError.invalidArgument("echo requests are 16 B...1 MiB with a window of at least one")) {
            try client.pump(channel: channel, count: 1, size: 8)
        }
    }
}

extension GuestChannel {
    /// The send methods with typed throws from an array (`withUnsafeBytes` would erase the error type).
    func sendInband(bytes: [UInt8]) throws(GuestError) {
        let r: Result<Void, GuestError> = bytes.withUnsafeBytes { p in
            do throws(GuestError) { try sendInband(p); return .success(()) } catch { return .failure(error) }
        }
        try r.get()
    }

    func sendRequest(bytes: [UInt8], context: UInt64) throws(GuestError) {
        let r: Result<Void, GuestError> = bytes.withUnsafeBytes { p in
            do throws(GuestError) { _ = try sendRequest(p, context: context); return .success(()) }
            catch { return .failure(error) }
        }
        try r.get()
    }
}
