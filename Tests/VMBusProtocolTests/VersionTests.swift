import VMBusLayoutTesting
import Testing
import VMBusProtocol

@Suite struct VersionTests {
    @Test func versionValuesMatchLinux() {
        let pairs: [(VMBusVersion, String)] = [
            (.ws2008, "VERSION_WS2008"), (.win7, "VERSION_WIN7"), (.win8, "VERSION_WIN8"), (.win8_1, "VERSION_WIN8_1"),
            (.win10, "VERSION_WIN10"), (.win10_v4_1, "VERSION_WIN10_V4_1"), (.win10_v5, "VERSION_WIN10_V5"),
            (.win10_v5_1, "VERSION_WIN10_V5_1"), (.win10_v5_2, "VERSION_WIN10_V5_2"), (.win10_v5_3, "VERSION_WIN10_V5_3"),
        ]
        for (version, name) in pairs { #expect(LinuxConstants.values[name] == UInt64(version.rawValue), "\(name)") }
        let linuxNames = LinuxConstants.values.keys.filter { $0.hasPrefix("VERSION_W") }
        #expect(linuxNames.count == pairs.count, "a new VERSION_* constant appeared in the fixture")
        #expect(VMBusVersion.copper.rawValue == 0x0006_0000)
    }

    @Test func theTryOrderIsLinuxsVMBusVersionsTable() {
        #expect(VMBusVersion.linuxTryOrder.map(\.rawValue) == LinuxConstants.vmbusVersions)
        #expect(VMBusVersion.linuxTryOrder.map(\.description) == ["5.3", "5.2", "5.1", "5.0", "4.1", "4.0", "3.0", "2.4"])
    }

    @Test func allVersionsAreListedOldestFirst() {
        #expect(VMBusVersion.all.first == .ws2008)
        #expect(VMBusVersion.all.last == .copper)
        #expect(VMBusVersion.all == VMBusVersion.all.sorted())
        #expect(Set(VMBusVersion.all).count == 11)
        let allKnown = VMBusVersion.linuxTryOrder.allSatisfy { $0.isKnown }
        #expect(allKnown)
        #expect(!VMBusVersion(major: 7, minor: 0).isKnown)
    }

    @Test func majorMinorAndDescription() {
        #expect(VMBusVersion.ws2008.major == 0)
        #expect(VMBusVersion.ws2008.minor == 13)
        #expect(VMBusVersion.ws2008.description == "0.13")
        #expect(VMBusVersion.win10_v5_3.description == "5.3")
        #expect(VMBusVersion(major: 5, minor: 3) == .win10_v5_3)
        #expect(VMBusVersion.win8 < .win8_1)
        #expect(VMBusVersion.never > .copper)
    }

    @Test func initiateContactGoesToConnectionIDFourFromVersion5() {
        for version in VMBusVersion.all {
            let expected: UInt32 = version >= .win10_v5 ? 4 : 1
            #expect(version.initiateContactConnectionID == expected, "\(version)")
            #expect(version.usesMessageConnectionID == (version >= .win10_v5))
        }
    }

    @Test func connectionIDsMatchLinux() {
        #expect(LinuxConstants.enumValues["VMBUS_MESSAGE_CONNECTION_ID"] == Int64(VMBusConnectionID.message))
        #expect(LinuxConstants.enumValues["VMBUS_EVENT_CONNECTION_ID"] == Int64(VMBusConnectionID.event))
        #expect(LinuxConstants.enumValues["VMBUS_MONITOR_CONNECTION_ID"] == Int64(VMBusConnectionID.monitor))
        #expect(LinuxConstants.enumValues["VMBUS_MESSAGE_CONNECTION_ID_4"] == Int64(VMBusConnectionID.message4))
        #expect(LinuxConstants.enumValues["VMBUS_MESSAGE_CONNECTION_ID_REDIRECT"] == Int64(VMBusConnectionID.messageRedirect))
        #expect(LinuxConstants.enumValues["VMBUS_MESSAGE_SINT"] == Int64(VMBusConnectionID.messageSINT))
    }

    @Test func featureFlagsDescribeKnownAndUnknownBits() {
        #expect(VMBusFeatureFlags([.clientID, .pauseResume]).description == "[clientID, pauseResume]")
        #expect(VMBusFeatureFlags(rawValue: 0x100).description == "[0x100]")
        #expect(VMBusFeatureFlags.gpaPinning.rawValue == 0x80)
    }
}
