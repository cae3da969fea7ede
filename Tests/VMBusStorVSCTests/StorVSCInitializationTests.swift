import Testing
import VMBusStorageProtocol
import VMBusStorVSC
import VMBusTestSupport

@Suite(.serialized)
struct StorVSCInitializationTests {
    @Test(arguments: [StorageProtocolVersion.win10, .win8_1, .win8])
    func agreesOnTheNewestVersionTheHostAccepts(_ hostVersion: StorageProtocolVersion) throws {
        let rig = try StorageRig(hostVersions: [hostVersion])
        defer { rig.stop() }
        let c = try #require(rig.controller)
        #expect(c.version == hostVersion)
        #expect(c.disks.map(\.lun) == [0])
    }

    @Test func aHostWithOnlyPreWin8VersionsIsRefusedWithATypedError() throws {
        let rig = try StorageRig(hostVersions: [.win7, .win6])
        defer { rig.stop() }
        #expect(rig.driver.controllers.isEmpty, "the driver does not bind")
        let device = try #require(rig.system.guest.devices.first)
        let c = try StorVSCController(device: device)
        #expect {
            try c.start()
        } throws: { e in
            guard case .negotiation = e as? StorVSCError else { return false }
            return true
        }
    }

    @Test func readsThePropertiesAndOpensSubchannels() throws {
        let rig = try StorageRig(maxSubchannels: 2, hostMaxTransfer: 128 * 1024)
        defer { rig.stop() }
        let c = try #require(rig.controller)
        #expect(c.hostProperties?.maxChannelCount == 2)
        #expect(c.channelCount == 3, "the primary and two sub-channels")
        #expect(c.maxTransferBytes == 128 * 1024, "the host's limit is lower than ours")
    }

    @Test func subchannelsAreCappedAtTheHostsMaximum() throws {
        let rig = try StorageRig(maxSubchannels: 1) { $0.subchannels = 4 }
        defer { rig.stop() }
        #expect(rig.controller?.channelCount == 2)
    }

    @Test func discoversEveryLUNWithItsGeometry() throws {
        let rig = try StorageRig(luns: [0: 8 << 20, 3: 4 << 20, 63: 1 << 20], readOnly: [3])
        defer { rig.stop() }
        let c = try #require(rig.controller)
        #expect(c.disks.map(\.lun) == [0, 3, 63])
        let d3 = try rig.disk(3)
        #expect(d3.capacityBytes == 4 << 20)
        #expect(d3.blockSize == 512)
        #expect(d3.isReadOnly)
        #expect(d3.identity.vendor == "Msft")
        #expect(d3.identity.product == "Virtual Disk")
        #expect(d3.identity.serialNumber == "disk3")
        #expect(try !rig.disk(0).isReadOnly)
        #expect(try rig.disk(0).supportsUnmap)
    }

    @Test func theIDEClassIsServedByTheSameClient() throws {
        let rig = try StorageRig(kind: .ide, luns: [0: 2 << 20])
        defer { rig.stop() }
        let c = try #require(rig.controller)
        #expect(c.kind == .ide)
        #expect(c.channelCount == 1, "IDE has no sub-channels")
        #expect(c.ideTarget == 1, "the target id comes from the instance GUID")
        let d = try rig.disk(0)
        try d.write(at: 1000, [1, 2, 3, 4, 5])
        #expect(try d.read(at: 998, count: 9) == [0, 0, 1, 2, 3, 4, 5, 0, 0])
    }
}
