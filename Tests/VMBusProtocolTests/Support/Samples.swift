import VMBusLayoutTesting
import Testing
import VMBusProtocol
import VMBusWire

/// A GUID whose 16 wire bytes are `base`, `base + 1`, ... (so each field's bytes are distinct).
func patternGUID(_ base: UInt8) -> GUID {
    let b = (0..<16).map { base &+ UInt8($0) }
    return GUID(
        data1: UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24,
        data2: UInt16(b[4]) | UInt16(b[5]) << 8, data3: UInt16(b[6]) | UInt16(b[7]) << 8,
        data4: (b[8], b[9], b[10], b[11], b[12], b[13], b[14], b[15]))
}

/// `count` distinct bytes starting at `base`.
func patternBytes(_ count: Int, from base: UInt8) -> [UInt8] { (0..<count).map { base &+ UInt8(truncatingIfNeeded: $0) } }

/// One message of every type, every field set to a distinct value.
enum Samples {
    static let offer = OfferChannel(
        interfaceType: patternGUID(0x20), interfaceInstance: patternGUID(0x40), channelFlags: 0xB1B2,
        mmioMegabytes: 0xC1C2, userDefined: patternBytes(120, from: 0x60), subchannelIndex: 0xD1D2,
        mmioMegabytesOptional: 0xE1E2, childRelID: 0xF1F2_F3F4, monitorID: 0x5A, monitorAllocated: true,
        isDedicatedInterrupt: true, connectionID: 0x6A6B_6C6D)
    static let rescind = RescindChannelOffer(childRelID: 0x1121_3141)
    static let openChannel = OpenChannel(
        childRelID: 0x1112_1314, openID: 0x2122_2324, ringBufferGPADLHandle: 0x3132_3334, targetVP: 0x4142_4344,
        downstreamRingBufferPageOffset: 0x5152_5354, userData: patternBytes(120, from: 0x80))
    static let openChannel2 = OpenChannel(
        childRelID: 0x1112_1314, openID: 0x2122_2324, ringBufferGPADLHandle: 0x3132_3334, targetVP: 0x4142_4344,
        downstreamRingBufferPageOffset: 0x5152_5354, userData: patternBytes(120, from: 0x80),
        signalParameters: OpenChannelSignalParameters(connectionID: 0x6162_6364, eventFlag: 0x7172, flags: 0x8182))
    static let openResult = OpenChannelResult(childRelID: 0x1A1B_1C1D, openID: 0x2A2B_2C2D, status: 0x3A3B_3C3D)
    static let close = CloseChannel(childRelID: 0x4A4B_4C4D)
    static let gpadlHeader = GPADLHeader(
        childRelID: 0x1516_1718, gpadl: 0x2526_2728, rangeBufferLength: 24, rangeCount: 1,
        rangeData: le(UInt32(0x2000)) + le(UInt32(0)) + le(UInt64(0x0102_0304_0506)) + le(UInt64(0x0A0B_0C0D)))
    static let gpadlBody = GPADLBody(messageNumber: 0x3536_3738, gpadl: 0x4546_4748, data: le(UInt64(0x5556_5758_595A_5B5C)))
    static let gpadlCreated = GPADLCreated(childRelID: 0x1E1F_2021, gpadl: 0x2E2F_3031, creationStatus: 0x3E3F_4041)
    static let gpadlTeardown = GPADLTeardown(childRelID: 0x4E4F_5051, gpadl: 0x5E5F_6061)
    static let gpadlTorndown = GPADLTorndown(gpadl: 0x6E6F_7071)
    static let relIDReleased = RelIDReleased(childRelID: 0x7E7F_8081)
    static let initiateContact = InitiateContact(
        versionRequested: VMBusVersion(rawValue: 0x1314_1516), targetVCPU: 0x2324_2526,
        interruptPage: 0x3334_3536_3738_393A, monitorPage1: 0x4344_4546_4748_494A, monitorPage2: 0x5354_5556_5758_595A)
    static let initiateContact2 = InitiateContact(
        versionRequested: .copper, targetVCPU: 0x2324_2526, messageSINT: 0x37, messageVTL: 0x38,
        featureFlags: VMBusFeatureFlags(rawValue: 0x3C3D_3E3F), monitorPage1: 0x4344_4546_4748_494A,
        monitorPage2: 0x5354_5556_5758_595A, clientID: patternGUID(0x90))
    static let versionResponse = VersionResponse(versionSupported: true, connectionState: 0xC3, messageConnectionID: 0xD4D5_D6D7)
    static let versionResponse2 = VersionResponse(
        versionSupported: true, connectionState: 0xC3, messageConnectionID: 0xD4D5_D6D7, supportedFeatures: 0xE4E5_E6E7)
    static let openReserved = OpenReservedChannel(
        childRelID: 0x0102_0304, targetVP: 0x1112_1314, targetSINT: 0x2122_2324, ringBufferGPADLHandle: 0x3132_3334,
        downstreamRingBufferPageOffset: 0x4142_4344)
    static let closeReserved = CloseReservedChannel(childRelID: 0x5152_5354, targetVP: 0x6162_6364, targetSINT: 0x7172_7374)
    static let closeReservedResponse = CloseReservedResponse(childRelID: 0x8182_8384)
    static let tlConnectRequest = TLConnectRequest(guestEndpointID: patternGUID(0x10), hostServiceID: patternGUID(0x30))
    static let tlConnectRequest2 = TLConnectRequest(
        guestEndpointID: patternGUID(0x10), hostServiceID: patternGUID(0x30), siloID: patternGUID(0x50))
    static let modifyChannel = ModifyChannel(childRelID: 0x9192_9394, targetVP: 0xA1A2_A3A4)
    static let tlConnectResult = TLConnectResult(
        guestEndpointID: patternGUID(0x70), hostServiceID: patternGUID(0xA0), status: Int32(bitPattern: 0xC000_0236))
    static let modifyChannelResponse = ModifyChannelResponse(childRelID: 0xB1B2_B3B4, status: 0xC1C2_C3C4)
    static let modifyConnection = ModifyConnection(monitorPage1: 0x1112_1314_1516_1718, monitorPage2: 0x2122_2324_2526_2728)
    static let modifyConnectionResponse = ModifyConnectionResponse(connectionState: 0x9E)

    /// One per message type, in type order.
    static let onePerType: [ChannelMessage] = [
        .offerChannel(offer), .rescindChannelOffer(rescind), .requestOffers(RequestOffers()),
        .allOffersDelivered(AllOffersDelivered()), .openChannel(openChannel), .openChannelResult(openResult),
        .closeChannel(close), .gpadlHeader(gpadlHeader), .gpadlBody(gpadlBody), .gpadlCreated(gpadlCreated),
        .gpadlTeardown(gpadlTeardown), .gpadlTorndown(gpadlTorndown), .relIDReleased(relIDReleased),
        .initiateContact(initiateContact), .versionResponse(versionResponse), .unload(Unload()),
        .unloadResponse(UnloadResponse()), .openReservedChannel(openReserved), .closeReservedChannel(closeReserved),
        .closeReservedResponse(closeReservedResponse), .tlConnectRequest(tlConnectRequest),
        .modifyChannel(modifyChannel), .tlConnectResult(tlConnectResult),
        .modifyChannelResponse(modifyChannelResponse), .modifyConnection(modifyConnection),
        .modifyConnectionResponse(modifyConnectionResponse), .pause(Pause()), .pauseResponse(PauseResponse()),
        .resume(Resume()),
    ]

    /// The longer 6.0 forms.
    static let extendedForms: [ChannelMessage] = [
        .openChannel(openChannel2), .initiateContact(initiateContact2), .versionResponse(versionResponse2),
        .tlConnectRequest(tlConnectRequest2),
    ]

    static let all = onePerType + extendedForms
}

/// Lets parameterized tests show the message type instead of a dump.
struct MessageCase: Sendable, CustomTestStringConvertible {
    let message: ChannelMessage
    var testDescription: String { "\(message.type) (\(message.bytes.count) bytes)" }
    static let all = Samples.all.map(MessageCase.init)
}

