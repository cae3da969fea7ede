import Foundation
import Testing
import VMBusGuest
import VMBusProtocol
import VMBusTestSupport
import VMBusWire

/// `lsvmbus` output (torvalds/linux tools/hv/lsvmbus): `'VMBUS ID ' + '%2s: %s'` at verbosity 0,
/// `'%2s: Class_ID = %s - %s\n%s'` at -v, `'%2s: Class_ID = %s - %s\n\tDevice_ID = %s\n\tSysfs path: %s\n%s'`
/// at -vv, where the last `%s` is one `\tRel_ID=%s, target_cpu=%s` line per channel sorted by relid, and
/// Python's print adds the final newline. Devices are sorted by VMBus id, unknown classes are "Unknown".
@Suite(.serialized)
struct GuestBusListingTests {
    static let unknownClass = GUID(data1: 0x1234_5678, data2: 0x9ABC, data3: 0xDEF0, data4: (1, 2, 3, 4, 5, 6, 7, 8))

    /// Six offers: an echo device with two sub-channels, SCSI, NIC and an unknown class, relids out of order.
    static let offers = [
        offer(relID: 14, instance: 3, classID: DeviceClass.scsi.guid),
        offer(relID: 2, instance: 1),
        offer(relID: 20, instance: 1, subchannelIndex: 1),
        offer(relID: 3, instance: 1, subchannelIndex: 2),
        offer(relID: 7, instance: 5, classID: unknownClass),
        offer(relID: 100, instance: 6, classID: DeviceClass.nic.guid),
    ]

    func withBus(_ body: (GuestBus) throws -> Void) throws {
        let system = try ScriptedSystem(offers: Self.offers)
        defer { system.stop() }
        try system.connect()
        try body(system.guest)
    }

    @Test func verbosityZeroPrintsTheIDAndTheDescription() throws {
        try withBus { bus in
            #expect(bus.lsvmbusListing() == """
                VMBUS ID  2: swift-vmbus echo test device
                VMBUS ID  7: Unknown
                VMBUS ID 14: Synthetic SCSI Controller
                VMBUS ID 100: Synthetic network adapter

                """)
        }
    }

    @Test func verbosityOneAddsTheClassIDAndEveryChannelSortedByRelID() throws {
        try withBus { bus in
            #expect(bus.lsvmbusListing(verbosity: 1) == """
                VMBUS ID  2: Class_ID = {2b65ce73-397c-4287-8892-2b457190873a} - swift-vmbus echo test device
                \tRel_ID=2, target_cpu=0
                \tRel_ID=3, target_cpu=0
                \tRel_ID=20, target_cpu=0

                VMBUS ID  7: Class_ID = {12345678-9abc-def0-0102-030405060708} - Unknown
                \tRel_ID=7, target_cpu=0

                VMBUS ID 14: Class_ID = {ba6163d9-04a1-4d29-b605-72e2ffb1dc7f} - Synthetic SCSI Controller
                \tRel_ID=14, target_cpu=0

                VMBUS ID 100: Class_ID = {f8615163-df3e-46c5-913f-f2d2f965ed0e} - Synthetic network adapter
                \tRel_ID=100, target_cpu=0


                """)
        }
    }

    @Test func verbosityTwoAddsTheDeviceIDAndTheSysfsPath() throws {
        try withBus { bus in
            let listing = bus.lsvmbusListing(verbosity: 2)
            let echo = """
                VMBUS ID  2: Class_ID = {2b65ce73-397c-4287-8892-2b457190873a} - swift-vmbus echo test device
                \tDevice_ID = {53560001-6d62-7573-766d-627573000001}
                \tSysfs path: /sys/bus/vmbus/devices/53560001-6d62-7573-766d-627573000001
                \tRel_ID=2, target_cpu=0
                \tRel_ID=3, target_cpu=0
                \tRel_ID=20, target_cpu=0


                """
            #expect(listing.hasPrefix(echo))
            #expect(listing.hasSuffix("""
                VMBUS ID 100: Class_ID = {f8615163-df3e-46c5-913f-f2d2f965ed0e} - Synthetic network adapter
                \tDevice_ID = {53560006-6d62-7573-766d-627573000006}
                \tSysfs path: /sys/bus/vmbus/devices/53560006-6d62-7573-766d-627573000006
                \tRel_ID=100, target_cpu=0


                """))
            // More -v than lsvmbus knows prints the same as -vv.
            #expect(bus.lsvmbusListing(verbosity: 3) == listing)
        }
    }

    @Test func theEchoDeviceOfTheInProcessSystemIsListedLikeLinuxListsADevice() throws {
        let system = try InProcessSystem(memoryPages: 1024)
        system.host.addDevice(EchoDevice(instanceID: InProcessSystem.instanceID(1)))
        try system.start()
        defer { system.stop() }
        #expect(system.guest.lsvmbusListing(verbosity: 1) == """
            VMBUS ID  1: Class_ID = {2b65ce73-397c-4287-8892-2b457190873a} - swift-vmbus echo test device
            \tRel_ID=1, target_cpu=0


            """)
    }

    /// `vmbus_dev_dict` of lsvmbus, verbatim.
    static let lsvmbusDescriptions: [String: String] = [
        "{0e0b6031-5213-4934-818b-38d90ced39db}": "[Operating system shutdown]",
        "{9527e630-d0ae-497b-adce-e80ab0175caf}": "[Time Synchronization]",
        "{57164f39-9115-4e78-ab55-382f3bd5422d}": "[Heartbeat]",
        "{a9a0f4e7-5a45-4d96-b827-8a841e8c03e6}": "[Data Exchange]",
        "{35fa2e29-ea23-4236-96ae-3a6ebacba440}": "[Backup (volume checkpoint)]",
        "{34d14be3-dee4-41c8-9ae7-6b174977c192}": "[Guest services]",
        "{525074dc-8985-46e2-8057-a307dc18a502}": "[Dynamic Memory]",
        "{cfa8b69e-5b4a-4cc0-b98b-8ba1a1f3f95a}": "Synthetic mouse",
        "{f912ad6d-2b17-48ea-bd65-f927a61c7684}": "Synthetic keyboard",
        "{da0a7802-e377-4aac-8e77-0558eb1073f8}": "Synthetic framebuffer adapter",
        "{f8615163-df3e-46c5-913f-f2d2f965ed0e}": "Synthetic network adapter",
        "{32412632-86cb-44a2-9b5c-50d1417354f5}": "Synthetic IDE Controller",
        "{ba6163d9-04a1-4d29-b605-72e2ffb1dc7f}": "Synthetic SCSI Controller",
        "{2f9bcc4a-0069-4af3-b76b-6fd0be528cda}": "Synthetic fiber channel adapter",
        "{8c2eaf3d-32a7-4b09-ab99-bd1f1c86b501}": "Synthetic RDMA adapter",
        "{44c4f61d-4444-4400-9d52-802e27ede19f}": "PCI Express pass-through",
        "{276aacf4-ac15-426c-98dd-7521ad3f01fe}": "[Reserved system device]",
        "{f8e65716-3cb3-4a06-9a60-1889c5cccab5}": "[Reserved system device]",
        "{3375baf4-9e15-4b30-b765-67acb10d607b}": "[Reserved system device]",
    ]

    @Test func everyClassLsvmbusKnowsIsDescribedWithLsvmbussWords() throws {
        let classes = DeviceClass.all.filter { $0 != .echoTest }
        #expect(classes.count == Self.lsvmbusDescriptions.count)
        let offers = classes.enumerated().map { i, c in offer(relID: UInt32(i + 1), instance: UInt32(i + 1), classID: c.guid) }
        let system = try ScriptedSystem(offers: offers)
        defer { system.stop() }
        try system.connect()
        let lines = system.guest.lsvmbusListing(verbosity: 1).split(separator: "\n").filter { $0.hasPrefix("VMBUS ID") }
        #expect(lines.count == classes.count)
        for line in lines {
            // VMBUS ID nn: Class_ID = {guid} - description
            let rest = try #require(line.split(separator: "Class_ID = ", maxSplits: 1).last)
            let parts = rest.split(separator: " - ", maxSplits: 1).map(String.init)
            #expect(parts.count == 2)
            #expect(Self.lsvmbusDescriptions[parts[0]] == parts.last, "\(line)")
        }
    }

    @Test func anEmptyBusListsNothing() throws {
        let system = try ScriptedSystem()
        defer { system.stop() }
        try system.connect()
        for v in 0...2 { #expect(system.guest.lsvmbusListing(verbosity: v).isEmpty) }
        #expect(system.guest.jsonListing() == "[]")
    }

    @Test func aRescindedDeviceLeavesTheListing() throws {
        let system = try ScriptedSystem(offers: Self.offers)
        defer { system.stop() }
        try system.connect()
        system.host.send(.rescindChannelOffer(RescindChannelOffer(childRelID: 14)))
        #expect(system.host.waitForMessage { $0 == .relIDReleased(RelIDReleased(childRelID: 14)) } != nil)
        system.guest.flushWork()
        #expect(!system.guest.lsvmbusListing().contains("VMBUS ID 14"))
        #expect(system.guest.lsvmbusListing().split(separator: "\n").count == 3)
    }

    @Test func theJSONListingParsesAndNamesEveryChannel() throws {
        try withBus { bus in
            let json = try JSONSerialization.jsonObject(with: Data(bus.jsonListing().utf8))
            let devices = try #require(json as? [[String: Any]])
            #expect(devices.compactMap { $0["vmbus_id"] as? Int } == [2, 7, 14, 100])
            let echo = try #require(devices.first)
            #expect(echo["class_id"] as? String == "{2b65ce73-397c-4287-8892-2b457190873a}")
            #expect(echo["device_id"] as? String == "{53560001-6d62-7573-766d-627573000001}")
            #expect(echo["description"] as? String == "swift-vmbus echo test device")
            let channels = try #require(echo["channels"] as? [[String: Any]])
            #expect(channels.compactMap { $0["rel_id"] as? Int } == [2, 20, 3])
            #expect(channels.compactMap { $0["sub_channel_index"] as? Int } == [0, 1, 2])
        }
    }
}
