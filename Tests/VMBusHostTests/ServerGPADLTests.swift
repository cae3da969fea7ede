import Testing
import VMBusHost
import VMBusProtocol

/// GPADL_HEADER / GPADL_BODY assembly, GPADL_CREATED, GPADL_TEARDOWN / GPADL_TORNDOWN (PROTOCOL.md §3).
struct ServerGPADLTests {
    /// A connected server with one offered device (relid 1).
    func connected(maxGPADLs: Int = 4096) -> Server {
        var server = makeServer(maxGPADLs: maxGPADLs)
        server.add(testDevice(1))
        server.connectAndRequestOffers()
        return server
    }

    func created(_ handle: UInt32, relID: UInt32 = 1, status: UInt32 = 0) -> [ChannelMessage] {
        [.gpadlCreated(GPADLCreated(childRelID: relID, gpadl: handle, creationStatus: status))]
    }

    @Test(arguments: [(1, 0), (26, 0), (27, 1), (54, 1), (55, 2), (200, 7)])
    func aGPADLSplitOverHeaderAndBodiesIsAssembledAndCreated(pages: Int, bodies: Int) {
        var server = connected()
        // Scattered, descending PFNs: the order must survive assembly.
        let pfns = (0..<UInt64(pages)).map { 1000 - 3 * $0 }
        let range = GPARange(wholePages: pfns)
        let (header, bodyMessages) = GPADLMessages.split(childRelID: 1, gpadl: firstHandle, ranges: [range])
        #expect(bodyMessages.count == bodies)

        var actions = server.feed(.gpadlHeader(header))
        for body in bodyMessages {
            #expect(actions.isEmpty)
            guard case .assembling(let a) = server.gpadls[firstHandle]?.state else {
                Issue.record("GPADL not assembling")
                return
            }
            #expect(!a.isComplete)
            actions = server.feed(.gpadlBody(body))
        }
        #expect(sentMessages(actions) == created(firstHandle))
        #expect(server.gpadls[firstHandle]?.relID == 1)
        #expect(server.gpadls[firstHandle]?.state == .ready([range]))
        #expect(server.rejectedMessages == 0)
    }

    @Test func twoGPADLsWithInterleavedBodiesAreAssembledIndependently() {
        var server = connected()
        let a = GPARange(wholePages: (0..<60).map { UInt64($0) })
        let b = GPARange(wholePages: (0..<60).map { UInt64(500 + $0) })
        let (ha, ba) = GPADLMessages.split(childRelID: 1, gpadl: 10, ranges: [a])
        let (hb, bb) = GPADLMessages.split(childRelID: 1, gpadl: 11, ranges: [b])
        #expect(server.feed(.gpadlHeader(ha)).isEmpty)
        #expect(server.feed(.gpadlHeader(hb)).isEmpty)
        #expect(server.feed(.gpadlBody(bb[0])).isEmpty)
        #expect(server.feed(.gpadlBody(ba[0])).isEmpty)
        #expect(server.reply(.gpadlBody(ba[1])) == created(10))
        #expect(server.reply(.gpadlBody(bb[1])) == created(11))
        #expect(server.gpadls[10]?.state == .ready([a]))
        #expect(server.gpadls[11]?.state == .ready([b]))
    }

    @Test func severalRangesAndAByteOffsetAreKeptAsSent() {
        var server = connected()
        let ranges = [
            GPARange(byteCount: 0x200, byteOffset: 0xF00, pfns: [7, 8]),
            GPARange(wholePages: [20, 21, 22]),
            GPARange(byteCount: 1, byteOffset: 0, pfns: [30]),
        ]
        #expect(sentMessages(server.createGPADL(relID: 1, handle: 5, ranges: ranges)) == created(5))
        #expect(server.gpadls[5]?.state == .ready(ranges))
    }

    @Test func bodiesOfMaximumLengthBeyondTheRangeDataAreIgnored() {
        // Some clients (UEFI) always send full BODY messages: the useful length comes from range_buflen.
        var server = connected()
        let range = GPARange(wholePages: (0..<30).map { UInt64($0) })
        let (header, split) = GPADLMessages.split(childRelID: 1, gpadl: 9, ranges: [range])
        var bodies = split
        #expect(bodies.count == 1)
        bodies[0].data += [UInt8](repeating: 0xEE, count: GPADLBody.maximumDataLength - bodies[0].data.count)
        #expect(server.feed(.gpadlHeader(header)).isEmpty)
        #expect(server.reply(.gpadlBody(bodies[0])) == created(9))
        #expect(server.gpadls[9]?.state == .ready([range]))
    }

    @Test(arguments: [1, 30, 100])
    func aPFNBeyondGuestMemoryFailsCreationAndNoGPADLIsKept(pages: Int) {
        var server = connected()
        // The last PFN (in the header or in the last body) is the first page past guest memory.
        var pfns = (0..<UInt64(pages)).map { $0 }
        pfns[pages - 1] = testGuestPages
        let actions = server.createGPADL(relID: 1, handle: firstHandle, ranges: [GPARange(wholePages: pfns)])
        #expect(sentMessages(actions) == created(firstHandle, status: Server.statusFailure))
        #expect(server.gpadls[firstHandle] == nil)
        #expect(server.rejectedMessages == 1)
        #expect(server.lastRejection?.contains("outside guest memory") == true)
        // The handle is free again.
        server.createGPADL(relID: 1, handle: firstHandle, pfns: [testGuestPages - 1])
    }

    @Test func aHugePFNIsRefusedToo() {
        var server = connected()
        let actions = server.createGPADL(relID: 1, handle: 3, ranges: [GPARange(wholePages: [0xFFFF_FFFF_FFFF_FFFF])])
        #expect(sentMessages(actions) == created(3, status: Server.statusFailure))
        #expect(server.gpadls.isEmpty)
    }

    @Test func aRangeWithByteCountZeroFailsCreation() {
        var server = connected()
        // range_buflen 16, rangecount 1: byte_count 0, byte_offset 0, one PFN.
        let header = GPADLHeader(childRelID: 1, gpadl: 4, rangeBufferLength: 16, rangeCount: 1,
                                 rangeData: [0, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0])
        #expect(server.reply(.gpadlHeader(header)) == created(4, status: Server.statusFailure))
        #expect(server.gpadls.isEmpty)
        #expect(server.rejectedMessages == 1)
    }

    @Test func aRangeNeedingMorePFNsThanSentFailsCreation() {
        var server = connected()
        // byte_count of two pages but range_buflen leaves room for one PFN.
        let header = GPADLHeader(childRelID: 1, gpadl: 4, rangeBufferLength: 16, rangeCount: 1,
                                 rangeData: [0, 0x20, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0])
        #expect(server.reply(.gpadlHeader(header)) == created(4, status: Server.statusFailure))
        #expect(server.gpadls.isEmpty)
    }

    @Test func aDuplicateHandleIsAnsweredWithFailureAndTheFirstGPADLSurvives() {
        var server = connected()
        server.add(testDevice(2))
        server.createGPADL(relID: 1, handle: 7, pfns: [1, 2])
        // Same handle again, on the same channel and on another channel: each waits for its answer.
        #expect(sentMessages(server.createGPADL(relID: 1, handle: 7, ranges: [GPARange(wholePages: [3])]))
            == created(7, relID: 1, status: Server.statusFailure))
        #expect(sentMessages(server.createGPADL(relID: 2, handle: 7, ranges: [GPARange(wholePages: [3])]))
            == created(7, relID: 2, status: Server.statusFailure))
        #expect(server.rejectedMessages == 2)
        #expect(server.lastRejection?.contains("already in use") == true)
        #expect(server.gpadls[7]?.relID == 1)
        #expect(server.gpadls[7]?.state == .ready([GPARange(wholePages: [1, 2])]))
    }

    @Test func aDuplicateHandleWhileTheFirstIsStillAssemblingIsAnsweredWithFailure() {
        var server = connected()
        let range = GPARange(wholePages: (0..<40).map { UInt64($0) })
        let (header, bodies) = GPADLMessages.split(childRelID: 1, gpadl: 7, ranges: [range])
        #expect(server.feed(.gpadlHeader(header)).isEmpty)
        #expect(server.reply(.gpadlHeader(header)) == created(7, status: Server.statusFailure))
        #expect(server.rejectedMessages == 1)
        // The first one still completes.
        #expect(server.reply(.gpadlBody(bodies[0])) == created(7))
    }

    @Test func aBodyForAnUnknownHandleIsRejected() {
        var server = connected()
        #expect(server.feed(.gpadlBody(GPADLBody(gpadl: 0xDEAD, data: [UInt8](repeating: 0, count: 64)))).isEmpty)
        #expect(server.rejectedMessages == 1)
        #expect(server.lastRejection?.contains("unknown GPADL") == true)
        #expect(server.gpadls.isEmpty)
    }

    @Test func aBodyForACompleteGPADLIsRejected() {
        var server = connected()
        server.createGPADL(relID: 1, handle: 7, pfns: [1])
        #expect(server.feed(.gpadlBody(GPADLBody(gpadl: 7, data: [1, 0, 0, 0, 0, 0, 0, 0]))).isEmpty)
        #expect(server.rejectedMessages == 1)
        #expect(server.gpadls[7]?.state == .ready([GPARange(wholePages: [1])]))
    }

    @Test func aHeaderForAnUnknownOrUnofferedChannelFailsCreation() {
        var server = makeServer()
        server.add(testDevice(1))
        server.connect()
        // Relid 1 exists but was not offered on this connection yet; relid 9 does not exist.
        for relID: UInt32 in [1, 9] {
            let actions = server.createGPADL(relID: relID, handle: 7, ranges: [GPARange(wholePages: [1])])
            #expect(sentMessages(actions) == created(7, relID: relID, status: Server.statusFailure))
        }
        #expect(server.gpadls.isEmpty)
        #expect(server.rejectedMessages == 2)
    }

    @Test func teardownAnswersTorndownAndForgetsTheGPADL() {
        var server = connected()
        server.createGPADL(relID: 1, handle: 7, pfns: [1, 2, 3])
        #expect(server.reply(.gpadlTeardown(GPADLTeardown(childRelID: 1, gpadl: 7)))
            == [.gpadlTorndown(GPADLTorndown(gpadl: 7))])
        #expect(server.gpadls.isEmpty)
        // A second teardown is for an unknown GPADL.
        #expect(server.feed(.gpadlTeardown(GPADLTeardown(childRelID: 1, gpadl: 7))).isEmpty)
        #expect(server.rejectedMessages == 1)
    }

    @Test func teardownOfAGPADLStillBeingAssembledIsAnswered() {
        var server = connected()
        let (header, _) = GPADLMessages.split(childRelID: 1, gpadl: 7,
                                             ranges: [GPARange(wholePages: (0..<40).map { UInt64($0) })])
        #expect(server.feed(.gpadlHeader(header)).isEmpty)
        #expect(server.reply(.gpadlTeardown(GPADLTeardown(childRelID: 1, gpadl: 7)))
            == [.gpadlTorndown(GPADLTorndown(gpadl: 7))])
        #expect(server.gpadls.isEmpty)
    }

    @Test func teardownNamingAnotherChannelIsRejected() {
        var server = connected()
        server.add(testDevice(2))
        server.createGPADL(relID: 1, handle: 7, pfns: [1])
        #expect(server.feed(.gpadlTeardown(GPADLTeardown(childRelID: 2, gpadl: 7))).isEmpty)
        #expect(server.rejectedMessages == 1)
        #expect(server.gpadls[7] != nil)
    }

    @Test func teardownOfAnOpenChannelsRingGPADLIsAnsweredOnceTheChannelCloses() {
        var server = connected()
        server.open(relID: 1, handle: firstHandle)
        // No status in GPADL_TORNDOWN: the answer waits until the host no longer touches the rings.
        #expect(server.feed(.gpadlTeardown(GPADLTeardown(childRelID: 1, gpadl: firstHandle))).isEmpty)
        #expect(server.gpadls[firstHandle]?.teardownPending == true)
        // A repeat has nothing more to answer.
        #expect(server.feed(.gpadlTeardown(GPADLTeardown(childRelID: 1, gpadl: firstHandle))).isEmpty)
        #expect(server.rejectedMessages == 1)
        // The runtime stops the channel before it posts what follows (VMBusHost.process).
        #expect(server.feed(.closeChannel(CloseChannel(childRelID: 1)))
            == [.closeChannel(relID: 1), .send(.gpadlTorndown(GPADLTorndown(gpadl: firstHandle)))])
        #expect(server.gpadls[firstHandle] == nil)
    }

    @Test func aRingGPADLBeingTornDownCannotBeOpenedAgainAndIsAnsweredOnRescind() {
        var server = connected()
        server.open(relID: 1, handle: firstHandle)
        _ = server.feed(.gpadlTeardown(GPADLTeardown(childRelID: 1, gpadl: firstHandle)))
        #expect(server.rescind(relID: 1) == [
            .closeChannel(relID: 1), .send(.rescindChannelOffer(RescindChannelOffer(childRelID: 1))),
            .send(.gpadlTorndown(GPADLTorndown(gpadl: firstHandle))),
        ])
        #expect(server.gpadls[firstHandle] == nil)
    }

    @Test func aFailedOpenAnswersAPendingTeardownOfItsRing() {
        var server = connected()
        server.createGPADL(relID: 1, handle: firstHandle, pfns: (0..<8).map { UInt64(100 + $0) })
        _ = server.feed(openMessage(relID: 1, gpadl: firstHandle, downstream: 4))
        #expect(server.feed(.gpadlTeardown(GPADLTeardown(childRelID: 1, gpadl: firstHandle))).isEmpty)
        #expect(sentMessages(server.channelOpenCompleted(relID: 1, status: Server.statusFailure)) == [
            .openChannelResult(OpenChannelResult(childRelID: 1, openID: 1, status: Server.statusFailure)),
            .gpadlTorndown(GPADLTorndown(gpadl: firstHandle)),
        ])
    }

    @Test func aGPADLOnAReservedPageIsAnsweredWithFailure() {
        var config = Server.Configuration(guestPageCount: testGuestPages)
        config.reservedPFNs = [5]
        var server = Server(configuration: config)
        server.add(testDevice(1))
        server.connectAndRequestOffers()
        #expect(sentMessages(server.createGPADL(relID: 1, handle: 7, ranges: [GPARange(wholePages: [4, 5, 6])]))
            == created(7, status: Server.statusFailure))
        #expect(server.lastRejection?.contains("reserved") == true)
        #expect(server.gpadls[7] == nil)
    }

    @Test func theGPADLPageBudgetDoesNotGrowWithDeclaredMemory() {
        let small = Server.Configuration(guestPageCount: 16)
        let huge = Server.Configuration(guestPageCount: 1 << 28)  // a sparse 1 TiB memfd
        #expect(small.maxGPADLPages == huge.maxGPADLPages)
        #expect(huge.maxGPADLPages == Server.Configuration.defaultMaxGPADLPages)
    }

    @Test func teardownOfTheRingGPADLWhileTheOpenIsPendingWaitsForTheOpen() {
        var server = connected()
        server.createGPADL(relID: 1, handle: firstHandle, pfns: (0..<8).map { UInt64($0) })
        _ = server.feed(openMessage(relID: 1, gpadl: firstHandle, downstream: 4))
        #expect(server.feed(.gpadlTeardown(GPADLTeardown(childRelID: 1, gpadl: firstHandle))).isEmpty)
        #expect(server.gpadls[firstHandle] != nil)
    }

    @Test func otherGPADLsOfAnOpenChannelCanBeTornDown() {
        var server = connected()
        server.open(relID: 1, handle: firstHandle)
        server.createGPADL(relID: 1, handle: firstHandle + 1, pfns: [300, 301])
        #expect(server.reply(.gpadlTeardown(GPADLTeardown(childRelID: 1, gpadl: firstHandle + 1)))
            == [.gpadlTorndown(GPADLTorndown(gpadl: firstHandle + 1))])
    }

    @Test func theGPADLLimitFailsCreationUntilOneIsTornDown() {
        var server = connected(maxGPADLs: 3)
        for h: UInt32 in 1...3 { server.createGPADL(relID: 1, handle: h, pfns: [UInt64(h)]) }
        let actions = server.createGPADL(relID: 1, handle: 4, ranges: [GPARange(wholePages: [4])])
        #expect(sentMessages(actions) == created(4, status: Server.statusFailure))
        #expect(server.gpadls.count == 3)
        #expect(server.lastRejection?.contains("limit") == true)
        _ = server.feed(.gpadlTeardown(GPADLTeardown(childRelID: 1, gpadl: 2)))
        server.createGPADL(relID: 1, handle: 4, pfns: [4])
        #expect(server.gpadls.count == 3)
    }

    @Test func gpadlsInAssemblyCountTowardsTheLimit() {
        var server = connected(maxGPADLs: 2)
        let big = GPARange(wholePages: (0..<40).map { UInt64($0) })
        for h: UInt32 in 1...2 {
            #expect(server.feed(.gpadlHeader(GPADLMessages.split(childRelID: 1, gpadl: h, ranges: [big]).header)).isEmpty)
        }
        let actions = server.createGPADL(relID: 1, handle: 3, ranges: [GPARange(wholePages: [4])])
        #expect(sentMessages(actions) == created(3, status: Server.statusFailure))
    }

    @Test func aRescindedChannelStillAnswersGPADLMessages() {
        var server = connected()
        server.createGPADL(relID: 1, handle: 7, pfns: [1])
        _ = server.rescind(relID: 1)
        server.createGPADL(relID: 1, handle: 8, pfns: [2])
        #expect(server.reply(.gpadlTeardown(GPADLTeardown(childRelID: 1, gpadl: 7)))
            == [.gpadlTorndown(GPADLTorndown(gpadl: 7))])
    }
}
