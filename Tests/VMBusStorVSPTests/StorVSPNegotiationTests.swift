import Testing
import VMBusStorageProtocol
import VMBusStorVSP

@Suite struct StorVSPNegotiationTests {
    func packet(_ op: VStorOperation) -> VStorPacket { VStorPacket(operation: op) }

    func versionQuery(_ v: StorageProtocolVersion) -> VStorPacket {
        var p = packet(.queryProtocolVersion)
        p.version = StorageVersionBody(v)
        return p
    }

    /// Linux's sequence against a host that speaks at most `hostMax`: the versions Linux tries in order, the
    /// first one accepted wins.
    func linuxSequence(_ n: inout StorVSPNegotiation) -> StorageProtocolVersion? {
        #expect(n.handle(packet(.beginInitialization)).completion.status == .success)
        var agreed: StorageProtocolVersion?
        for v in StorageProtocolVersion.linuxTryOrder {
            let out = n.handle(versionQuery(v))
            #expect(out.completion.operation == .completeIO)
            if out.completion.status.isSuccess {
                agreed = v
                break
            }
            #expect(out.completion.status == .revisionMismatch)
        }
        guard agreed != nil else { return nil }
        let props = n.handle(packet(.queryProperties))
        #expect(props.completion.status == .success)
        let end = n.handle(packet(.endInitialization))
        #expect(end.action == .becameReady)
        return agreed
    }

    @Test(arguments: [
        ([StorageProtocolVersion.win10, .win8_1, .win8], StorageProtocolVersion.win10),
        ([.win8_1, .win8], .win8_1),
        ([.win8], .win8),
    ])
    func eachVersionHyperVShipsIsNegotiatedInLinuxsOrder(accepted: [StorageProtocolVersion], expected: StorageProtocolVersion) {
        var n = StorVSPNegotiation(configuration: .init(acceptedVersions: Set(accepted), maxSubchannels: 3))
        #expect(linuxSequence(&n) == expected)
        #expect(n.stage == .ready)
        #expect(n.version == expected)
    }

    @Test func aHostWithOnlyPreWin8VersionsLeavesLinuxWithout() {
        var n = StorVSPNegotiation(configuration: .init(acceptedVersions: [.win7, .win6]))
        #expect(linuxSequence(&n) == nil)
        #expect(n.stage == .begun)
        // An older guest asking for 4.2 gets it, with the 48-byte packet.
        #expect(n.handle(versionQuery(.win7)).completion.status == .success)
        #expect(n.version?.packetSize == 48)
    }

    @Test func propertiesReportTransferSizeAndSubchannels() {
        var n = StorVSPNegotiation(configuration: .init(maxSubchannels: 7, maxTransferBytes: 1024 * 1024 + 100))
        _ = n.handle(packet(.beginInitialization))
        _ = n.handle(versionQuery(.win10))
        let p = n.handle(packet(.queryProperties)).completion.properties
        #expect(p.maxTransferBytes == 1024 * 1024)
        #expect(p.maxChannelCount == 7)
        #expect(p.supportsMultiChannel)
        // At 4.2 there is no multi-channel.
        #expect(n.properties(at: .win7).maxChannelCount == 0)
        #expect(!n.properties(at: .win7).supportsMultiChannel)
    }

    @Test func subchannelsAreOfferedUpToTheMaximumAndNoMore() {
        var n = StorVSPNegotiation(configuration: .init(maxSubchannels: 4))
        _ = linuxSequence(&n)
        var ask = packet(.createSubChannels)
        ask.subChannelCount = 3
        let first = n.handle(ask)
        #expect(first.completion.status == .success)
        #expect(first.action == .offerSubchannels(3))
        ask.subChannelCount = 2
        let second = n.handle(ask)
        #expect(second.completion.status == .invalidParameter)
        #expect(second.action == .none)
        ask.subChannelCount = 0
        #expect(n.handle(ask).completion.status == .invalidParameter)
        ask.subChannelCount = 1
        #expect(n.handle(ask).action == .offerSubchannels(1))
        #expect(n.subchannelsOffered == 4)
    }

    @Test func anIDEControllerHasNoSubchannels() {
        var n = StorVSPNegotiation(configuration: .init(maxSubchannels: 0))
        _ = linuxSequence(&n)
        var ask = packet(.createSubChannels)
        ask.subChannelCount = 1
        #expect(n.handle(ask).completion.status == .invalidDeviceRequest)
    }

    @Test func outOfOrderAndUnknownOperationsAreRefusedWithoutChangingState() {
        var n = StorVSPNegotiation(configuration: .init())
        for op in [VStorOperation.queryProperties, .endInitialization, .queryProtocolVersion, .completeIO,
                   .removeDevice, .enumerateBus, .fcHBAData, .createSubChannels, VStorOperation(rawValue: 99)] {
            #expect(n.handle(packet(op)).completion.status == .invalidDeviceRequest, "\(op)")
            #expect(n.stage == .awaitingBegin)
        }
        _ = n.handle(packet(.beginInitialization))
        #expect(n.handle(packet(.beginInitialization)).completion.status == .invalidDeviceRequest)
        #expect(n.handle(packet(.endInitialization)).completion.status == .invalidDeviceRequest)
        #expect(n.stage == .begun)
        #expect(n.refusal(for: packet(.executeSRB))?.status == .invalidDeviceRequest)
        _ = n.handle(versionQuery(.win10))
        _ = n.handle(packet(.queryProperties))
        _ = n.handle(packet(.endInitialization))
        #expect(n.refusal(for: packet(.executeSRB)) == nil)
        // After initialization, another BEGIN is out of order too.
        #expect(n.handle(packet(.beginInitialization)).completion.status == .invalidDeviceRequest)
        #expect(n.stage == .ready)
    }

    @Test func resetsSucceedInAnyState() {
        var n = StorVSPNegotiation(configuration: .init())
        for op in [VStorOperation.resetBus, .resetLUN, .resetAdapter] {
            #expect(n.handle(packet(op)).completion.status == .success)
        }
        #expect(n.stage == .awaitingBegin)
    }

    @Test func completionsAreAsLongAsTheirRequest() {
        #expect(StorVSPNegotiation.completionLength(forRequestPayload: 64) == 64)
        #expect(StorVSPNegotiation.completionLength(forRequestPayload: 48) == 48)
        #expect(StorVSPNegotiation.completionLength(forRequestPayload: 8) == 12)
    }
}
