import Testing
import VMBusHost
import VMBusProtocol
import VMBusTestSupport

/// REQUESTOFFERS, OFFERCHANNEL and ALLOFFERS_DELIVERED (PROTOCOL.md §2.4), relid allocation and reuse
/// (§2.5), sub-channel offers (§4.4).
struct ServerOfferTests {
    @Test func requestOffersSendsOneOfferPerDeviceInRelIDOrderThenAllOffersDelivered() {
        var server = makeServer()
        let relIDs = (1...5).map { server.add(testDevice($0)) }
        #expect(relIDs == [1, 2, 3, 4, 5])
        server.connect()
        let replies = server.reply(.requestOffers(RequestOffers()))
        #expect(replies.count == 6)
        let offered = replies.dropLast().compactMap { m -> UInt32? in
            if case .offerChannel(let o) = m { return o.childRelID } else { return nil }
        }
        #expect(offered == relIDs)
        #expect(replies.last == .allOffersDelivered(AllOffersDelivered()))
        #expect(server.offersRequested)
        #expect(relIDs.allSatisfy { server.channels[$0]?.offerSent == true })
    }

    @Test func withoutDevicesRequestOffersIsAnsweredWithAllOffersDeliveredAlone() {
        var server = makeServer()
        server.connect()
        #expect(server.reply(.requestOffers(RequestOffers())) == [.allOffersDelivered(AllOffersDelivered())])
    }

    @Test func anOfferNamesRelIDConnectionIDDedicatedInterruptAndNoMonitor() throws {
        var server = makeServer()
        let userDefined: [UInt8] = [4, 0, 0, 0, 0xAA, 0xBB]
        let relID = server.add(testDevice(7, flags: 0x10, mmioMegabytes: 8, userDefined: userDefined))
        let offers = server.connectAndRequestOffers()
        let offer = try #require(offers.first)
        #expect(offer.childRelID == relID)
        #expect(offer.connectionID == 0x2000 + relID)
        #expect(offer.connectionID == Server.connectionIDBase + relID)
        #expect(offer.isDedicatedInterrupt)
        #expect(offer.monitorID == 0xFF)
        #expect(!offer.monitorAllocated)
        #expect(offer.subchannelIndex == 0)
        #expect(offer.interfaceType == DeviceClass.echoTest.guid)
        #expect(offer.interfaceInstance == InProcessSystem.instanceID(7))
        #expect(offer.channelFlags == 0x10)
        #expect(offer.mmioMegabytes == 8)
        #expect(offer.userDefined == userDefined + [UInt8](repeating: 0, count: 120 - userDefined.count))

        // On the wire (196 bytes): user_def @60, sub_channel_index @180, child_relid @184, monitorid @188,
        // monitor_allocated @189, is_dedicated_interrupt @190, connection_id @192.
        let bytes = ChannelMessage.offerChannel(offer).bytes
        #expect(bytes.count == 196)
        #expect(Array(bytes[60..<66]) == userDefined)
        #expect(bytes[180..<182] == [0, 0])
        #expect(bytes[184..<188] == [UInt8(relID), 0, 0, 0])
        #expect(bytes[188] == 0xFF)
        #expect(bytes[189] == 0)
        #expect(bytes[190..<192] == [1, 0])
        #expect(bytes[192..<196] == [UInt8(relID), 0x20, 0, 0])
    }

    @Test func userDefinedDataLongerThan120BytesIsCut() {
        let device = testDevice(1, userDefined: [UInt8](repeating: 7, count: 200))
        #expect(device.userDefined.count == 120)
    }

    @Test func aSecondRequestOffersIsRejectedAndSendsNothing() {
        var server = makeServer()
        server.add(testDevice(1))
        #expect(server.connectAndRequestOffers().count == 1)
        #expect(server.feed(.requestOffers(RequestOffers())).isEmpty)
        #expect(server.rejectedMessages == 1)
        #expect(server.lastRejection?.contains("already requested") == true)
    }

    @Test func offersAddedBeforeRequestOffersWaitAndLaterOnesAreSentAtOnce() throws {
        var server = makeServer()
        server.connect()
        let earlyAdded = server.addOffer(testDevice(1), subchannelIndex: 0)
        let early = try #require(earlyAdded)
        #expect(early.1.isEmpty)
        #expect(server.channels[early.0]?.offerSent == false)
        #expect(server.reply(.requestOffers(RequestOffers())).count == 2)

        let lateAdded = server.addOffer(testDevice(2), subchannelIndex: 0)
        let late = try #require(lateAdded)
        #expect(late.0 == 2)
        guard case .send(.offerChannel(let offer)) = try #require(late.1.first), late.1.count == 1 else {
            Issue.record("expected one OFFERCHANNEL, got \(late.1)")
            return
        }
        #expect(offer.childRelID == 2)
        #expect(server.channels[2]?.offerSent == true)
    }

    @Test func subchannelOffersCarryTheirIndexAndTheirOwnRelIDAndConnectionID() throws {
        var server = makeServer()
        let device = testDevice(1)
        let primary = server.add(device)
        server.connectAndRequestOffers()
        var subOffers: [OfferChannel] = []
        for index in UInt16(1)...3 {
            let added = server.addOffer(device, subchannelIndex: index)
            let (relID, actions) = try #require(added)
            guard case .send(.offerChannel(let offer)) = try #require(actions.first) else {
                Issue.record("expected an offer, got \(actions)")
                return
            }
            #expect(offer.childRelID == relID)
            subOffers.append(offer)
        }
        #expect(subOffers.map(\.subchannelIndex) == [1, 2, 3])
        #expect(subOffers.map(\.childRelID) == [primary + 1, primary + 2, primary + 3])
        #expect(subOffers.allSatisfy { $0.interfaceInstance == device.instanceID && $0.interfaceType == device.classID })
        #expect(subOffers.map(\.connectionID) == subOffers.map { 0x2000 + $0.childRelID })
    }

    @Test func relIDsRunOutAfter2047Channels() {
        var server = makeServer()
        for n in 1...2047 {
            #expect(server.addOffer(testDevice(UInt32(n)), subchannelIndex: 0)?.0 == UInt32(n))
        }
        #expect(server.addOffer(testDevice(5000), subchannelIndex: 0) == nil)
        #expect(server.channels.count == 2047)
    }

    @Test func rescindingAnOfferTheGuestNeverSawReleasesItAtOnce() {
        var server = makeServer()
        let relID = server.add(testDevice(1))
        #expect(server.rescind(relID: relID) == [.releaseChannel(relID: relID)])
        #expect(server.channels[relID] == nil)
        #expect(server.add(testDevice(2)) == relID)
    }

    @Test func aRescindedRelIDIsNotReusedBeforeTheGuestReleasesIt() {
        var server = makeServer()
        let relID = server.add(testDevice(1))
        server.connectAndRequestOffers()
        #expect(server.rescind(relID: relID) == [.send(.rescindChannelOffer(RescindChannelOffer(childRelID: relID)))])
        let other = server.add(testDevice(2))
        #expect(other != relID)
        #expect(server.feed(.relIDReleased(RelIDReleased(childRelID: relID))) == [.releaseChannel(relID: relID)])
        #expect(server.add(testDevice(3)) == relID)
        #expect(server.rejectedMessages == 0)
    }

    @Test func rescindedChannelsAreNotOfferedAgain() {
        var server = makeServer()
        let a = server.add(testDevice(1))
        let b = server.add(testDevice(2))
        server.connectAndRequestOffers()
        _ = server.rescind(relID: a)
        // Rescinding twice, or an unknown relid, does nothing.
        #expect(server.rescind(relID: a).isEmpty)
        #expect(server.rescind(relID: 999).isEmpty)
        // After a reconnect only the live device is offered; the rescinded relid is released by the reset.
        server.connect()
        #expect(server.channels[a] == nil)
        let offers = server.reply(.requestOffers(RequestOffers()))
        #expect(offers.count == 2)
        guard case .offerChannel(let offer) = offers[0] else {
            Issue.record("expected an offer, got \(offers)")
            return
        }
        #expect(offer.childRelID == b)
    }
}
