import Testing
import VMBusTestSupport
import VMBusHost
import VMBusProtocol

/// The guest is untrusted: truncated, oversized, unknown, wrong-direction, too-new and unsupported messages
/// are rejected and counted, never crash the server, and leave it working (PROTOCOL.md §2.9, §13).
struct ServerMalformedMessageTests {
    /// A connected server (6.0, offers requested) with two devices; relid 1 is open.
    func busy() -> Server {
        var server = makeServer()
        server.add(testDevice(1))
        server.add(testDevice(2))
        server.connectAndRequestOffers()
        server.open(relID: 1, handle: firstHandle)
        return server
    }

    /// After the garbage, a full valid flow still works: reconnect, offers, GPADL, open, close, unload.
    func expectStillWorks(_ server: inout Server, sourceLocation: SourceLocation = #_sourceLocation) {
        let replies = server.reply(initiateContact(.win10_v5_3))
        #expect(replies == [.versionResponse(VersionResponse(versionSupported: true, messageConnectionID: 1))],
                sourceLocation: sourceLocation)
        let offers = server.reply(.requestOffers(RequestOffers()))
        #expect(offers.last == .allOffersDelivered(AllOffersDelivered()), sourceLocation: sourceLocation)
        guard offers.count >= 2, case .offerChannel(let offer) = offers[0] else {
            Issue.record("no offers after the garbage: \(offers)", sourceLocation: sourceLocation)
            return
        }
        let relID = offer.childRelID
        let handle: UInt32 = 0x7777_0000
        let pfns = (0..<UInt64(8)).map { 10 + $0 }
        #expect(sentMessages(server.createGPADL(relID: relID, handle: handle, ranges: [GPARange(wholePages: pfns)]))
            == [.gpadlCreated(GPADLCreated(childRelID: relID, gpadl: handle, creationStatus: 0))],
                sourceLocation: sourceLocation)
        let open = server.feed(openMessage(relID: relID, openID: 42, gpadl: handle, downstream: 4))
        #expect(open.count == 1, sourceLocation: sourceLocation)
        #expect(server.channelOpenCompleted(relID: relID, status: 0)
            == [.send(.openChannelResult(OpenChannelResult(childRelID: relID, openID: 42, status: 0)))],
                sourceLocation: sourceLocation)
        #expect(server.feed(.closeChannel(CloseChannel(childRelID: relID))) == [.closeChannel(relID: relID)],
                sourceLocation: sourceLocation)
        #expect(server.reply(.gpadlTeardown(GPADLTeardown(childRelID: relID, gpadl: handle)))
            == [.gpadlTorndown(GPADLTorndown(gpadl: handle))], sourceLocation: sourceLocation)
        #expect(server.reply(.unload(Unload())) == [.unloadResponse(UnloadResponse())], sourceLocation: sourceLocation)
    }

    /// A message of `type` of exactly `length` bytes: the header, then a recognisable pattern.
    static func message(type: UInt32, length: Int) -> [UInt8] {
        var bytes = [UInt8(truncatingIfNeeded: type), UInt8(truncatingIfNeeded: type >> 8),
                     UInt8(truncatingIfNeeded: type >> 16), UInt8(truncatingIfNeeded: type >> 24), 0, 0, 0, 0]
        while bytes.count < length { bytes.append(UInt8(truncatingIfNeeded: bytes.count)) }
        return Array(bytes.prefix(length))
    }

    @Test(arguments: ChannelMessage.table.map(\.type.rawValue))
    func everyTruncatedPrefixOfEveryMessageTypeIsRejected(type: UInt32) throws {
        var server = busy()
        let entry = try #require(ChannelMessage.entry(for: ChannelMessageType(rawValue: type)))
        let full = Self.message(type: type, length: max(entry.minimumLength, 8))
        let snapshot = (server.channels, server.gpadls, server.connection, server.offersRequested)
        for length in 0..<entry.minimumLength {
            let before = server.rejectedMessages
            #expect(server.handle(Array(full.prefix(length))).isEmpty, "type \(type), \(length) bytes")
            #expect(server.rejectedMessages == before + 1, "type \(type), \(length) bytes")
        }
        #expect(server.channels == snapshot.0)
        #expect(server.gpadls == snapshot.1)
        #expect(server.connection == snapshot.2)
        #expect(server.offersRequested == snapshot.3)
        expectStillWorks(&server)
    }

    @Test func truncatedRealMessagesAreRejected() {
        var server = busy()
        let messages: [ChannelMessage] = [
            initiateContact(.copper),
            openMessage(relID: 2, gpadl: firstHandle, downstream: 4),
            .gpadlHeader(GPADLMessages.split(childRelID: 2, gpadl: 5, ranges: [GPARange(wholePages: [1])]).header),
            .gpadlTeardown(GPADLTeardown(childRelID: 1, gpadl: firstHandle)),
            .modifyChannel(ModifyChannel(childRelID: 1, targetVP: 1)),
            .relIDReleased(RelIDReleased(childRelID: 1)),
            .closeChannel(CloseChannel(childRelID: 1)),
        ]
        for message in messages {
            let bytes = message.bytes
            let minimum = message.type.minimumLength ?? 8
            for length in 0..<minimum {
                #expect(server.handle(Array(bytes.prefix(length))).isEmpty, "\(message.type) cut to \(length)")
            }
        }
        #expect(server.channels[1]?.state == .open(gpadl: firstHandle, targetVP: 0))
        #expect(server.version == .copper)
    }

    @Test(arguments: [UInt32(0), 30, 31, 100, 0xFFFF, 0x8000_0000, 0xFFFF_FFFF])
    func unknownTypesAreRejected(type: UInt32) {
        var server = busy()
        for length in [8, 12, 16, 100, 240] {
            #expect(server.handle(Self.message(type: type, length: length)).isEmpty)
        }
        #expect(server.rejectedMessages == 5)
        #expect(server.lastRejection?.contains("unknown") == true)
        expectStillWorks(&server)
    }

    @Test func messagesLongerThan240BytesAreRejectedEvenWhenOtherwiseValid() {
        var server = makeServer()
        server.add(testDevice(1))
        server.connect()
        for length in [241, 256, 4096] {
            var bytes = ChannelMessage.requestOffers(RequestOffers()).bytes
            bytes += [UInt8](repeating: 0, count: length - bytes.count)
            #expect(server.handle(bytes).isEmpty)
        }
        #expect(server.rejectedMessages == 3)
        #expect(!server.offersRequested)
        // A full 240-byte message is fine: bytes beyond what the type defines are ignored.
        var bytes = ChannelMessage.requestOffers(RequestOffers()).bytes
        bytes += [UInt8](repeating: 0xCC, count: 240 - bytes.count)
        #expect(server.handle(bytes).count == 2)
    }

    @Test(arguments: ChannelMessage.table.filter { $0.direction == .hostToGuest }.map(\.type.rawValue))
    func hostToGuestTypesSentByTheGuestAreRejected(type: UInt32) throws {
        var server = busy()
        let entry = try #require(ChannelMessage.entry(for: ChannelMessageType(rawValue: type)))
        let bytes = Self.message(type: type, length: max(entry.minimumLength, 40))
        #expect(server.handle(bytes).isEmpty)
        #expect(server.rejectedMessages == 1)
        #expect(server.lastRejection?.contains("sent by the guest") == true)
        #expect(server.channels[1]?.state == .open(gpadl: firstHandle, targetVP: 0))
        expectStillWorks(&server)
    }

    @Test(arguments: [
        (ChannelMessage.modifyChannel(ModifyChannel(childRelID: 1, targetVP: 1)), VMBusVersion.win10),
        (.modifyChannel(ModifyChannel(childRelID: 1, targetVP: 1)), .win8_1),
        (.tlConnectRequest(TLConnectRequest(guestEndpointID: GUIDs.a, hostServiceID: GUIDs.b)), .win8_1),
        (.openReservedChannel(OpenReservedChannel(childRelID: 1, targetVP: 0, targetSINT: 2, ringBufferGPADLHandle: 1,
                                                  downstreamRingBufferPageOffset: 2)), .win8),
        (.modifyConnection(ModifyConnection(monitorPage1: 0, monitorPage2: 0)), .win10_v5_3),
        (.pause(Pause()), .win10_v5_3),
        (.resume(Resume()), .win10),
    ])
    func messagesBelowTheirMinimumVersionAreRejected(message: ChannelMessage, version: VMBusVersion) {
        var server = makeServer()
        server.add(testDevice(1))
        server.connectAndRequestOffers(version)
        #expect(server.feed(message).isEmpty)
        #expect(server.rejectedMessages == 1)
        #expect(server.lastRejection?.contains("needs version") == true)
    }

    @Test(arguments: [
        ChannelMessage.openReservedChannel(OpenReservedChannel(childRelID: 1, targetVP: 0, targetSINT: 2,
                                                               ringBufferGPADLHandle: 0xE1E10,
                                                               downstreamRingBufferPageOffset: 4)),
        .closeReservedChannel(CloseReservedChannel(childRelID: 1, targetVP: 0, targetSINT: 2)),
        .modifyConnection(ModifyConnection(monitorPage1: 0x1000, monitorPage2: 0x2000)),
        .pause(Pause()),
        .resume(Resume()),
    ])
    func reservedAndUnservedTypesAreRejectedAtEveryVersion(message: ChannelMessage) {
        var server = busy()
        #expect(server.feed(message).isEmpty)
        #expect(server.rejectedMessages == 1)
        #expect(server.lastRejection?.contains("not supported") == true)
        #expect(server.channels[1]?.state == .open(gpadl: firstHandle, targetVP: 0))
        expectStillWorks(&server)
    }

    @Test func headersAnnouncingImpossibleRangeCountsAreAnsweredWithFailure() {
        var server = busy()
        // rangecount 0; range_buflen not a multiple of 8; more ranges than range_buflen can hold; range_buflen 0.
        // Sent as raw bytes, as a guest would: the parser must let them reach the server.
        for (length, count) in [(UInt16(16), UInt16(0)), (12, 1), (16, 2), (0, 1)] {
            let header = GPADLHeader(childRelID: 1, gpadl: 99, rangeBufferLength: length, rangeCount: count,
                                     rangeData: [UInt8](repeating: 0, count: 16))
            #expect(sentMessages(server.handle(header.wireBytes))
                == [.gpadlCreated(GPADLCreated(childRelID: 1, gpadl: 99, creationStatus: Server.statusFailure))])
        }
        #expect(server.rejectedMessages == 4)
        #expect(server.gpadls[99] == nil)
    }

    @Test func garbageBeforeTheHandshakeLeavesTheServerReadyForIt() {
        var server = makeServer()
        server.add(testDevice(1))
        server.add(testDevice(2))
        for bytes: [UInt8] in [[], [1], [3, 0, 0, 0], Self.message(type: 3, length: 8), Self.message(type: 14, length: 39),
                               Self.message(type: 15, length: 16), [UInt8](repeating: 0xFF, count: 240)] {
            #expect(server.handle(bytes).isEmpty)
        }
        #expect(server.rejectedMessages == 7)
        #expect(server.connection == .disconnected)
        expectStillWorks(&server)
    }

    // MARK: - Fuzzing

    /// Valid guest messages the fuzzer replays and mutates: the handshake (which resets everything, so it is
    /// replayed rarely) and the traffic of a connection.
    static func corpus() -> (handshake: [[UInt8]], traffic: [[UInt8]]) {
        let (header, bodies) = GPADLMessages.split(childRelID: 1, gpadl: 0x100,
                                                   ranges: [GPARange(wholePages: (0..<60).map { UInt64($0 * 3) })])
        let handshake: [ChannelMessage] = [
            initiateContact(.copper), initiateContact(.win10_v4_1), initiateContact(.win8), .unload(Unload()),
        ]
        let traffic: [ChannelMessage] = [
            .requestOffers(RequestOffers()),
            .gpadlHeader(header), .gpadlBody(bodies[0]), .gpadlBody(bodies[1]),
            .gpadlHeader(GPADLMessages.split(childRelID: 2, gpadl: 0x200,
                                             ranges: [GPARange(wholePages: (0..<8).map { UInt64(900 + $0) })]).header),
            openMessage(relID: 1, gpadl: 0x100, downstream: 30),
            openMessage(relID: 2, gpadl: 0x200, downstream: 4),
            .closeChannel(CloseChannel(childRelID: 1)),
            .closeChannel(CloseChannel(childRelID: 2)),
            .gpadlTeardown(GPADLTeardown(childRelID: 1, gpadl: 0x100)),
            .gpadlTeardown(GPADLTeardown(childRelID: 2, gpadl: 0x200)),
            .relIDReleased(RelIDReleased(childRelID: 3)),
            .modifyChannel(ModifyChannel(childRelID: 1, targetVP: 2)),
            .tlConnectRequest(TLConnectRequest(guestEndpointID: GUIDs.a, hostServiceID: GUIDs.b)),
        ]
        return (handshake.map(\.bytes), traffic.map(\.bytes))
    }

    static func mutate(_ input: [UInt8], using rng: inout SplitMix64) -> [UInt8] {
        var bytes = input
        for _ in 0..<Int.random(in: 1...4, using: &rng) {
            switch Int.random(in: 0..<7, using: &rng) {
            case 0 where !bytes.isEmpty:  // flip a bit
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] ^= UInt8(1) << UInt8.random(in: 0..<8, using: &rng)
            case 1 where !bytes.isEmpty:  // replace a byte with an interesting value
                let i = Int.random(in: 0..<bytes.count, using: &rng)
                bytes[i] = [0, 1, 2, 4, 0x7F, 0x80, 0xFE, 0xFF].randomElement(using: &rng)!
            case 2:  // truncate
                bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &rng)))
            case 3:  // extend, sometimes past 240 bytes
                bytes += (0..<Int.random(in: 1...64, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            case 4 where bytes.count >= 4:  // another message type
                bytes[0] = UInt8.random(in: 0...31, using: &rng)
                if Bool.random(using: &rng) { bytes[1] = UInt8.random(in: 0...255, using: &rng) }
            case 5 where bytes.count >= 16:  // a random 32-bit field (relids, handles, counts, offsets)
                let at = Int.random(in: 2..<(bytes.count / 4), using: &rng) * 4
                let v = [UInt32(0), 1, 2, 3, 4, 0x100, 0x200, 0xE1E10, 0xFFFF, 0xFFFF_FFFF,
                         UInt32(testGuestPages)].randomElement(using: &rng)!
                for k in 0..<4 { bytes[at + k] = UInt8(truncatingIfNeeded: v >> (8 * UInt32(k))) }
            default:  // a random u16 (range_buflen / rangecount in GPADL headers)
                if bytes.count >= 20 {
                    let v = UInt16.random(in: 0...UInt16.max, using: &rng)
                    let at = Bool.random(using: &rng) ? 16 : 18
                    bytes[at] = UInt8(truncatingIfNeeded: v)
                    bytes[at + 1] = UInt8(truncatingIfNeeded: v >> 8)
                }
            }
        }
        return bytes
    }

    /// Checks the server's own invariants: every ready GPADL lies in guest memory; every open or opening
    /// channel's ring GPADL exists, is ready and belongs to it; every answer fits a SynIC message.
    static func checkInvariants(_ server: Server, _ actions: [ServerAction]) -> String? {
        for (handle, g) in server.gpadls {
            if case .ready(let ranges) = g.state,
               ranges.contains(where: { $0.pfns.contains { $0 >= testGuestPages } }) {
                return "GPADL \(handle) names memory outside the guest"
            }
            if server.channels[g.relID] == nil { return "GPADL \(handle) of unknown relid \(g.relID)" }
        }
        for (relID, c) in server.channels {
            var ring: UInt32?
            switch c.state {
            case .open(let g, _): ring = g
            case .opening(_, let g, _): ring = g
            default: break
            }
            if let ring {
                guard let g = server.gpadls[ring], g.relID == relID, case .ready = g.state else {
                    return "channel \(relID) is open on GPADL \(ring), which is gone"
                }
                if server.connection == .disconnected { return "channel \(relID) open while disconnected" }
            }
            if !Server.relIDRange.contains(relID) { return "relid \(relID) out of range" }
        }
        for action in actions {
            if case .send(let m) = action, m.bytes.count > ChannelMessage.maximumLength {
                return "\(m.type) of \(m.bytes.count) bytes"
            }
        }
        return nil
    }

    @Test func twentyThousandRandomAndMutatedMessagesNeverBreakTheServer() {
        var rng = SplitMix64(seed: 0x5EED_0F_F022)
        var server = makeServer()
        for n in 1...3 { server.add(testDevice(UInt32(n))) }
        let corpus = Self.corpus()
        var answered = 0
        var opened = 0
        var gpadlsCreated = 0
        var lastRejected = 0
        for iteration in 0..<20_000 {
            let bytes: [UInt8]
            switch Int.random(in: 0..<10, using: &rng) {
            case 0..<2:  // pure noise, sometimes with a plausible type
                var noise = (0..<Int.random(in: 0...260, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
                if noise.count >= 8, Bool.random(using: &rng) {
                    noise[0] = UInt8.random(in: 0...30, using: &rng)
                    noise[1] = 0; noise[2] = 0; noise[3] = 0
                }
                bytes = noise
            case 2..<5:  // a valid message, so the fuzzer reaches deep states
                bytes = Int.random(in: 0..<100, using: &rng) == 0
                    ? corpus.handshake.randomElement(using: &rng)! : corpus.traffic.randomElement(using: &rng)!
            default:
                bytes = Self.mutate(Int.random(in: 0..<20, using: &rng) == 0
                    ? corpus.handshake.randomElement(using: &rng)! : corpus.traffic.randomElement(using: &rng)!,
                                    using: &rng)
            }
            var actions = server.handle(bytes)
            if server.connection == .disconnected, Int.random(in: 0..<4, using: &rng) == 0 {
                // Mutated handshakes and UNLOADs reset the connection often: reconnect, so that the
                // fuzzer spends its time on connected traffic.
                actions += server.feed(initiateContact(.copper)) + server.feed(.requestOffers(RequestOffers()))
            }
            // Play the runtime: map the rings of every channel the server asks to open (sometimes failing).
            var pending = actions
            while let action = pending.first {
                pending.removeFirst()
                if case .openChannel(let relID, _, _, _, _) = action {
                    let status: UInt32 = Int.random(in: 0..<8, using: &rng) == 0 ? 0xC000_0001 : 0
                    let more = server.channelOpenCompleted(relID: relID, status: status)
                    actions += more
                    pending += more
                }
            }
            if !actions.isEmpty { answered += 1 }
            for action in actions {
                if case .openChannel = action { opened += 1 }
                if case .send(.gpadlCreated(let c)) = action, c.creationStatus == 0 { gpadlsCreated += 1 }
            }
            if Int.random(in: 0..<500, using: &rng) == 0 {
                // Device side: rescind a random relid now and then ...
                actions += server.rescind(relID: UInt32.random(in: 1...4, using: &rng))
            }
            while server.channels.count < 3 {
                // ... and add a device when one is gone for good: it takes the lowest free relid again.
                actions += server.addOffer(testDevice(UInt32(10 + iteration % 100)), subchannelIndex: 0)?.1 ?? []
            }
            if let broken = Self.checkInvariants(server, actions) {
                Issue.record("iteration \(iteration): \(broken) after \(bytes)")
                return
            }
            #expect(server.rejectedMessages >= lastRejected)
            lastRejected = server.rejectedMessages
        }
        // The fuzzer got past the handshake and was mostly refused, as it should be.
        #expect(answered > 1000)
        #expect(opened > 50)
        #expect(gpadlsCreated > 100)
        #expect(server.rejectedMessages > 5000)
        // Devices added afresh are usable after the storm.
        for n in 4...5 { _ = server.addOffer(testDevice(UInt32(n)), subchannelIndex: 0) }
        expectStillWorks(&server)
    }

    @Test func pureNoiseNeverGetsPastTheHandshake() {
        var rng = SplitMix64(seed: 42)
        var server = makeServer()
        server.add(testDevice(1))
        for _ in 0..<5_000 {
            var bytes = (0..<Int.random(in: 0...250, using: &rng)).map { _ in UInt8.random(in: 0...255, using: &rng) }
            // Never INITIATE_CONTACT.
            if bytes.count >= 4, bytes[0] == 14, bytes[1] == 0, bytes[2] == 0, bytes[3] == 0 { bytes[0] = 3 }
            #expect(server.handle(bytes).isEmpty)
        }
        #expect(server.connection == .disconnected)
        #expect(server.rejectedMessages == 5_000)
        expectStillWorks(&server)
    }
}
