import Testing
import VMBusHost
import VMBusProtocol

/// INITIATE_CONTACT / VERSION_RESPONSE (PROTOCOL.md §2.1-2.3): which versions are accepted, what the answer
/// carries, reconnects, and the rule that nothing but the handshake is accepted before it.
struct ServerHandshakeTests {
    @Test(arguments: VMBusVersion.all)
    func everyVersionUpToTheMaximumIsAcceptedWithMessageConnectionIDOne(version: VMBusVersion) {
        var server = makeServer(maxVersion: .copper)
        let actions = server.feed(initiateContact(version, targetVCPU: 3))
        #expect(actions == [.send(.versionResponse(VersionResponse(versionSupported: true, connectionState: 0,
                                                                   messageConnectionID: 1)))])
        #expect(server.connection == .connected(version: version, targetVCPU: 3))
        #expect(server.version == version)
        #expect(server.rejectedMessages == 0)
    }

    @Test func theVersionResponseIsSixteenBytesWithSupportedAndConnectionIDOne() throws {
        var server = makeServer()
        let actions = server.feed(initiateContact(.win10_v5_3))
        guard case .send(let message) = try #require(actions.first) else {
            Issue.record("expected a message, got \(actions)")
            return
        }
        let bytes = message.bytes
        #expect(bytes.count == 16)
        #expect(bytes[0..<4] == [15, 0, 0, 0])  // CHANNELMSG_VERSION_RESPONSE
        #expect(bytes[8] == 1)  // version_supported
        #expect(bytes[9] == 0)  // connection_state
        #expect(bytes[12..<16] == [1, 0, 0, 0])  // msg_conn_id
    }

    @Test(arguments: [VMBusVersion.win10_v4_1, .win10_v5, .win10_v5_3, .copper])
    func aVersionAboveTheMaximumIsRefusedAndTheServerStaysDisconnected(version: VMBusVersion) {
        var server = makeServer(maxVersion: .win10)
        let actions = server.feed(initiateContact(version))
        #expect(actions == [.send(.versionResponse(VersionResponse(versionSupported: false, connectionState: 0,
                                                                   messageConnectionID: 1)))])
        #expect(server.connection == .disconnected)
        // An unsupported version is an answer, not an error.
        #expect(server.rejectedMessages == 0)
        // The guest moves on to the next version, which works.
        #expect(server.reply(initiateContact(.win10))
            == [.versionResponse(VersionResponse(versionSupported: true, messageConnectionID: 1))])
        #expect(server.version == .win10)
    }

    @Test(arguments: [VMBusVersion(rawValue: 0), VMBusVersion(rawValue: 0x0004_0002), VMBusVersion(major: 7, minor: 0),
                      VMBusVersion(rawValue: 0xFFFF_FFFF)])
    func anUnknownVersionNumberIsRefused(version: VMBusVersion) {
        var server = makeServer()
        let replies = server.reply(initiateContact(version))
        #expect(replies == [.versionResponse(VersionResponse(versionSupported: false, messageConnectionID: 1))])
        #expect(server.connection == .disconnected)
    }

    @Test func aLinuxStyleFallbackWalksDownToTheHostsNewestVersion() {
        var server = makeServer(maxVersion: .win10_v4_1)
        var accepted: [VMBusVersion] = []
        for version in VMBusVersion.linuxTryOrder {
            guard case .versionResponse(let r) = server.reply(initiateContact(version)).first else {
                Issue.record("no VERSION_RESPONSE for \(version)")
                return
            }
            if r.versionSupported {
                accepted.append(version)
                break
            }
        }
        #expect(accepted == [.win10_v4_1])
        #expect(server.version == .win10_v4_1)
    }

    @Test(arguments: [(UInt8(3), UInt8(0)), (UInt8(0), UInt8(0)), (UInt8(2), UInt8(1)), (UInt8(15), UInt8(2))])
    func fromVersionFiveAMessageTargetOtherThanSINTTwoOfVTLZeroIsRefused(sint: UInt8, vtl: UInt8) {
        var server = makeServer()
        let contact = InitiateContact(versionRequested: .win10_v5_3, targetVCPU: 0, messageSINT: sint, messageVTL: vtl)
        #expect(server.reply(.initiateContact(contact))
            == [.versionResponse(VersionResponse(versionSupported: false, messageConnectionID: 1))])
        #expect(server.connection == .disconnected)
    }

    @Test func beforeVersionFiveTheInterruptPageFieldIsNotReadAsATarget() {
        var server = makeServer()
        // A 4.1 guest puts its (legacy) interrupt page GPA there.
        let contact = InitiateContact(versionRequested: .win10_v4_1, targetVCPU: 0, interruptPage: 0x1234_5000)
        #expect(server.reply(.initiateContact(contact))
            == [.versionResponse(VersionResponse(versionSupported: true, messageConnectionID: 1))])
        #expect(server.version == .win10_v4_1)
    }

    @Test func aSecondInitiateContactTearsTheOldConnectionDown() {
        var server = makeServer()
        let open = server.add(testDevice(1))
        let idle = server.add(testDevice(2))
        let gone = server.add(testDevice(3))
        server.connectAndRequestOffers()
        server.open(relID: open, handle: firstHandle)
        server.createGPADL(relID: idle, handle: firstHandle + 1, pfns: [50, 51])
        _ = server.rescind(relID: gone)

        let actions = server.feed(initiateContact(.win10_v5_3))
        #expect(actions == [
            .closeChannel(relID: open),
            .releaseChannel(relID: gone),
            .connectionReset,
            .send(.versionResponse(VersionResponse(versionSupported: true, messageConnectionID: 1))),
        ])
        #expect(server.version == .win10_v5_3)
        #expect(server.gpadls.isEmpty)
        #expect(!server.offersRequested)
        #expect(server.channels[open]?.state == .offered)
        #expect(server.channels[open]?.offerSent == false)
        #expect(server.channels[gone] == nil)

        // The new connection asks for offers again and gets the remaining devices.
        let offers = server.reply(.requestOffers(RequestOffers()))
        #expect(offers.count == 3)
        #expect(offers.last == .allOffersDelivered(AllOffersDelivered()))
        #expect(server.rejectedMessages == 0)
    }

    @Test func aReconnectWithAnUnsupportedVersionLeavesTheServerDisconnected() {
        var server = makeServer(maxVersion: .win10_v5_3)
        let relID = server.add(testDevice(1))
        server.connectAndRequestOffers(.win10_v5_3)
        server.open(relID: relID, handle: firstHandle)
        let actions = server.feed(initiateContact(.copper))
        #expect(actions == [
            .closeChannel(relID: relID),
            .connectionReset,
            .send(.versionResponse(VersionResponse(versionSupported: false, messageConnectionID: 1))),
        ])
        #expect(server.connection == .disconnected)
        #expect(server.gpadls.isEmpty)
    }

    @Test(arguments: [
        ChannelMessage.requestOffers(RequestOffers()),
        .openChannel(OpenChannel(childRelID: 1, openID: 1, ringBufferGPADLHandle: 0xE1E10, targetVP: 0,
                                 downstreamRingBufferPageOffset: 4)),
        .closeChannel(CloseChannel(childRelID: 1)),
        .gpadlHeader(GPADLMessages.split(childRelID: 1, gpadl: 0xE1E10, ranges: [GPARange(wholePages: [1])]).header),
        .gpadlBody(GPADLBody(gpadl: 0xE1E10, data: [0, 0, 0, 0, 0, 0, 0, 0])),
        .gpadlTeardown(GPADLTeardown(childRelID: 1, gpadl: 0xE1E10)),
        .relIDReleased(RelIDReleased(childRelID: 1)),
        .unload(Unload()),
        .modifyChannel(ModifyChannel(childRelID: 1, targetVP: 1)),
    ])
    func messagesBeforeInitiateContactAreRejectedAndCounted(message: ChannelMessage) {
        var server = makeServer()
        server.add(testDevice(1))
        #expect(server.feed(message).isEmpty)
        #expect(server.rejectedMessages == 1)
        #expect(server.lastRejection?.contains("not connected") == true)
        #expect(server.connection == .disconnected)
        #expect(!server.offersRequested)
        #expect(server.gpadls.isEmpty)
    }

    @Test func messagesAfterUnloadAreRejectedUntilTheNextHandshake() {
        var server = makeServer()
        server.add(testDevice(1))
        server.connectAndRequestOffers()
        #expect(server.reply(.unload(Unload())) == [.unloadResponse(UnloadResponse())])
        #expect(server.feed(.requestOffers(RequestOffers())).isEmpty)
        #expect(server.rejectedMessages == 1)
        #expect(server.connectAndRequestOffers().count == 1)
    }

    @Test func guestDisconnectedDropsTheConnectionWithoutAnswering() {
        var server = makeServer()
        let relID = server.add(testDevice(1))
        server.connectAndRequestOffers()
        server.open(relID: relID, handle: firstHandle)
        #expect(server.guestDisconnected() == [.closeChannel(relID: relID), .connectionReset])
        #expect(server.connection == .disconnected)
        #expect(server.gpadls.isEmpty)
        #expect(server.channels[relID]?.state == .offered)
    }
}
