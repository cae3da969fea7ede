import Testing
import VMBusNetProtocol
import VMBusNetVSP
import VMBusWire

/// The RNDIS device and the NVSP negotiation as state machines, without channels.
struct RNDISDeviceTests {
    static let config = RNDISDevice.Configuration(macAddress: [2, 0, 0, 0, 0, 1], mtu: 1500)

    static func query(_ d: inout RNDISDevice, _ oid: RNDISOID) -> RNDISQueryComplete? {
        let (r, _) = d.handle(.queryRequest(RNDISQueryRequest(requestID: 9, oid: oid)), nvspVersion: .v61)
        guard case .queryComplete(let c)? = r else { return nil }
        return c
    }

    @Test func initializeAnswersWithLinuxsBatchingFigures() {
        var d = RNDISDevice(configuration: Self.config)
        let (r, effect) = d.handle(.initializeRequest(RNDISInitializeRequest(requestID: 1, maxTransferSize: 0x4000)),
                                   nvspVersion: .v61)
        guard case .initializeComplete(let c)? = r else { Issue.record("no INIT_C"); return }
        #expect(c.requestID == 1 && c.status == .success && c.maxPacketsPerMessage == 8 && c.packetAlignmentFactor == 3)
        #expect(effect == .initialized && d.stage == .initialized)
    }

    @Test func keepaliveResetAndHaltBehaveAsLinuxExpects() {
        var d = RNDISDevice(configuration: Self.config)
        _ = d.handle(.initializeRequest(RNDISInitializeRequest(requestID: 1, maxTransferSize: 0x4000)), nvspVersion: .v61)
        #expect(d.handle(.keepaliveRequest(RNDISKeepaliveRequest(requestID: 5)), nvspVersion: .v61).0 ==
                .keepaliveComplete(RNDISKeepaliveComplete(requestID: 5, status: .success)))
        #expect(d.handle(.resetRequest(RNDISResetRequest()), nvspVersion: .v61).0 ==
                .resetComplete(RNDISResetComplete(status: .success, addressingReset: 0)))
        let (r, effect) = d.handle(.halt(RNDISHaltRequest(requestID: 6)), nvspVersion: .v61)
        #expect(r == nil && effect == .halted && d.stage == .halted && d.packetFilter.isEmpty)
    }

    @Test func queriesLinuxMakesAreAnswered() {
        var d = RNDISDevice(configuration: Self.config)
        #expect(Self.query(&d, .genMaximumFrameSize)?.infoBuffer == [0xDC, 0x05, 0, 0])
        #expect(Self.query(&d, .ieee802_3PermanentAddress)?.infoBuffer == [2, 0, 0, 0, 0, 1])
        #expect(Self.query(&d, .genMediaConnectStatus)?.infoBuffer == [0, 0, 0, 0])
        #expect(Self.query(&d, .genLinkSpeed)?.infoBuffer == [0x00, 0xE1, 0xF5, 0x05])
        let name = Self.query(&d, .genFriendlyName)?.infoBuffer ?? []
        #expect(name.count == 2 * ("Network Adapter".utf16.count + 1))
        d.linkUp = false
        #expect(Self.query(&d, .genMediaConnectStatus)?.infoBuffer == [1, 0, 0, 0])
    }

    @Test func unknownOIDsGetNotSupportedNeverSilence() {
        var d = RNDISDevice(configuration: Self.config)
        #expect(Self.query(&d, RNDISOID(rawValue: 0x1234_5678))?.status == .notSupported)
        #expect(Self.query(&d, .genReceiveScaleCapabilities)?.status == .notSupported)
        let (r, _) = d.handle(.setRequest(RNDISSetRequest(requestID: 3, oid: RNDISOID(rawValue: 7), infoBuffer: [1])),
                              nvspVersion: .v61)
        #expect(r == .setComplete(RNDISSetComplete(requestID: 3, status: .notSupported)))
        #expect(d.unsupportedRequests == 3)
    }

    @Test func offloadCapabilitiesFollowTheRequestedRevision() throws {
        var d = RNDISDevice(configuration: Self.config)
        for (revision, size) in [(NDISOffload.revision1, NDISOffload.size6_0), (NDISOffload.revision2, NDISOffload.size6_1),
                                 (NDISOffload.revision3, NDISOffload.wireSize)] {
            var w = WireWriter()
            NDISObjectHeader(type: NDISObjectHeader.typeOffload, revision: revision, size: UInt16(size)).encode(into: &w)
            let (r, _) = d.handle(.queryRequest(RNDISQueryRequest(requestID: 1, oid: .tcpOffloadHardwareCapabilities,
                                                                  infoBuffer: w.bytes)), nvspVersion: .v61)
            guard case .queryComplete(let c)? = r else { Issue.record("no QUERY_C"); return }
            #expect(c.infoBuffer.count == size)
            var reader = WireReader(c.infoBuffer)
            let caps = try NDISOffload(from: &reader)
            #expect(caps.checksum.ip4TXChecksum & NDISChecksumOffload.allTCP4 == NDISChecksumOffload.allTCP4)
        }
    }

    @Test func packetFilterAndNetworkAddressSets() {
        var d = RNDISDevice(configuration: Self.config)
        let (_, e) = d.handle(.setRequest(RNDISSetRequest(requestID: 1, oid: .genCurrentPacketFilter, infoBuffer: [0x0D, 0, 0, 0])),
                              nvspVersion: .v61)
        #expect(e == .packetFilterChanged(.linuxDefault))
        let (short, _) = d.handle(.setRequest(RNDISSetRequest(requestID: 2, oid: .genCurrentPacketFilter, infoBuffer: [1])),
                                  nvspVersion: .v61)
        #expect(short == .setComplete(RNDISSetComplete(requestID: 2, status: .invalidLength)))
        var w = WireWriter()
        RNDISConfigParameterInfo.networkAddress([0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE]).encode(into: &w)
        let (_, m) = d.handle(.setRequest(RNDISSetRequest(requestID: 3, oid: .genRNDISConfigParameter, infoBuffer: w.bytes)),
                              nvspVersion: .v61)
        #expect(m == .macAddressChanged([0x02, 0xAA, 0xBB, 0xCC, 0xDD, 0xEE]))
        let (bad, _) = d.handle(.setRequest(RNDISSetRequest(requestID: 4, oid: .genRNDISConfigParameter, infoBuffer: [1, 2, 3])),
                                nvspVersion: .v61)
        #expect(bad == .setComplete(RNDISSetComplete(requestID: 4, status: .invalidData)))
    }

    @Test func negotiationAcceptsOnlyConfiguredVersionsAndKeepsTheLastSuccess() {
        var n = NetVSPNegotiation(configuration: .init(acceptedVersions: [.v5, .v2]))
        #expect(n.handle(.`init`(NVSPInit(version: .v61))) ==
                .complete(.initComplete(NVSPInitComplete(negotiatedProtocolVersion: .v61, status: .fail))))
        #expect(n.stage == .awaitingInit && !n.bufferAllowed)
        #expect(n.handle(.sendNDISVersion(.ndis6_30)) == .refuse("SEND_NDIS_VER before INIT"))
        #expect(n.handle(.`init`(NVSPInit(version: .v5))) ==
                .complete(.initComplete(NVSPInitComplete(negotiatedProtocolVersion: .v5, maxMDLChainLength: 34, status: .success))))
        #expect(n.version == .v5 && n.bufferAllowed && n.messageSize == NVSPMessage.legacyWireSize)
        #expect(n.handle(.`init`(NVSPInit(minProtocolVersion: .v1, maxProtocolVersion: .v4))) ==
                .complete(.initComplete(NVSPInitComplete(negotiatedProtocolVersion: .v2, maxMDLChainLength: 34, status: .success))))
        #expect(n.handle(.sendNDISConfig(NVSPSendNDISConfig(mtu: 1514, capability: .ieee8021q))) == .none)
        #expect(n.ndisConfig?.mtu == 1514)
    }
}
