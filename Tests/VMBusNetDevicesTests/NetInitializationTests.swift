import Testing
import VMBusNetProtocol
import VMBusNetVSC
import VMBusNetVSP
import VMBusTestSupport

/// NetVSC's initialization against NetVSP at every NVSP version the host may accept.
@Suite(.serialized)
struct NetInitializationTests {
    @Test(arguments: NVSPProtocolVersion.all)
    func initializesAtEachVersionTheHostAccepts(_ version: NVSPProtocolVersion) throws {
        let rig = try NetRig(hostVersions: [version])
        defer { rig.stop() }
        try rig.start()
        #expect(rig.nic.version == version)
        #expect(rig.vsp.negotiatedVersion == version)
        #expect(rig.vsp.rndisStage == .initialized)
        #expect(rig.nic.permanentMACAddress == NetRig.mac)
        #expect(rig.nic.mtu == 9000)
        #expect(rig.nic.linkUp)
        #expect(rig.nic.sendSectionSize == 6144)
        #expect(rig.nic.receiveSlotSize == rig.vsp.receiveSlotSize)
        #expect(rig.nic.checksumOffload)
        #expect(rig.vsp.packetFilter == .linuxDefault)
        #expect(rig.backend.attachCount == 1)
        if version >= .v5 { #expect(rig.nic.linkSpeed == 100_000_000) }
        #expect(rig.vsp.counterSnapshot.protocolErrors == 0, "\(rig.vsp.counterSnapshot.lastError ?? "")")
    }

    @Test func aHostWithoutCommonVersionsIsRefused() throws {
        let rig = try NetRig(hostVersions: [.v61], guest: { $0.versions = [.v5, .v4] })
        defer { rig.system.stop() }
        #expect(throws: NetVSCError.self) { try rig.nic.start() }
    }

    @Test func theHostLowersTheMTUThroughMaximumFrameSize() throws {
        let rig = try NetRig(mtu: 9000, host: { $0.mtu = 1500 })
        defer { rig.stop() }
        try rig.start()
        #expect(rig.nic.mtu == 1500)
    }

    @Test func stopTearsDownAndTheDeviceCanStartAgain() throws {
        let rig = try NetRig()
        try rig.start()
        rig.nic.stop()
        #expect(eventually { rig.vsp.rndisStage == .uninitialized })
        let again = try NetVSC(device: rig.nic.device, configuration: rig.nic.configuration)
        try again.start()
        #expect(rig.vsp.rndisStage == .initialized)
        again.stop()
        rig.system.stop()
    }
}
