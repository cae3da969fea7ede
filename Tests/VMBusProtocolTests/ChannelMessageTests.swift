import VMBusLayoutTesting
import Testing
import VMBusProtocol
import VMBusWire

@Suite struct ChannelMessageTests {
    // MARK: Round trips

    @Test(arguments: MessageCase.all)
    func everyMessageSurvivesEncodeThenParse(_ c: MessageCase) throws {
        let bytes = c.message.bytes
        #expect(bytes.count <= ChannelMessage.maximumLength)
        #expect(try ChannelMessage.parse(bytes) == c.message)
        #expect(c.message.type == type(of: c.message.payload).messageType)
        var w = WireWriter()
        c.message.encode(into: &w)
        #expect(w.bytes == bytes)
    }

    @Test func thereIsOneSampleOfEveryMessageType() {
        #expect(Samples.onePerType.map(\.type.rawValue) == Array(1...29))
    }

    @Test func eachStructWrapsItselfInTheMatchingCase() {
        for message in Samples.all {
            #expect(message.payload.channelMessage == message)
        }
    }

    @Test func bytesBeyondAFixedMessageAreIgnored() throws {
        let bytes = Samples.rescind.wireBytes + [0xEE, 0xEE, 0xEE, 0xEE]
        #expect(try ChannelMessage.parse(bytes) == .rescindChannelOffer(Samples.rescind))
        let offer = Samples.offer.wireBytes + [1, 2, 3, 4, 5, 6, 7, 8]
        #expect(try ChannelMessage.parse(offer) == .offerChannel(Samples.offer))
    }

    @Test func theLonger60FormsAreRecognisedByLength() throws {
        // 40..55 bytes: plain INITIATE_CONTACT, no client id.
        var plain = Samples.initiateContact2
        plain.clientID = nil
        let fortyEight = Array(Samples.initiateContact2.wireBytes.prefix(48))
        #expect(try ChannelMessage.parse(fortyEight) == .initiateContact(plain))
        // 16..19 bytes: VERSION_RESPONSE without supported_features; a VersionResponse3 tail is ignored.
        var legacy = Samples.versionResponse2
        legacy.supportedFeatures = nil
        #expect(try ChannelMessage.parse(Array(Samples.versionResponse2.wireBytes.prefix(18))) == .versionResponse(legacy))
        let response3 = Samples.versionResponse2.wireBytes + [UInt8](repeating: 0xAB, count: 20)
        #expect(try ChannelMessage.parse(response3) == .versionResponse(Samples.versionResponse2))
    }

    @Test func linuxSizesAreWhatLinuxSends() {
        #expect(Samples.offer.wireBytes.count == 196)
        #expect(Samples.openChannel.wireBytes.count == 148)
        #expect(Samples.initiateContact.wireBytes.count == 40)
        #expect(Samples.versionResponse.wireBytes.count == 16)
        #expect(Samples.tlConnectRequest.wireBytes.count == 40)
        #expect(RequestOffers().wireBytes.count == 8)
    }

    // MARK: Malformed input

    @Test(arguments: MessageCase.all)
    func everyPrefixShorterThanTheMinimumIsRejected(_ c: MessageCase) throws {
        let bytes = c.message.bytes
        let minimum = try #require(c.message.type.minimumLength)
        for length in 0..<minimum {
            let prefix = Array(bytes.prefix(length))
            #expect(throws: ChannelMessageError.self, "prefix of \(length) bytes") { try ChannelMessage.parse(prefix) }
            if length < 8 {
                #expect(throws: ChannelMessageError.missingHeader(length: length)) { try ChannelMessage.parse(prefix) }
            } else {
                #expect(throws: ChannelMessageError.tooShort(type: c.message.type, length: length, minimum: minimum)) {
                    try ChannelMessage.parse(prefix)
                }
            }
        }
    }

    @Test(arguments: MessageCase.all)
    func everyTruncatedPrefixThrowsOrDecodesToADifferentMessage(_ c: MessageCase) {
        let bytes = c.message.bytes
        for length in 0..<bytes.count {
            let prefix = Array(bytes.prefix(length))
            if let parsed = try? ChannelMessage.parse(prefix) {
                // Only variable-length messages (GPADL range data) and the longer 6.0 forms have valid prefixes.
                #expect(parsed != c.message, "prefix of \(length) bytes")
                #expect(length >= c.message.type.minimumLength ?? .max)
            }
        }
    }

    @Test(arguments: MessageCase.all)
    func theStructDecoderThrowsTruncatedForEveryPrefixOfItsFixedPart(_ c: MessageCase) {
        let payload = c.message.payload
        let bytes = payload.wireBytes
        let fixed = type(of: payload).wireSize
        for length in 0..<min(fixed, bytes.count) {
            var r = WireReader(Array(bytes.prefix(length)))
            do {
                _ = try type(of: payload).init(from: &r)
                Issue.record("\(c.message.type): prefix of \(length) bytes decoded")
            } catch {
                guard case .truncated = error else {
                    Issue.record("\(c.message.type): prefix of \(length) bytes threw \(error)")
                    continue
                }
            }
        }
    }

    @Test func messagesLongerThan240BytesAreRejected() {
        var bytes = Samples.gpadlBody.wireBytes
        bytes += [UInt8](repeating: 0, count: 241 - bytes.count)
        #expect(throws: ChannelMessageError.tooLong(241)) { try ChannelMessage.parse(bytes) }
        bytes.removeLast()
        #expect(throws: Never.self) { try ChannelMessage.parse(bytes) }
        #expect(throws: ChannelMessageError.tooLong(4096)) { try ChannelMessage.parse([UInt8](repeating: 1, count: 4096)) }
    }

    @Test(arguments: [UInt32(0), 30, 31, 255, 0x8000_0000, .max])
    func unknownAndInvalidTypesAreRejected(_ raw: UInt32) {
        let bytes = le(raw) + [UInt8](repeating: 0, count: 200)
        #expect(throws: ChannelMessageError.unknownType(raw)) { try ChannelMessage.parse(bytes) }
        #expect(!ChannelMessageType(rawValue: raw).isKnown)
        #expect(ChannelMessageType(rawValue: raw).minimumVersion == .never)
    }

    @Test func aStructRefusesAHeaderOfAnotherType() {
        #expect(throws: WireError.invalidValue(field: "vmbus_channel_message_header.msgtype", value: 2)) {
            try OfferChannel(wireBytes: Samples.rescind.wireBytes + [UInt8](repeating: 0, count: 200))
        }
        #expect(throws: WireError.self) { try Unload(wireBytes: RequestOffers().wireBytes) }
    }

    @Test func gpadlHeaderCountsThatCannotDescribeAStreamStillParse() throws {
        // The guest waits for GPADL_CREATED on these too, so the parser lets them through and the host's
        // assembler refuses them with a failing answer.
        func header(buflen: UInt16, count: UInt16) -> [UInt8] {
            GPADLHeader(childRelID: 1, gpadl: 2, rangeBufferLength: buflen, rangeCount: count, rangeData: []).wireBytes
        }
        for (buflen, count): (UInt16, UInt16) in [(16, 0), (20, 1), (32, 3), (0xFFF8, 0xFFFF), (0, 1), (32, 2)] {
            guard case .gpadlHeader(let h) = try ChannelMessage.parse(header(buflen: buflen, count: count)) else {
                Issue.record("not a GPADL_HEADER"); continue
            }
            #expect(h.rangeBufferLength == buflen && h.rangeCount == count)
        }
    }

    @Test func gpadlPayloadsUpToTheSynICLimitParse() throws {
        let body = GPADLBody(gpadl: 7, data: patternBytes(224, from: 0))
        #expect(try ChannelMessage.parse(body.wireBytes) == .gpadlBody(body))
        let header = GPADLHeader(childRelID: 1, gpadl: 7, rangeBufferLength: 0xFFF8, rangeCount: 1, rangeData: patternBytes(220, from: 9))
        #expect(try ChannelMessage.parse(header.wireBytes) == .gpadlHeader(header))
        #expect(GPADLHeader.maximumRangeDataLength == 220)
        #expect(GPADLBody.maximumDataLength == 224)
    }

    // MARK: Table

    @Test func theTableIsIndexedByMessageType() {
        #expect(ChannelMessage.table.count == 29)
        for (index, entry) in ChannelMessage.table.enumerated() {
            #expect(entry.type.rawValue == UInt32(index + 1))
            #expect(ChannelMessage.entry(for: entry.type)?.type == entry.type)
        }
        #expect(ChannelMessage.entry(for: .invalid) == nil)
    }

    @Test func minimumLengthsAreLinuxsWhereLinuxHasOneAndTheStructSizeElsewhere() throws {
        for row in LinuxConstants.channelMessageTable where row.type != 0 {
            let type = ChannelMessageType(rawValue: row.type)
            let minimum = try #require(type.minimumLength, "\(row.name)")
            if row.minimumPayloadLength != 0 {
                #expect(minimum == row.minimumPayloadLength, "\(row.name)")
            } else {
                #expect(minimum >= 8, "\(row.name)")
            }
        }
        for entry in ChannelMessage.table {
            #expect(entry.minimumLength == type(of: Samples.onePerType[Int(entry.type.rawValue) - 1].payload).wireSize)
        }
    }

    @Test func typeValuesAndNamesMatchLinux() throws {
        for (name, value) in LinuxConstants.enumValues where name.hasPrefix("CHANNELMSG_") && name != "CHANNELMSG_COUNT" {
            let type = ChannelMessageType(rawValue: UInt32(value))
            if (18...20).contains(value) {
                #expect(name == "CHANNELMSG_\(value)")
            } else {
                #expect(type.description == name)
            }
        }
        #expect(LinuxConstants.enumValues["CHANNELMSG_COUNT"] == Int64(ChannelMessageType.linuxCount))
        #expect(ChannelMessageType.modifyChannelResponse.rawValue == 24)
        #expect(ChannelMessageType.resume.rawValue == 29)
        #expect(ChannelMessageType(rawValue: 77).description == "CHANNELMSG_77")
    }

    @Test func directionsFollowTheProtocolTable() {
        let guestSends: Set<UInt32> = [3, 5, 7, 8, 9, 11, 13, 14, 16, 18, 19, 21, 22, 25, 27, 29]
        for entry in ChannelMessage.table {
            #expect(entry.direction == (guestSends.contains(entry.type.rawValue) ? .guestToHost : .hostToGuest), "\(entry.type)")
        }
        // Linux's table lists what a guest receives with a non-zero minimum only for host-to-guest types.
        for row in LinuxConstants.channelMessageTable where row.minimumPayloadLength != 0 {
            #expect(ChannelMessageType(rawValue: row.type).direction == .hostToGuest, "\(row.name)")
        }
    }

    @Test func minimumVersionsFollowTheProtocolTable() {
        #expect(ChannelMessageType.offerChannel.minimumVersion == .ws2008)
        #expect(ChannelMessageType.unloadResponse.minimumVersion == .win7)
        #expect(ChannelMessageType.tlConnectRequest.minimumVersion == .win10)
        #expect(ChannelMessageType.openReservedChannel.minimumVersion == .win10)
        #expect(ChannelMessageType.modifyChannel.minimumVersion == .win10_v4_1)
        #expect(ChannelMessageType.tlConnectResult.minimumVersion == .win10_v4_1)
        #expect(ChannelMessageType.modifyChannelResponse.minimumVersion == .win10_v5_3)
        #expect(ChannelMessageType.pause.minimumVersion == .copper)
        #expect(ChannelMessageType.pause.requiredFeature == .pauseResume)
        #expect(ChannelMessageType.modifyConnectionResponse.requiredFeature == .modifyConnection)
        #expect(ChannelMessageType.gpadlBody.requiredFeature == nil)
    }

    // MARK: Version, direction and feature checks

    @Test func aMessageFromTheWrongSideIsRejected() {
        #expect(throws: ChannelMessageError.wrongDirection(.offerChannel, .guestToHost)) {
            try ChannelMessage.parse(Samples.offer.wireBytes, from: .guestToHost, version: .win10_v5_3)
        }
        #expect(throws: Never.self) {
            try ChannelMessage.parse(Samples.offer.wireBytes, from: .hostToGuest, version: .win10_v5_3)
        }
    }

    @Test func onlyTheHandshakeIsAllowedBeforeNegotiation() {
        #expect(throws: Never.self) {
            try ChannelMessage.parse(Samples.initiateContact.wireBytes, from: .guestToHost, version: nil)
        }
        #expect(throws: Never.self) {
            try ChannelMessage.parse(Samples.versionResponse.wireBytes, from: .hostToGuest, version: nil)
        }
        #expect(throws: ChannelMessageError.notNegotiated(.requestOffers)) {
            try ChannelMessage.parse(RequestOffers().wireBytes, from: .guestToHost, version: nil)
        }
    }

    @Test func aMessageBelowItsMinimumVersionIsRejected() {
        #expect(throws: ChannelMessageError.unsupportedVersion(.modifyChannel, .win10)) {
            try ChannelMessage.parse(Samples.modifyChannel.wireBytes, from: .guestToHost, version: .win10)
        }
        #expect(throws: Never.self) {
            try ChannelMessage.parse(Samples.modifyChannel.wireBytes, from: .guestToHost, version: .win10_v4_1)
        }
        #expect(throws: ChannelMessageError.unsupportedVersion(.unloadResponse, .ws2008)) {
            try ChannelMessageType.unloadResponse.checkAllowed(from: .hostToGuest, version: .ws2008)
        }
    }

    @Test func copperMessagesNeedTheirFeatureFlag() {
        #expect(throws: ChannelMessageError.featureNotNegotiated(.pause, .pauseResume)) {
            try ChannelMessage.parse(Pause().wireBytes, from: .guestToHost, version: .copper, features: [.modifyConnection])
        }
        #expect(throws: Never.self) {
            try ChannelMessage.parse(Pause().wireBytes, from: .guestToHost, version: .copper, features: [.pauseResume])
        }
        #expect(throws: ChannelMessageError.unsupportedVersion(.pause, .win10_v5_3)) {
            try ChannelMessage.parse(Pause().wireBytes, from: .guestToHost, version: .win10_v5_3, features: [.pauseResume])
        }
    }

    @Test func errorsDescribeThemselves() {
        let errors: [ChannelMessageError] = [
            .tooLong(300), .missingHeader(length: 3), .unknownType(99),
            .tooShort(type: .offerChannel, length: 100, minimum: 196),
            .malformed(.gpadlHeader, .invalidValue(field: "x", value: 1)), .wrongDirection(.offerChannel, .guestToHost),
            .notNegotiated(.requestOffers), .unsupportedVersion(.modifyChannel, .win8),
            .featureNotNegotiated(.pause, .pauseResume),
        ]
        for error in errors { #expect(!error.description.isEmpty) }
        #expect(ChannelMessageError.tooShort(type: .offerChannel, length: 100, minimum: 196).description
            == "CHANNELMSG_OFFERCHANNEL of 100 bytes is shorter than its minimum of 196 bytes")
    }

    // MARK: Field semantics

    @Test func fixedByteArraysArePaddedOrTruncatedTo120Bytes() {
        var offer = OfferChannel(interfaceType: .zero, interfaceInstance: .zero, userDefined: [1, 2, 3], childRelID: 1, connectionID: 1)
        #expect(offer.userDefined.count == 120)
        #expect(offer.userDefined.prefix(4) == [1, 2, 3, 0])
        offer.userDefined = [UInt8](repeating: 9, count: 200)
        #expect(offer.userDefined.count == 120)
        offer.pipeMode = 4
        #expect(offer.userDefined.prefix(4) == [4, 0, 0, 0])
        var open = Samples.openChannel
        open.userData = []
        #expect(open.userData == [UInt8](repeating: 0, count: 120))
    }

    @Test func offerFlagBitsOnlyUseTheirOwnBits() throws {
        var bytes = Samples.offer.wireBytes
        bytes[189] = 0xFE  // reserved:7 set, monitor_allocated clear
        bytes[190] = 0xFE
        bytes[191] = 0xFF  // reserved1:15 set, is_dedicated_interrupt clear
        let offer = try OfferChannel(wireBytes: bytes)
        #expect(!offer.monitorAllocated)
        #expect(!offer.isDedicatedInterrupt)
        var flags = offer.flags
        flags.insert(.namedPipeMode)
        #expect(OfferChannelFlags(rawValue: 0xB1B2).union(.namedPipeMode) == flags)
    }

    @Test func offerFlagValuesMatchLinux() {
        let pairs: [(OfferChannelFlags, String)] = [
            (.enumerateDeviceInterface, "VMBUS_CHANNEL_ENUMERATE_DEVICE_INTERFACE"),
            (.serverSupportsTransferPages, "VMBUS_CHANNEL_SERVER_SUPPORTS_TRANSFER_PAGES"),
            (.serverSupportsGPADLs, "VMBUS_CHANNEL_SERVER_SUPPORTS_GPADLS"),
            (.namedPipeMode, "VMBUS_CHANNEL_NAMED_PIPE_MODE"),
            (.loopbackOffer, "VMBUS_CHANNEL_LOOPBACK_OFFER"),
            (.parentOffer, "VMBUS_CHANNEL_PARENT_OFFER"),
            (.requestMonitoredNotification, "VMBUS_CHANNEL_REQUEST_MONITORED_NOTIFICATION"),
            (.tlnpiProviderOffer, "VMBUS_CHANNEL_TLNPI_PROVIDER_OFFER"),
        ]
        for (flag, name) in pairs { #expect(LinuxConstants.values[name] == UInt64(flag.rawValue), "\(name)") }
        #expect(LinuxConstants.values["MAX_USER_DEFINED_BYTES"] == UInt64(OfferChannel.userDefinedSize))
        #expect(LinuxConstants.values["MAX_SIZE_CHANNEL_MESSAGE"] == UInt64(ChannelMessage.maximumLength))
    }

    @Test func initiateContactUnionAccessorsOnlyTouchTheirBytes() {
        var m = InitiateContact(versionRequested: .win10_v5_3, targetVCPU: 0, interruptPage: 0xFFFF_FFFF_FFFF_FFFF)
        m.messageSINT = 2
        #expect(m.interruptPage == 0xFFFF_FFFF_FFFF_FF02)
        m.messageVTL = 0
        #expect(m.interruptPage == 0xFFFF_FFFF_FFFF_0002)
        m.featureFlags = [.clientID]
        #expect(m.interruptPage == 0x0000_0008_FFFF_0002)
        let linux = InitiateContact(versionRequested: .win10_v5_3, targetVCPU: 0, messageSINT: VMBusConnectionID.messageSINT)
        #expect(linux.interruptPage == 2)
        #expect(linux.wireBytes.count == 40)
    }

    @Test func versionSupportedAcceptsAnyNonZeroByte() throws {
        var bytes = Samples.versionResponse.wireBytes
        bytes[8] = 0x80
        #expect(try VersionResponse(wireBytes: bytes).versionSupported)
        bytes[8] = 0
        #expect(try !VersionResponse(wireBytes: bytes).versionSupported)
    }
}
