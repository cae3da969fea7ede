import VMBusHost
import VMBusProtocol
import VMBusTestSupport
import VMBusWire

// Helpers shared by the Server tests: build a server, feed it messages as the guest would (encoded bytes),
// and read the messages it answers with.

/// Guest memory of the test servers, in pages.
let testGuestPages: UInt64 = 1024

/// The first GPADL handle Linux uses.
let firstHandle: UInt32 = GPADLMessages.linuxFirstHandle

func makeServer(maxVersion: VMBusVersion = .copper, guestPageCount: UInt64 = testGuestPages,
                maxGPADLs: Int = 4096) -> Server {
    Server(configuration: .init(maxVersion: maxVersion, guestPageCount: guestPageCount, maxGPADLs: maxGPADLs))
}

/// A device offer whose instance GUID differs per `n`.
func testDevice(_ n: UInt32, flags: UInt16 = 0, mmioMegabytes: UInt16 = 0, userDefined: [UInt8] = [],
                maxSubchannels: Int = 4) -> HostDeviceOffer {
    HostDeviceOffer(classID: DeviceClass.echoTest.guid, instanceID: InProcessSystem.instanceID(n),
                    mmioMegabytes: mmioMegabytes, flags: flags, userDefined: userDefined,
                    maxSubchannels: maxSubchannels)
}

/// The messages among `actions`, in order.
func sentMessages(_ actions: [ServerAction]) -> [ChannelMessage] {
    actions.compactMap { if case .send(let m) = $0 { return m } else { return nil } }
}

/// INITIATE_CONTACT as Linux sends it for `version` (SINT 2 from 5.0 on).
func initiateContact(_ version: VMBusVersion, targetVCPU: UInt32 = 0) -> ChannelMessage {
    version.usesMessageConnectionID
        ? .initiateContact(InitiateContact(versionRequested: version, targetVCPU: targetVCPU,
                                           messageSINT: VMBusSynIC.messageSINT))
        : .initiateContact(InitiateContact(versionRequested: version, targetVCPU: targetVCPU))
}

func openMessage(relID: UInt32, openID: UInt32? = nil, gpadl: UInt32, targetVP: UInt32 = 0,
                 downstream: UInt32, userData: [UInt8] = []) -> ChannelMessage {
    .openChannel(OpenChannel(childRelID: relID, openID: openID ?? relID, ringBufferGPADLHandle: gpadl,
                             targetVP: targetVP, downstreamRingBufferPageOffset: downstream, userData: userData))
}

extension Server {
    /// Feeds `message` as the guest's encoded bytes.
    mutating func feed(_ message: ChannelMessage) -> [ServerAction] { handle(message.bytes) }

    /// Feeds `message` and returns only the messages the server answered with.
    mutating func reply(_ message: ChannelMessage) -> [ChannelMessage] { sentMessages(feed(message)) }

    /// INITIATE_CONTACT at `version` (must be accepted).
    mutating func connect(_ version: VMBusVersion = .copper) {
        let replies = reply(initiateContact(version))
        precondition(replies.count == 1, "handshake answered with \(replies)")
        guard case .versionResponse(let r) = replies[0], r.versionSupported else {
            preconditionFailure("version \(version) refused")
        }
    }

    /// Handshake, then REQUESTOFFERS; returns the offers sent.
    @discardableResult
    mutating func connectAndRequestOffers(_ version: VMBusVersion = .copper) -> [OfferChannel] {
        connect(version)
        return reply(.requestOffers(RequestOffers())).compactMap {
            if case .offerChannel(let o) = $0 { return o } else { return nil }
        }
    }

    /// Adds `device` as a primary channel and returns its relid.
    @discardableResult
    mutating func add(_ device: HostDeviceOffer, subchannelIndex: UInt16 = 0) -> UInt32 {
        guard let (relID, _) = addOffer(device, subchannelIndex: subchannelIndex) else {
            preconditionFailure("no relid left")
        }
        return relID
    }

    /// Sends a GPADL over `ranges` (header and bodies) and returns every action of the last message.
    mutating func createGPADL(relID: UInt32, handle: UInt32, ranges: [GPARange]) -> [ServerAction] {
        let (header, bodies) = GPADLMessages.split(childRelID: relID, gpadl: handle, ranges: ranges)
        var actions = feed(.gpadlHeader(header))
        for body in bodies {
            precondition(actions.isEmpty, "server answered before the last body: \(actions)")
            actions = feed(.gpadlBody(body))
        }
        return actions
    }

    /// Creates a ready GPADL of whole pages `pfns` (one range), expecting success.
    mutating func createGPADL(relID: UInt32, handle: UInt32, pfns: [UInt64]) {
        let replies = sentMessages(createGPADL(relID: relID, handle: handle, ranges: [GPARange(wholePages: pfns)]))
        precondition(replies == [.gpadlCreated(GPADLCreated(childRelID: relID, gpadl: handle, creationStatus: 0))],
                     "GPADL creation answered \(replies)")
    }

    /// Creates a ring GPADL of `pages` pages for `relID` and opens the channel with the downstream ring at
    /// `pages / 2`; the runtime's mapping succeeds.
    mutating func open(relID: UInt32, handle: UInt32, pages: Int = 8, firstPFN: UInt64 = 100,
                       targetVP: UInt32 = 0) {
        createGPADL(relID: relID, handle: handle, pfns: (0..<UInt64(pages)).map { firstPFN + $0 })
        let actions = feed(openMessage(relID: relID, gpadl: handle, targetVP: targetVP,
                                       downstream: UInt32(pages / 2)))
        precondition(actions.count == 1, "OPENCHANNEL answered \(actions)")
        guard case .openChannel = actions[0] else { preconditionFailure("OPENCHANNEL answered \(actions)") }
        let completed = channelOpenCompleted(relID: relID, status: 0)
        precondition(completed == [.send(.openChannelResult(OpenChannelResult(childRelID: relID, openID: relID,
                                                                             status: 0)))])
    }
}


/// Arbitrary distinct GUIDs.
enum GUIDs {
    static let a = InProcessSystem.instanceID(0xA1)
    static let b = InProcessSystem.instanceID(0xB2)
}
