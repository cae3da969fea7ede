import Testing
import VMBusGuest
import VMBusHost
import VMBusProtocol
import VMBusTestSupport
import VMBusTransport
import VMBusWire

/// Host and guest in one process, end to end: offers, a late driver, channels and sub-channels, a million
/// echo packets with completions, multi-message GPADLs, close, rescind and unload.
@Suite(.serialized)
struct InProcessLifecycleTests {
    @Test func fullLifecycleWithThreeDevicesSubchannelsAndAMillionEchoes() throws {
        let system = try InProcessSystem(memoryPages: 8192)
        let echoes = (1...3).map { EchoDevice(instanceID: InProcessSystem.instanceID($0), maxSubchannels: 4) }
        for e in echoes { system.host.addDevice(e) }
        try system.start()
        #expect(system.guest.version == .copper)
        #expect(system.guest.devices.count == 3)

        // A driver registered after the offers arrived still gets every device.
        let driver = EchoDriver()
        system.guest.register(driver)
        #expect(driver.clients.count == 3)
        #expect(echoes.allSatisfy { $0.channelsOpened.load(ordering: .relaxed) == 1 })

        let client = try #require(driver.client(for: InProcessSystem.instanceID(1)))
        try client.openSubchannels(3, scatteredPages: true)
        #expect(client.channels.count == 4)
        #expect(Set(client.channels.map(\.subchannelIndex)) == [0, 1, 2, 3])
        #expect(client.device.subchannelOffers.count == 3)

        // 1 M echo requests with completions, spread over the primary and three sub-channels at once (fewer
        // under a sanitizer, which slows every step 5–15×).
        let perChannel = Sanitizer.scaled(250_000)
        let channels = client.channels
        let finished = Latch()
        let failures = Condition<[String]>([])
        let remaining = Condition(channels.count)
        for channel in channels {
            startThread(name: "pump-\(channel.relID)") {
                do { try client.pump(channel: channel, count: perChannel, size: 64 + Int(channel.subchannelIndex) * 40) }
                catch { failures.update { $0.append("\(error)") } }
                if remaining.update({ $0 -= 1; return $0 }) == 0 { finished.open() }
            }
        }
        #expect(finished.wait(timeoutNanoseconds: Sanitizer.nanoseconds(300_000_000_000)))
        #expect(failures.withLock { $0 }.isEmpty)
        #expect(client.completions.load(ordering: .relaxed) == UInt64(perChannel * channels.count))
        #expect(client.mismatches.load(ordering: .relaxed) == 0)
        #expect(channels.allSatisfy { $0.rejectedCompletions == 0 })
        #expect(echoes[0].packetsEchoed.load(ordering: .relaxed) >= UInt64(perChannel * channels.count))

        // A GPADL of 100 pages needs a header and three bodies (26 + 3 × 28 PFNs).
        let pages = try system.partition.pages.allocate(pages: 100, scattered: true)
        let relID = client.device.relID
        let handle = try system.guest.createGPADL(relID: relID, pages: pages)
        let hostView = system.host.server.gpadls[handle]
        #expect(hostView?.state == .ready([GPARange(byteCount: 100 * 4096, byteOffset: 0, pfns: pages)]))
        try system.guest.teardownGPADL(relID: relID, handle: handle)
        #expect(system.host.server.gpadls[handle] == nil)
        system.partition.pages.release(pages)

        // Close one sub-channel: the host stops serving it and forgets its ring GPADL.
        let sub = channels[3]
        sub.close()
        #expect(system.host.server.channels[sub.relID]?.state == .offered)

        // Rescind device 2: the guest removes it, fails nothing (idle) and releases the relid.
        let rescindedRelID = try #require(driver.client(for: InProcessSystem.instanceID(2))).device.relID
        echoes[1].rescind()
        try waitUntil { system.host.server.channels[rescindedRelID] == nil }
        system.guest.flushWork()
        #expect(system.guest.device(instance: InProcessSystem.instanceID(2)) == nil)
        #expect(driver.clients.count == 2)
        #expect(echoes[1].channelsClosed.load(ordering: .relaxed) == 1)

        // UNLOAD: every channel closed on both sides, the host back to disconnected.
        system.stop()
        #expect(system.host.server.connection == .disconnected)
        #expect(system.host.server.gpadls.isEmpty)
        #expect(system.host.openChannels.isEmpty)
        #expect(system.host.server.rejectedMessages == 0)
        #expect(system.guest.rejectedMessages == 0)
    }

    @Test(arguments: [
        (VMBusVersion.win10, VMBusVersion.win10),
        (VMBusVersion.win10_v5, VMBusVersion.win10_v5),
        (VMBusVersion.win10_v5_3, VMBusVersion.win10_v5_3),
        (VMBusVersion.copper, VMBusVersion.copper),
    ])
    func guestFallsBackToTheNewestVersionTheHostAccepts(hostMax: VMBusVersion, expected: VMBusVersion) throws {
        let system = try InProcessSystem(memoryPages: 1024, hostMaxVersion: hostMax)
        system.host.addDevice(EchoDevice(instanceID: InProcessSystem.instanceID(1)))
        try system.start()
        #expect(system.guest.version == expected)
        #expect(system.guest.devices.count == 1)
        system.stop()
    }

    @Test func linuxTryOrderWithoutSixPointZeroStopsAtFivePointThree() throws {
        let system = try InProcessSystem(memoryPages: 1024, hostMaxVersion: .copper, tryOrder: VMBusVersion.linuxTryOrder)
        try system.start()
        #expect(system.guest.version == .win10_v5_3)
        system.stop()
    }

    @Test func guestGivesUpWhenNoVersionIsCommon() throws {
        let system = try InProcessSystem(memoryPages: 1024, hostMaxVersion: .win8, tryOrder: [.win10_v5_3, .win10])
        system.host.start()
        #expect(throws: GuestError.noCommonVersion(tried: [.win10_v5_3, .win10])) { try system.guest.connect() }
        system.guest.disconnect()
        system.host.stop()
    }

    @Test func rescindFailsOutstandingRequestsWithAClearError() throws {
        let system = try InProcessSystem(memoryPages: 2048)
        let sink = SinkDevice(instanceID: InProcessSystem.instanceID(9))
        system.host.addDevice(sink)
        try system.start()
        let driver = EchoDriver()
        system.guest.register(driver)
        let client = try #require(driver.clients.first)
        let channel = try #require(client.channels.first)
        // The sink never completes: five requests stay outstanding until the rescind.
        var payload = [UInt8](repeating: 0, count: 32)
        payload[0] = 1
        for i in 0..<5 { try payload.withUnsafeBytes { _ = try channel.sendRequest($0, context: UInt64(i) | 32 << 40) } }
        try waitUntil { sink.received.withLock { $0 } == 5 }
        sink.rescind()
        try waitUntil { client.failedRequests.load(ordering: .relaxed) == 5 }
        #expect(channel.isRescinded)
        #expect(throws: GuestError.rescinded(relID: channel.relID)) {
            try payload.withUnsafeBytes { _ = try channel.sendRequest($0, context: 0) }
        }
        system.stop()
    }

    @Test func completionsWithUnknownOrRepeatedIDsAreRejectedAndCounted() throws {
        let system = try InProcessSystem(memoryPages: 2048)
        let sink = SinkDevice(instanceID: InProcessSystem.instanceID(10), rogueCompletions: [77, 1, 1, 0])
        system.host.addDevice(sink)
        try system.start()
        let driver = EchoDriver()
        system.guest.register(driver)
        let client = try #require(driver.clients.first)
        let channel = try #require(client.channels.first)
        var payload = [UInt8](repeating: 0, count: 32)
        payload[0] = 1
        // One real request (id 1); the rogue host completes id 77, id 1 twice and id 0.
        try payload.withUnsafeBytes { _ = try channel.sendRequest($0, context: 0 | 32 << 40) }
        try waitUntil { channel.rejectedCompletions == 3 }
        #expect(client.completions.load(ordering: .relaxed) == 1)
        system.stop()
    }
}

/// Polls `condition` for up to ten seconds.
func waitUntil(_ condition: () -> Bool) throws {
    let deadline = monotonicNanoseconds() + 10_000_000_000
    while !condition() {
        guard monotonicNanoseconds() < deadline else { throw GuestError.timedOut("test condition") }
        sleepNanoseconds(1_000_000)
    }
}
