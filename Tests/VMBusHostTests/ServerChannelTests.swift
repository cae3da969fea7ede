import Testing
import VMBusHost
import VMBusProtocol

/// OPENCHANNEL / OPENCHANNEL_RESULT, CLOSECHANNEL, rescind and RELID_RELEASED, UNLOAD, MODIFYCHANNEL and
/// TL_CONNECT_REQUEST (PROTOCOL.md §2.5-2.8, §4).
struct ServerChannelTests {
    /// A ring GPADL of 8 pages (PFNs 100...107) on relid 1.
    static let ring = GPARange(wholePages: (100..<108).map { UInt64($0) })

    /// A server connected at `version` with devices on relid 1 and 2 and the ring GPADL `firstHandle` of
    /// relid 1 ready.
    func ready(_ version: VMBusVersion = .copper) -> Server {
        var server = makeServer()
        server.add(testDevice(1))
        server.add(testDevice(2))
        server.connectAndRequestOffers(version)
        server.createGPADL(relID: 1, handle: firstHandle, pfns: Self.ring.pfns)
        return server
    }

    /// Opens relid 1 on the ready ring GPADL; the runtime's mapping succeeds.
    func openRelIDOne(_ server: inout Server) {
        #expect(server.feed(openMessage(relID: 1, gpadl: firstHandle, downstream: 4)).count == 1)
        #expect(server.channelOpenCompleted(relID: 1, status: 0).count == 1)
        #expect(server.channels[1]?.state == .open(gpadl: firstHandle, targetVP: 0))
    }

    func failure(relID: UInt32 = 1, openID: UInt32) -> [ServerAction] {
        [.send(.openChannelResult(OpenChannelResult(childRelID: relID, openID: openID, status: Server.statusFailure)))]
    }

    @Test func aValidOpenAsksTheRuntimeToMapTheRingsThenReportsSuccess() {
        var server = ready()
        let userData: [UInt8] = [1, 2, 3]
        let actions = server.feed(openMessage(relID: 1, openID: 0x77, gpadl: firstHandle, targetVP: 3, downstream: 4,
                                              userData: userData))
        #expect(actions == [.openChannel(relID: 1, ringRanges: [Self.ring], downstreamPageOffset: 4, targetVP: 3,
                                         userData: userData + [UInt8](repeating: 0, count: 117))])
        #expect(server.channels[1]?.state == .opening(openID: 0x77, gpadl: firstHandle, targetVP: 3))

        #expect(server.channelOpenCompleted(relID: 1, status: 0)
            == [.send(.openChannelResult(OpenChannelResult(childRelID: 1, openID: 0x77, status: 0)))])
        #expect(server.channels[1]?.state == .open(gpadl: firstHandle, targetVP: 3))
        #expect(server.rejectedMessages == 0)
    }

    @Test(arguments: [UInt32(2), 3, 4, 5, 6])
    func everyDownstreamOffsetLeavingTwoPagesPerRingIsAccepted(downstream: UInt32) {
        var server = ready()
        let actions = server.feed(openMessage(relID: 1, gpadl: firstHandle, downstream: downstream))
        guard case .openChannel(_, _, let d, _, _) = actions.first else {
            Issue.record("expected an open, got \(actions)")
            return
        }
        #expect(d == downstream)
    }

    @Test func theRuntimeFailingToMapTheRingsIsReportedAndTheChannelCanBeOpenedAgain() {
        var server = ready()
        _ = server.feed(openMessage(relID: 1, openID: 5, gpadl: firstHandle, downstream: 4))
        #expect(server.channelOpenCompleted(relID: 1, status: 0xC000_0022)
            == [.send(.openChannelResult(OpenChannelResult(childRelID: 1, openID: 5, status: 0xC000_0022)))])
        #expect(server.channels[1]?.state == .offered)
        let again = server.feed(openMessage(relID: 1, openID: 6, gpadl: firstHandle, downstream: 4))
        #expect(again.count == 1)
        #expect(server.channels[1]?.state == .opening(openID: 6, gpadl: firstHandle, targetVP: 0))
    }

    @Test func anOpenCompletionForAChannelThatIsNotOpeningIsAnsweredWithAClose() {
        var server = ready()
        // Nothing pending on relid 2 (or an unknown relid): a successful mapping must be undone.
        #expect(server.channelOpenCompleted(relID: 2, status: 0) == [.closeChannel(relID: 2)])
        #expect(server.channelOpenCompleted(relID: 99, status: 0) == [.closeChannel(relID: 99)])
        #expect(server.channelOpenCompleted(relID: 2, status: 1).isEmpty)
    }

    enum BadOpen: String, CaseIterable, CustomTestStringConvertible {
        case unknownRelID, unofferedRelID, unknownGPADL, gpadlOfAnotherChannel, gpadlStillAssembling
        case downstreamZero, downstreamOne, downstreamLeavesOnePage, downstreamAtEnd, downstreamHuge
        case ringOfThreePages, twoRanges, rangeWithByteOffset, rangeNotWholePages
        case alreadyOpen, alreadyOpening
        var testDescription: String { rawValue }
    }

    @Test(arguments: BadOpen.allCases)
    func anInvalidOpenIsAnsweredWithAFailureCarryingTheGuestsOpenID(_ bad: BadOpen) {
        var server = ready()
        var relID: UInt32 = 1
        var gpadl = firstHandle
        var downstream: UInt32 = 4
        switch bad {
        case .unknownRelID: relID = 77
        case .unofferedRelID: relID = server.add(testDevice(3)); server.connect()
        case .unknownGPADL: gpadl = 0xBAD
        case .gpadlOfAnotherChannel:
            relID = 2
        case .gpadlStillAssembling:
            gpadl = 50
            let big = GPARange(wholePages: (0..<40).map { UInt64($0) })
            _ = server.feed(.gpadlHeader(GPADLMessages.split(childRelID: 1, gpadl: 50, ranges: [big]).header))
        case .downstreamZero: downstream = 0
        case .downstreamOne: downstream = 1
        case .downstreamLeavesOnePage: downstream = 7
        case .downstreamAtEnd: downstream = 8
        case .downstreamHuge: downstream = 0xFFFF_FFFF
        case .ringOfThreePages:
            gpadl = 51
            server.createGPADL(relID: 1, handle: 51, pfns: [1, 2, 3])
            downstream = 2
        case .twoRanges:
            gpadl = 52
            _ = server.createGPADL(relID: 1, handle: 52, ranges: [GPARange(wholePages: [1, 2, 3, 4]),
                                                                  GPARange(wholePages: [5, 6, 7, 8])])
        case .rangeWithByteOffset:
            gpadl = 53
            _ = server.createGPADL(relID: 1, handle: 53,
                                   ranges: [GPARange(byteCount: 8 * 4096 - 16, byteOffset: 16, pfns: (0..<8).map { $0 })])
        case .rangeNotWholePages:
            gpadl = 54
            _ = server.createGPADL(relID: 1, handle: 54,
                                   ranges: [GPARange(byteCount: 8 * 4096 - 1, byteOffset: 0, pfns: (0..<8).map { $0 })])
        case .alreadyOpen:
            server.open(relID: 2, handle: 60, firstPFN: 200)
            relID = 2; gpadl = 60
        case .alreadyOpening:
            _ = server.feed(openMessage(relID: 1, openID: 1, gpadl: firstHandle, downstream: 4))
        }
        let before = server.channels[relID]
        let rejected = server.rejectedMessages
        let actions = server.feed(openMessage(relID: relID, openID: 0xABCD, gpadl: gpadl, downstream: downstream))
        #expect(actions == failure(relID: relID, openID: 0xABCD))
        #expect(server.rejectedMessages == rejected + 1)
        #expect(server.channels[relID] == before)
    }

    @Test func closeChannelStopsServingAndTheChannelCanBeOpenedAgain() {
        var server = ready()
        openRelIDOne(&server)
        #expect(server.feed(.closeChannel(CloseChannel(childRelID: 1))) == [.closeChannel(relID: 1)])
        #expect(server.channels[1]?.state == .offered)
        // The ring GPADL stays until the guest tears it down; it can be reused for a new open.
        #expect(server.gpadls[firstHandle] != nil)
        #expect(server.feed(openMessage(relID: 1, gpadl: firstHandle, downstream: 4)).count == 1)
        #expect(server.channelOpenCompleted(relID: 1, status: 0).count == 1)
        #expect(server.rejectedMessages == 0)
    }

    @Test func closingAChannelWhileItsOpenIsPendingStopsIt() {
        var server = ready()
        _ = server.feed(openMessage(relID: 1, gpadl: firstHandle, downstream: 4))
        #expect(server.feed(.closeChannel(CloseChannel(childRelID: 1))) == [.closeChannel(relID: 1)])
        // The runtime's late success is undone, and no result is sent.
        #expect(server.channelOpenCompleted(relID: 1, status: 0) == [.closeChannel(relID: 1)])
    }

    @Test func closingAChannelThatIsNotOpenOrUnknownIsRejected() {
        var server = ready()
        #expect(server.feed(.closeChannel(CloseChannel(childRelID: 1))).isEmpty)
        #expect(server.feed(.closeChannel(CloseChannel(childRelID: 500))).isEmpty)
        #expect(server.rejectedMessages == 2)
    }

    @Test func rescindingAnOpenChannelClosesItAndSendsRescind() {
        var server = ready()
        openRelIDOne(&server)
        #expect(server.rescind(relID: 1)
            == [.closeChannel(relID: 1), .send(.rescindChannelOffer(RescindChannelOffer(childRelID: 1)))])
        #expect(server.channels[1]?.state == .rescinded)
        #expect(server.rescind(relID: 1).isEmpty)
    }

    @Test func rescindingAChannelWhoseOpenIsPendingSendsNoResult() {
        var server = ready()
        _ = server.feed(openMessage(relID: 1, gpadl: firstHandle, downstream: 4))
        #expect(server.rescind(relID: 1)
            == [.closeChannel(relID: 1), .send(.rescindChannelOffer(RescindChannelOffer(childRelID: 1)))])
        #expect(server.channelOpenCompleted(relID: 1, status: 0) == [.closeChannel(relID: 1)])
        #expect(server.channelOpenCompleted(relID: 1, status: 1).isEmpty)
    }

    @Test func openChannelOnARescindedChannelIsSilentlyIgnored() {
        var server = ready()
        _ = server.rescind(relID: 1)
        #expect(server.feed(openMessage(relID: 1, gpadl: firstHandle, downstream: 4)).isEmpty)
        #expect(server.channels[1]?.state == .rescinded)
        // Linux still posts CLOSECHANNEL for it: accepted quietly.
        #expect(server.feed(.closeChannel(CloseChannel(childRelID: 1))).isEmpty)
        #expect(server.rejectedMessages == 0)
    }

    @Test func relIDReleasedIsOnlyAcceptedAfterARescind() {
        var server = ready()
        #expect(server.feed(.relIDReleased(RelIDReleased(childRelID: 1))).isEmpty)
        #expect(server.feed(.relIDReleased(RelIDReleased(childRelID: 300))).isEmpty)
        #expect(server.rejectedMessages == 2)
        #expect(server.channels[1] != nil)
    }

    @Test func relIDReleasedFreesTheRelIDAndDropsItsGPADLs() {
        var server = ready()
        server.createGPADL(relID: 1, handle: 70, pfns: [9])
        server.createGPADL(relID: 2, handle: 71, pfns: [10])
        server.open(relID: 2, handle: 72, firstPFN: 400)
        _ = server.rescind(relID: 1)
        #expect(server.feed(.relIDReleased(RelIDReleased(childRelID: 1))) == [.releaseChannel(relID: 1)])
        #expect(server.channels[1] == nil)
        #expect(server.gpadls[firstHandle] == nil)
        #expect(server.gpadls[70] == nil)
        #expect(Set(server.gpadls.keys) == [71, 72])
        // Released twice: unknown now.
        #expect(server.feed(.relIDReleased(RelIDReleased(childRelID: 1))).isEmpty)
        #expect(server.rejectedMessages == 1)
        // The relid is free for the next device.
        #expect(server.add(testDevice(9)) == 1)
    }

    @Test func unloadClosesChannelsDropsGPADLsAndAnswers() {
        var server = ready()
        openRelIDOne(&server)
        server.createGPADL(relID: 2, handle: 80, pfns: [1])
        let gone = server.add(testDevice(3))
        _ = server.rescind(relID: gone)
        let actions = server.feed(.unload(Unload()))
        #expect(actions == [
            .closeChannel(relID: 1),
            .releaseChannel(relID: gone),
            .connectionReset,
            .send(.unloadResponse(UnloadResponse())),
        ])
        #expect(server.connection == .disconnected)
        #expect(server.gpadls.isEmpty)
        #expect(!server.offersRequested)
        #expect(server.channels.keys.sorted() == [1, 2])
        #expect(server.channels.values.allSatisfy { $0.state == .offered && !$0.offerSent })
        #expect(server.rejectedMessages == 0)
    }

    @Test func afterUnloadTheGuestCanConnectAndOpenAgain() {
        var server = ready()
        openRelIDOne(&server)
        _ = server.feed(.unload(Unload()))
        server.connectAndRequestOffers(.win10_v5_3)
        server.open(relID: 1, handle: firstHandle)
        #expect(server.channels[1]?.state == .open(gpadl: firstHandle, targetVP: 0))
    }

    @Test func modifyChannelIsAnsweredFromVersionFivePointThree() {
        var server = ready(.win10_v5_3)
        openRelIDOne(&server)
        #expect(server.reply(.modifyChannel(ModifyChannel(childRelID: 1, targetVP: 5)))
            == [.modifyChannelResponse(ModifyChannelResponse(childRelID: 1, status: 0))])
        #expect(server.channels[1]?.state == .open(gpadl: firstHandle, targetVP: 5))
    }

    @Test(arguments: [VMBusVersion.win10_v4_1, .win10_v5, .win10_v5_2])
    func modifyChannelBeforeFivePointThreeRetargetsSilently(version: VMBusVersion) {
        var server = ready(version)
        openRelIDOne(&server)
        #expect(server.feed(.modifyChannel(ModifyChannel(childRelID: 1, targetVP: 5))).isEmpty)
        #expect(server.channels[1]?.state == .open(gpadl: firstHandle, targetVP: 5))
        #expect(server.rejectedMessages == 0)
    }

    @Test func modifyChannelOfAChannelThatIsNotOpenIsAnsweredWithAFailureFromFivePointThree() {
        var server = ready(.win10_v5_3)
        for relID: UInt32 in [2, 1234] {
            #expect(server.reply(.modifyChannel(ModifyChannel(childRelID: relID, targetVP: 5)))
                == [.modifyChannelResponse(ModifyChannelResponse(childRelID: relID, status: Server.statusFailure))])
        }
        #expect(server.rejectedMessages == 2)
        #expect(server.channels[2]?.state == .offered)
    }

    @Test func modifyChannelOfAChannelThatIsNotOpenIsRejectedSilentlyBeforeFivePointThree() {
        var server = ready(.win10_v4_1)
        #expect(server.feed(.modifyChannel(ModifyChannel(childRelID: 2, targetVP: 5))).isEmpty)
        #expect(server.rejectedMessages == 1)
    }

    @Test func aTransportConnectRequestIsRefusedFromFourPointOneAndIgnoredAtFourPointZero() {
        let endpoint = GUIDs.a, service = GUIDs.b
        var server = ready(.win10_v4_1)
        #expect(server.reply(.tlConnectRequest(TLConnectRequest(guestEndpointID: endpoint, hostServiceID: service)))
            == [.tlConnectResult(TLConnectResult(guestEndpointID: endpoint, hostServiceID: service, status: -1))])
        var old = ready(.win10)
        #expect(old.feed(.tlConnectRequest(TLConnectRequest(guestEndpointID: endpoint, hostServiceID: service))).isEmpty)
        #expect(old.rejectedMessages == 0)
    }

    @Test func subchannelsOpenAndCloseIndependentlyOfThePrimary() throws {
        var server = ready()
        let device = testDevice(1)
        let added = server.addOffer(device, subchannelIndex: 1)
        let sub = try #require(added).0
        openRelIDOne(&server)
        server.open(relID: sub, handle: 90, firstPFN: 600)
        #expect(server.feed(.closeChannel(CloseChannel(childRelID: sub))) == [.closeChannel(relID: sub)])
        #expect(server.channels[1]?.state == .open(gpadl: firstHandle, targetVP: 0))
        #expect(server.channels[sub]?.state == .offered)
    }
}
