import VMBusLayoutTesting
import Testing
import VMBusProtocol
import VMBusWire

@Suite struct DeviceClassTests {
    @Test func everyLinuxGUIDHasTheWireBytesLinuxUses() throws {
        for device in DeviceClass.all {
            guard let cName = device.cName else { continue }
            let linux = try #require(LinuxConstants.guids[cName], "\(cName) missing from the fixture")
            #expect(device.guid.wireBytes == linux.bytes, "\(cName)")
            #expect(device.guid.description == linux.string, "\(cName)")
        }
    }

    @Test func theTableFollowsVMBusDevsInOrder() {
        let linux = LinuxConstants.vmbusDevices.filter { $0.deviceType != "HV_UNKNOWN" }
        #expect(DeviceClass.linuxDevices.count == linux.count)
        for (ours, theirs) in zip(DeviceClass.linuxDevices, linux) {
            #expect(ours.linuxDeviceType == theirs.deviceType)
            #expect(ours.guid.description == theirs.guid)
            #expect(ours.isPerformanceDevice == theirs.perfDevice, "\(theirs.deviceType)")
            #expect(ours.allowedInIsolatedGuest == theirs.allowedInIsolated, "\(theirs.deviceType)")
            #expect(LinuxConstants.enumValues[theirs.deviceType] != nil)
        }
    }

    @Test func everyLinuxDeviceGUIDIsInTheTable() {
        for (name, guid) in LinuxConstants.guids where name.hasPrefix("HV_") && name.hasSuffix("_GUID") && name != "HV_IMC_GUID" {
            #expect(DeviceClass.all.contains { $0.cName == name }, "\(name) (\(guid.string)) has no DeviceClass")
        }
    }

    @Test func descriptionsAreWhatLsvmbusPrints() throws {
        #expect(DeviceClass.describe(DeviceClass.ide.guid) == "Synthetic IDE Controller")
        #expect(DeviceClass.describe(DeviceClass.scsi.guid) == "Synthetic SCSI Controller")
        #expect(DeviceClass.describe(DeviceClass.nic.guid) == "Synthetic network adapter")
        #expect(DeviceClass.describe(DeviceClass.ts.guid) == "[Time Synchronization]")
        #expect(DeviceClass.describe(DeviceClass.hb.guid) == "[Heartbeat]")
        #expect(DeviceClass.describe(try #require(GUID("5f0c4d6e-0000-4000-8000-000000000001"))) == "Unknown")
        #expect(DeviceClass.describe(.zero) == "Unknown")
        #expect(DeviceClass.lookup(DeviceClass.kvp.classID) == .kvp)
    }

    @Test func theEchoClassIsOursAndUnique() throws {
        #expect(DeviceClass.echoTest.description == "swift-vmbus echo test device")
        #expect(DeviceClass.echoTest.guid == (try #require(GUID("2b65ce73-397c-4287-8892-2b457190873a"))))
        #expect(DeviceClass.echoTest.cName == nil)
        #expect(Set(DeviceClass.all.map(\.guid)).count == DeviceClass.all.count)
        #expect(!LinuxConstants.guids.values.contains { $0.string == DeviceClass.echoTest.guid.description })
    }
}
