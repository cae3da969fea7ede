import Testing
@testable import VMBusGuest
import VMBusProtocol
import VMBusTestSupport
import VMBusTransport
import VMBusWire

/// The guest against a malicious or broken host (PROTOCOL.md §2.4-2.5, §13): bad offers, wrong-direction
/// and garbage messages, unsolicited responses, refusals, silence and a vanished host. The guest must
/// reject and count, fail the caller with a clear error, and never crash.
@Suite(.serialized)
struct GuestBusHardeningTests {
    // MARK: - Offers

    @Test func offersWithRelIDZeroOrAbove2047AreRejected() throws {
        let system = try ScriptedSystem(offers: [
            offer(relID: 0, instance: 1), offer(relID: 2048, instance: 2), offer(relID: 0xFFFF_FFFF, instance: 3),
            offer(relID: 5, instance: 4), offer(relID: 2047, instance: 5),
        ])
        defer { system.stop() }
        try system.connect()
        #expect(system.guest.devices.map(\.relID) == [5, 2047])
        #expect(system.guest.rejectedMessages == 3)
        #expect(system.guest.lastRejection?.contains("outside 1...2047") == true)
    }

    @Test func duplicateOffersAndBadSubchannelOffersAreRejected() throws {
        let system = try ScriptedSystem(offers: [
            offer(relID: 1, instance: 1),  // a device
            offer(relID: 2, instance: 1),  // the same instance again with index 0
            offer(relID: 1, instance: 2),  // another device on a taken relid
            offer(relID: 3, instance: 1, subchannelIndex: 1),  // a sub-channel: fine
            offer(relID: 4, instance: 1, subchannelIndex: 1),  // the same sub-channel index again
            offer(relID: 3, instance: 1, subchannelIndex: 2),  // a sub-channel on a taken relid
            offer(relID: 5, instance: 9, subchannelIndex: 2),  // a sub-channel of no known device
            offer(relID: 6, instance: 1, subchannelIndex: 3, classID: DeviceClass.scsi.guid),  // of another class
        ])
        defer { system.stop() }
        try system.connect()
        let devices = system.guest.devices
        #expect(devices.map(\.relID) == [1])
        #expect(devices.first?.subchannelOffers.mapValues(\.childRelID) == [1: 3])
        #expect(system.guest.rejectedMessages == 6)
    }

    @Test func offersArrivingLaterAreValidatedToo() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        system.host.send(.offerChannel(offer(relID: 1, instance: 1)))
        system.host.send(.offerChannel(offer(relID: 0, instance: 7)))
        system.host.send(.offerChannel(offer(relID: 8, instance: 8)))
        try waitUntil { system.guest.rejectedMessages == 2 && system.guest.devices.count == 2 }
        #expect(system.guest.devices.map(\.relID) == [1, 8])
    }

    // MARK: - Garbage and wrong direction

    static let guestToHostMessages: [ChannelMessage] = [
        .initiateContact(InitiateContact(versionRequested: .copper, targetVCPU: 0, messageSINT: 2)),
        .requestOffers(RequestOffers()),
        .openChannel(OpenChannel(childRelID: 1, openID: 1, ringBufferGPADLHandle: 1, targetVP: 0,
                                 downstreamRingBufferPageOffset: 2)),
        .closeChannel(CloseChannel(childRelID: 1)),
        .gpadlHeader(GPADLMessages.split(childRelID: 1, gpadl: 1, ranges: [GPARange(wholePages: [1])]).header),
        .gpadlBody(GPADLBody(gpadl: 1, data: [1, 0, 0, 0, 0, 0, 0, 0])),
        .gpadlTeardown(GPADLTeardown(childRelID: 1, gpadl: 1)),
        .relIDReleased(RelIDReleased(childRelID: 1)),
        .unload(Unload()),
        .openReservedChannel(OpenReservedChannel(childRelID: 1, targetVP: 0, targetSINT: 2, ringBufferGPADLHandle: 1,
                                                 downstreamRingBufferPageOffset: 2)),
        .closeReservedChannel(CloseReservedChannel(childRelID: 1, targetVP: 0, targetSINT: 2)),
        .tlConnectRequest(TLConnectRequest(guestEndpointID: InProcessSystem.instanceID(1),
                                           hostServiceID: InProcessSystem.instanceID(2))),
        .modifyChannel(ModifyChannel(childRelID: 1, targetVP: 1)),
        .modifyConnection(ModifyConnection(monitorPage1: 0, monitorPage2: 0)),
        .pause(Pause()),
        .resume(Resume()),
    ]

    @Test func everyGuestToHostMessageSentByTheHostIsRejected() throws {
        #expect(Set(Self.guestToHostMessages.map(\.type))
            == Set(ChannelMessage.table.filter { $0.direction == .guestToHost }.map(\.type)))
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        for m in Self.guestToHostMessages { system.host.send(m) }
        try waitUntil { system.guest.rejectedMessages == Self.guestToHostMessages.count }
        #expect(system.guest.lastRejection?.contains("sent by the host") == true)
        #expect(system.guest.devices.count == 1)
        #expect(system.guest.version == .copper)
    }

    @Test func garbageBytesAreRejectedCountedAndTheGuestKeepsWorking() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        let valid = ChannelMessage.offerChannel(offer(relID: 9, instance: 9)).bytes
        var tooLong = valid
        tooLong += [UInt8](repeating: 0, count: 241 - tooLong.count)
        let garbage: [[UInt8]] = [
            [], [1, 2, 3], [0, 0, 0, 0, 0, 0, 0, 0], [30, 0, 0, 0, 0, 0, 0, 0], [0xFF, 0xFF, 0, 0, 0, 0, 0, 0, 1, 2],
            tooLong, Array(valid.prefix(195)), Array(valid.prefix(8)),
            Array(ChannelMessage.rescindChannelOffer(RescindChannelOffer(childRelID: 1)).bytes.prefix(11)),
            Array(ChannelMessage.openChannelResult(OpenChannelResult(childRelID: 1, openID: 1, status: 0)).bytes.prefix(19)),
            Array(ChannelMessage.versionResponse(VersionResponse(versionSupported: true, messageConnectionID: 1)).bytes.prefix(15)),
            [UInt8](repeating: 0xFF, count: 240),
        ]
        for g in garbage { system.host.send(raw: g) }
        try waitUntil { system.guest.rejectedMessages == garbage.count }
        // The device is untouched and still opens (the truncated RESCIND did not remove it).
        let device = try #require(system.guest.devices.first)
        #expect(device.relID == 1)
        let channel = try device.open(handler: RecordingHandler())
        channel.close()
        #expect(system.guest.rejectedMessages == garbage.count)
    }

    /// What the registry must hold after a sequence of offers and rescinds: the rules of `addOffer` and
    /// `rescind`, written again independently.
    struct RegistryModel {
        struct Device { var primary: UInt32; var subchannels: [UInt16: UInt32] = [:] }
        var devices: [UInt32: Device] = [:]  // by instance number
        /// relid → instance number of the device it belongs to (a primary's rescind leaves its sub-channels').
        var byRelID: [UInt32: UInt32] = [:]
        var rejections = 0

        mutating func offer(relID: UInt32, instance: UInt32, subchannelIndex: UInt16, sameClass: Bool) {
            guard GuestBus.validRelIDs.contains(relID) else { rejections += 1; return }
            if var d = devices[instance] {
                guard sameClass, subchannelIndex != 0, byRelID[relID] == nil, d.subchannels[subchannelIndex] == nil else {
                    rejections += 1
                    return
                }
                d.subchannels[subchannelIndex] = relID
                devices[instance] = d
                byRelID[relID] = instance
                return
            }
            guard subchannelIndex == 0, byRelID[relID] == nil else { rejections += 1; return }
            devices[instance] = Device(primary: relID)
            byRelID[relID] = instance
        }

        mutating func rescind(relID: UInt32) {
            guard GuestBus.validRelIDs.contains(relID), let instance = byRelID[relID] else { rejections += 1; return }
            byRelID[relID] = nil
            guard var d = devices[instance] else { return }
            if d.primary == relID {
                devices[instance] = nil
            } else {
                d.subchannels = d.subchannels.filter { $0.value != relID }
                devices[instance] = d
            }
        }
    }

    @Test func randomOffersRescindsVersionsAndGarbageKeepTheRegistryConsistent() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        var model = RegistryModel()
        model.offer(relID: 1, instance: 1, subchannelIndex: 0, sameClass: true)
        var rng = SplitMix64(seed: 7)
        let relIDs: [UInt32] = Array(0...10) + [2047, 2048, 0xFFFF_FFFF]
        for _ in 0..<800 {
            switch Int.random(in: 0..<100, using: &rng) {
            case 0..<25:
                let relID = relIDs.randomElement(using: &rng)!
                let instance = UInt32.random(in: 1...6, using: &rng)
                let index: UInt16 = Bool.random(using: &rng) ? 0 : UInt16.random(in: 1...3, using: &rng)
                let sameClass = Int.random(in: 0..<8, using: &rng) != 0
                model.offer(relID: relID, instance: instance, subchannelIndex: index, sameClass: sameClass)
                system.host.send(.offerChannel(offer(relID: relID, instance: instance, subchannelIndex: index,
                                                     classID: sameClass ? EchoProtocol.classID : DeviceClass.scsi.guid)))
            case 25..<45:
                let relID = relIDs.randomElement(using: &rng)!
                model.rescind(relID: relID)
                system.host.send(.rescindChannelOffer(RescindChannelOffer(childRelID: relID)))
            case 45..<55:
                // After the handshake a VERSION_RESPONSE changes nothing, whatever it says.
                system.host.send(.versionResponse(VersionResponse(versionSupported: Bool.random(using: &rng),
                                                                  messageConnectionID: UInt32.random(in: 0...9, using: &rng))))
            case 55..<70:
                // Truncated offers, rescinds and version responses: refused by the parser.
                let whole: [UInt8] = [
                    ChannelMessage.offerChannel(offer(relID: 3, instance: 3)).bytes,
                    ChannelMessage.rescindChannelOffer(RescindChannelOffer(childRelID: 1)).bytes,
                    ChannelMessage.versionResponse(VersionResponse(versionSupported: true, messageConnectionID: 1)).bytes,
                ].randomElement(using: &rng)!
                // One byte short, or not even a header (shorter ones may be valid in older versions).
                let length = Bool.random(using: &rng) ? whole.count - 1 : Int.random(in: 0..<8, using: &rng)
                system.host.send(raw: Array(whole.prefix(length)))
                model.rejections += 1
            default:
                var bytes = (0..<Int.random(in: 0...250, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if bytes.count >= 8, Bool.random(using: &rng) {
                    // A host-to-guest type that cannot create devices or end waits we rely on below.
                    bytes[0] = [6, 10, 12, 17, 20, 23, 24, 26, 28].randomElement(using: &rng)!
                    bytes[1] = 0; bytes[2] = 0; bytes[3] = 0
                }
                system.host.send(raw: bytes)
            }
        }
        // Messages are handled in order: once this offer is in, every message before it was seen.
        system.host.send(.offerChannel(offer(relID: 2000, instance: 99)))
        try waitUntil { system.guest.device(instance: InProcessSystem.instanceID(99)) != nil }
        system.guest.flushWork()
        model.offer(relID: 2000, instance: 99, subchannelIndex: 0, sameClass: true)

        let devices = system.guest.devices
        #expect(Set(devices.map(\.relID)) == Set(model.devices.values.map(\.primary)))
        for (n, d) in model.devices {
            let device = try #require(system.guest.device(instance: InProcessSystem.instanceID(n)))
            #expect(device.relID == d.primary)
            #expect(device.subchannelOffers.mapValues(\.childRelID) == d.subchannels)
        }
        system.guest.registry.withLock { r in
            #expect(Set(r.byRelID.keys) == Set(model.byRelID.keys))
        }
        #expect(system.guest.rejectedMessages >= model.rejections)
        #expect(model.rejections > 50)
        #expect(model.devices.count > 1)
        // Every device still in the registry opens, and the guest unloads cleanly.
        for device in devices {
            let channel = try device.open(handler: RecordingHandler())
            channel.close()
        }
        #expect(system.guest.disconnect())
    }

    // MARK: - Rescind

    @Test func aRescindOfAnUnknownRelIDIsRejected() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        for relID: UInt32 in [77, 0, 5000, 0xFFFF_FFFF] {
            system.host.send(.rescindChannelOffer(RescindChannelOffer(childRelID: relID)))
        }
        try waitUntil { system.guest.rejectedMessages >= 4 }
        system.guest.flushWork()
        #expect(system.guest.rejectedMessages == 4)
        #expect(system.guest.devices.map(\.relID) == [1])
        #expect(system.host.messages(ofType: .relIDReleased).isEmpty)
    }

    @Test func aRescindRemovesTheDeviceAndReleasesTheRelIDOnce() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1), offer(relID: 2, instance: 2)])
        defer { system.stop() }
        try system.connect()
        system.host.send(.rescindChannelOffer(RescindChannelOffer(childRelID: 1)))
        system.host.send(.rescindChannelOffer(RescindChannelOffer(childRelID: 1)))
        #expect(system.host.waitForMessage { $0 == .relIDReleased(RelIDReleased(childRelID: 1)) } != nil)
        try waitUntil { system.guest.rejectedMessages == 1 }
        system.guest.flushWork()
        #expect(system.guest.devices.map(\.relID) == [2])
        #expect(system.host.messages(ofType: .relIDReleased).count == 1)
        #expect(system.guest.rejectedMessages == 1)
    }

    @Test func aRescindWhileWaitingForTheOpenResultFailsTheOpenAtOnce() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)], timeoutMilliseconds: 10_000)
        defer { system.stop() }
        try system.connect()
        system.host.setScript { m in
            if case .openChannel = m { return .silence }  // Hyper-V ignores OPENCHANNEL for a rescinded channel
            return .normal
        }
        let device = try #require(system.guest.devices.first)
        let start = monotonicNanoseconds()
        let open = Background { () throws(GuestError) -> GuestChannel in try device.open(handler: RecordingHandler()) }
        #expect(system.host.waitForMessage { $0.type == .openChannel } != nil)
        system.host.send(.rescindChannelOffer(RescindChannelOffer(childRelID: 1)))
        let result = try #require(open.wait())
        #expect(throws: GuestError.rescinded(relID: 1)) { try result.get() }
        #expect(monotonicNanoseconds() - start < 5_000_000_000)
    }

    @Test func aRescindWhileWaitingForGPADLCreatedFailsTheGPADLAtOnce() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)], timeoutMilliseconds: 10_000)
        defer { system.stop() }
        try system.connect()
        system.host.setScript { m in m.type == .gpadlHeader ? .silence : .normal }
        let pages = try system.partition.pages.allocate(pages: 4)
        let guest = system.guest
        let gpadl = Background { () throws(GuestError) -> UInt32 in try guest.createGPADL(relID: 1, pages: pages) }
        #expect(system.host.waitForMessage { $0.type == .gpadlHeader } != nil)
        system.host.send(.rescindChannelOffer(RescindChannelOffer(childRelID: 1)))
        let result = try #require(gpadl.wait(timeoutNanoseconds: 5_000_000_000))
        #expect(throws: GuestError.rescinded(relID: 1)) { try result.get() }
    }

    // MARK: - Refusals

    @Test func anOpenChannelResultFailureMakesOpenThrowRefusedAndFreesTheRing() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        system.host.setScript { m in
            if case .openChannel(let o) = m {
                return .messages([.openChannelResult(OpenChannelResult(childRelID: o.childRelID, openID: o.openID,
                                                                       status: 0xC000_0001))])
            }
            return .normal
        }
        let device = try #require(system.guest.devices.first)
        let free = system.partition.pages.freePageCount
        #expect(throws: GuestError.refused("OPENCHANNEL for relid 1", status: 0xC000_0001)) {
            _ = try device.open(handler: RecordingHandler())
        }
        // Linux order: the ring GPADL is torn down, and only after TORNDOWN are its pages freed.
        #expect(system.host.messages(ofType: .gpadlTeardown).count == 1)
        #expect(system.partition.pages.freePageCount == free)
        #expect(device.openChannels.isEmpty)
        #expect(system.guest.rejectedMessages == 0)
        // The host changes its mind: the next open works.
        system.host.setScript { _ in .normal }
        let channel = try device.open(handler: RecordingHandler())
        channel.close()
    }

    @Test func anOpenResultWithTheWrongOpenIDIsIgnoredAndTheOpenTimesOut() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)], timeoutMilliseconds: 500)
        defer { system.stop() }
        try system.connect()
        system.host.setScript { m in
            if case .openChannel(let o) = m {
                return .messages([.openChannelResult(OpenChannelResult(childRelID: o.childRelID, openID: o.openID + 1,
                                                                       status: 0))])
            }
            return .normal
        }
        let device = try #require(system.guest.devices.first)
        #expect(throws: GuestError.timedOut("OPENCHANNEL_RESULT for relid 1")) {
            _ = try device.open(handler: RecordingHandler())
        }
        #expect(system.guest.rejectedMessages == 1)
    }

    @Test func aGPADLCreatedFailureMakesCreateGPADLThrowRefused() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        system.host.setScript { m in
            if case .gpadlHeader(let h) = m {
                return .messages([.gpadlCreated(GPADLCreated(childRelID: h.childRelID, gpadl: h.gpadl,
                                                             creationStatus: 0x8000_FFFF))])
            }
            return .normal
        }
        let pages = try system.partition.pages.allocate(pages: 40)
        #expect(throws: GuestError.refused("GPADL 0x\(String(GuestBus.firstGPADLHandle, radix: 16))",
                                           status: 0x8000_FFFF)) {
            _ = try system.guest.createGPADL(relID: 1, pages: pages)
        }
        // An open whose ring GPADL is refused fails the same way, and frees its ring pages.
        let device = try #require(system.guest.devices.first)
        let free = system.partition.pages.freePageCount
        #expect {
            _ = try device.open(handler: RecordingHandler())
        } throws: { error in
            guard case GuestError.refused(_, status: 0x8000_FFFF) = error else { return false }
            return true
        }
        #expect(system.partition.pages.freePageCount == free)
    }

    @Test func aGPADLCreatedForAnotherRelIDIsIgnored() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)], timeoutMilliseconds: 500)
        defer { system.stop() }
        try system.connect()
        system.host.setScript { m in
            if case .gpadlHeader(let h) = m {
                return .messages([.gpadlCreated(GPADLCreated(childRelID: h.childRelID + 1, gpadl: h.gpadl,
                                                             creationStatus: 0))])
            }
            return .normal
        }
        let pages = try system.partition.pages.allocate(pages: 2)
        #expect {
            _ = try system.guest.createGPADL(relID: 1, pages: pages)
        } throws: { error in
            guard case GuestError.timedOut = error else { return false }
            return true
        }
        #expect(system.guest.rejectedMessages == 1)
        #expect(system.guest.lastRejection?.contains("unsolicited GPADL_CREATED") == true)
    }

    // MARK: - Unsolicited responses

    @Test func unsolicitedResponsesAreRejectedAndNotKept() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        for n in UInt32(1)...300 {
            system.host.send(.openChannelResult(OpenChannelResult(childRelID: n, openID: n, status: 0)))
            system.host.send(.gpadlCreated(GPADLCreated(childRelID: 1, gpadl: n * 7, creationStatus: 0)))
            system.host.send(.gpadlTorndown(GPADLTorndown(gpadl: n * 13)))
        }
        system.host.send(.modifyChannelResponse(ModifyChannelResponse(childRelID: 0xFFFF, status: 0)))
        system.host.send(.modifyChannelResponse(ModifyChannelResponse(childRelID: 1, status: 0)))
        system.host.send(.tlConnectResult(TLConnectResult(guestEndpointID: InProcessSystem.instanceID(1),
                                                          hostServiceID: InProcessSystem.instanceID(2), status: -1)))
        try waitUntil { system.guest.rejectedMessages == 902 }
        system.guest.responses.withLock { r in
            #expect(r.openResults.isEmpty)
            #expect(r.gpadlCreated.isEmpty)
            #expect(r.gpadlTorndown.isEmpty)
        }
        // Nothing was disturbed.
        let channel = try #require(system.guest.devices.first).open(handler: RecordingHandler())
        channel.close()
        #expect(system.guest.rejectedMessages == 902)
    }

    // MARK: - A host that never answers

    @Test func noVersionResponseTimesOut() throws {
        let system = try ScriptedSystem(timeoutMilliseconds: 500)
        defer { system.stop() }
        system.host.setScript { _ in .silence }
        #expect(throws: GuestError.timedOut("VERSION_RESPONSE to 6.0")) { try system.connect() }
        #expect(system.guest.version == nil)
    }

    @Test func refusingEveryVersionEndsWithNoCommonVersion() throws {
        let system = try ScriptedSystem(tryOrder: [.win10_v5_3, .win10, .win8])
        defer { system.stop() }
        system.host.setScript { m in
            guard case .initiateContact = m else { return .normal }
            return .messages([.versionResponse(VersionResponse(versionSupported: false, messageConnectionID: 1))])
        }
        #expect(throws: GuestError.noCommonVersion(tried: [.win10_v5_3, .win10, .win8])) { try system.connect() }
        #expect(system.host.messages(ofType: .initiateContact).count == 3)
    }

    @Test func noAllOffersDeliveredTimesOut() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)], timeoutMilliseconds: 500)
        defer { system.stop() }
        system.host.setScript { m in
            guard case .requestOffers = m else { return .normal }
            return .messages([.offerChannel(offer(relID: 1, instance: 1))])
        }
        #expect(throws: GuestError.timedOut("ALLOFFERS_DELIVERED")) { try system.connect() }
    }

    @Test func noGPADLCreatedTimesOutAndTheOpenLeaksItsRingRatherThanReuseIt() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)], timeoutMilliseconds: 500)
        defer { system.stop() }
        try system.connect()
        system.host.setScript { m in m.type == .gpadlHeader ? .silence : .normal }
        let pages = try system.partition.pages.allocate(pages: 2)
        #expect(throws: GuestError.timedOut("GPADL_CREATED for 0x\(String(GuestBus.firstGPADLHandle, radix: 16))")) {
            _ = try system.guest.createGPADL(relID: 1, pages: pages)
        }
        let device = try #require(system.guest.devices.first)
        let free = system.partition.pages.freePageCount
        #expect {
            _ = try device.open(outgoingRingSize: 16384, incomingRingSize: 16384, handler: RecordingHandler())
        } throws: { error in
            guard case GuestError.timedOut = error else { return false }
            return true
        }
        // The host may still hold a GPADL over the ring pages: they are not handed out again.
        #expect(system.partition.pages.freePageCount == free - 8)
    }

    @Test func noOpenChannelResultTimesOutAndTheRingIsTornDown() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)], timeoutMilliseconds: 500)
        defer { system.stop() }
        try system.connect()
        system.host.setScript { m in m.type == .openChannel ? .silence : .normal }
        let device = try #require(system.guest.devices.first)
        let free = system.partition.pages.freePageCount
        #expect(throws: GuestError.timedOut("OPENCHANNEL_RESULT for relid 1")) {
            _ = try device.open(handler: RecordingHandler())
        }
        #expect(system.host.messages(ofType: .gpadlTeardown).count == 1)
        #expect(system.partition.pages.freePageCount == free)
    }

    @Test func noGPADLTorndownTimesOut() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)], timeoutMilliseconds: 500)
        defer { system.stop() }
        try system.connect()
        system.host.setScript { m in m.type == .gpadlTeardown ? .silence : .normal }
        let pages = try system.partition.pages.allocate(pages: 2)
        let handle = try system.guest.createGPADL(relID: 1, pages: pages)
        #expect(throws: GuestError.timedOut("GPADL_TORNDOWN for 0x\(String(handle, radix: 16))")) {
            try system.guest.teardownGPADL(relID: 1, handle: handle)
        }
    }

    @Test func aRequestTheHostNeverCompletesTimesOutAndGivesItsIDBack() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)])
        defer { system.stop() }
        try system.connect()
        let channel = try #require(system.guest.devices.first).open(requestSlots: 1, handler: RecordingHandler())
        for _ in 0..<3 {
            #expect(throws: GuestError.timedOut("completion on channel 1")) {
                _ = try channel.request([1, 0, 0, 0, 0, 0, 0, 0], timeoutNanoseconds: 20_000_000)
            }
            #expect(channel.requestor.outstanding == 0)
        }
        channel.close()
    }

    @Test func anEarlyUnloadResponseDoesNotEndTheWaitForTheRealOne() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)], timeoutMilliseconds: 500)
        try system.connect()
        system.host.setScript { m in m.type == .unload ? .silence : .normal }
        system.host.send(.unloadResponse(UnloadResponse()))
        try waitUntil { system.guest.responses.withLock { $0.unloadResponse } }
        let start = monotonicNanoseconds()
        system.stop()
        #expect(monotonicNanoseconds() - start >= 400_000_000)
        #expect(system.host.messages(ofType: .unload).count == 1)
    }

    // MARK: - Host lost

    @Test func hostLostFailsAWaitingOpen() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)], timeoutMilliseconds: 20_000)
        defer { system.stop() }
        try system.connect()
        system.host.setScript { m in m.type == .openChannel ? .silence : .normal }
        let device = try #require(system.guest.devices.first)
        let start = monotonicNanoseconds()
        let open = Background { () throws(GuestError) -> GuestChannel in try device.open(handler: RecordingHandler()) }
        #expect(system.host.waitForMessage { $0.type == .openChannel } != nil)
        system.guest.hostLost()
        let result = try #require(open.wait())
        #expect(throws: GuestError.hostLost) { try result.get() }
        #expect(monotonicNanoseconds() - start < 10_000_000_000)
        #expect(system.guest.isHostLost)
    }

    @Test func hostLostFailsAWaitingHandshake() throws {
        let system = try ScriptedSystem(timeoutMilliseconds: 20_000)
        defer { system.stop() }
        system.host.setScript { _ in .silence }
        let guest = system.guest
        let connect = Background { () throws(GuestError) -> Bool in try guest.connect(); return true }
        #expect(system.host.waitForMessage { $0.type == .initiateContact } != nil)
        guest.hostLost()
        let result = try #require(connect.wait())
        #expect(throws: GuestError.hostLost) { try result.get() }
        // connect ran on another thread: disconnect here so the bus thread ends.
        guest.disconnect()
    }

    @Test func hostLostFailsOutstandingRequestsAndLaterCalls() throws {
        let system = try ScriptedSystem(offers: [offer(relID: 1, instance: 1)], timeoutMilliseconds: 20_000)
        defer { system.stop() }
        try system.connect()
        let device = try #require(system.guest.devices.first)
        let handler = RecordingHandler()
        let channel = try device.open(handler: handler)
        // Nobody serves the channel: requests stay outstanding.
        let payload = [UInt8](repeating: 1, count: 32)
        for context: UInt64 in [10, 11, 12] {
            try payload.withUnsafeBytes { _ = try channel.sendRequest($0, context: context) }
        }
        #expect(channel.requestor.outstanding == 3)
        let sync = Background { () throws(GuestError) -> [UInt8] in try channel.request(payload) }
        try waitUntil { channel.requestor.outstanding == 4 }

        system.guest.hostLost()
        try waitUntil { handler.failed.withLock { $0.count } == 3 }
        let failed = handler.failed.withLock { $0 }
        #expect(Set(failed.map(\.0)) == [10, 11, 12])
        #expect(failed.allSatisfy { $0.1 == .hostLost })
        let result = try #require(sync.wait())
        #expect(throws: GuestError.hostLost) { try result.get() }
        #expect(channel.isClosed)
        #expect(channel.requestor.outstanding == 0)

        // Closing needs no host (nothing is posted), and everything that would need one now fails at once.
        let start = monotonicNanoseconds()
        channel.close()
        #expect(monotonicNanoseconds() - start < 5_000_000_000)
        #expect(system.host.messages(ofType: .closeChannel).isEmpty)
        let pages = try system.partition.pages.allocate(pages: 1)
        #expect(throws: GuestError.hostLost) { _ = try system.guest.createGPADL(relID: 1, pages: pages) }
        #expect(throws: GuestError.hostLost) { _ = try device.open(handler: RecordingHandler()) }
    }
}
