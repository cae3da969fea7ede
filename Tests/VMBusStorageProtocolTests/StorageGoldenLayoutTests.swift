import Testing
import VMBusLayoutTesting
import VMBusProtocol
import VMBusStorageProtocol
import VMBusWire

/// Every VSTOR structure, encoded by us, compared field by field with hv_storvsc.ko's DWARF layouts.
@Suite struct StorageGoldenLayoutTests {
    static func sampleSRB() -> VMSCSIRequest {
        var s = VMSCSIRequest()
        s.length = 0x1A1B
        s.srbStatus = SRBStatus(rawValue: 0x21)
        s.scsiStatus = 0x22
        s.portNumber = 0x23
        s.pathID = 0x24
        s.targetID = 0x25
        s.lun = 0x26
        s.cdbLength = 0x27
        s.senseInfoLength = 0x28
        s.dataIn = 0x29
        s.reserved = 0x2A
        s.dataTransferLength = 0x3132_3334
        for i in 0..<20 { s.dataArea[i] = UInt8(0x40 + i) }
        s.reserve = 0x5152
        s.queueTag = 0x53
        s.queueAction = 0x54
        s.srbFlags = 0x6162_6364
        s.timeOutValue = 0x7172_7374
        s.queueSortKey = 0x8182_8384
        return s
    }

    static func checkSRBFields(_ c: inout LayoutCheck, prefix: String) {
        c.value(prefix + "length", 0x1A1B)
        c.value(prefix + "srb_status", 0x21)
        c.value(prefix + "scsi_status", 0x22)
        c.value(prefix + "port_number", 0x23)
        c.value(prefix + "path_id", 0x24)
        c.value(prefix + "target_id", 0x25)
        c.value(prefix + "lun", 0x26)
        c.value(prefix + "cdb_length", 0x27)
        c.value(prefix + "sense_info_length", 0x28)
        c.value(prefix + "data_in", 0x29)
        c.value(prefix + "reserved", 0x2A)
        c.value(prefix + "data_transfer_length", 0x3132_3334)
        c.bytes(prefix + "cdb", (0..<16).map { UInt8(0x40 + $0) })
        c.bytes(prefix + "sense_data", (0..<20).map { UInt8(0x40 + $0) })
        c.bytes(prefix + "reserved_array", (0..<20).map { UInt8(0x40 + $0) })
        c.value(prefix + "reserve", 0x5152)
        c.value(prefix + "queue_tag", 0x53)
        c.value(prefix + "queue_action", 0x54)
        c.value(prefix + "srb_flags", 0x6162_6364)
        c.value(prefix + "time_out_value", 0x7172_7374)
        c.value(prefix + "queue_sort_ey", 0x8182_8384)
    }

    @Test func vmscsiRequestMatchesLinux() throws {
        let srb = Self.sampleSRB()
        var w = WireWriter()
        srb.encode(into: &w)
        var c = LayoutCheck(try linuxLayout(VMSCSIRequest.cName), w.bytes)
        c.size()
        Self.checkSRBFields(&c, prefix: "")
        c.complete()
        var r = WireReader(w.bytes)
        #expect(try VMSCSIRequest(from: &r) == srb)
    }

    @Test func vstorPacketWithAnSRBMatchesLinux() throws {
        let p = VStorPacket(operation: VStorOperation(rawValue: 0x0102_0304), flags: 0x1112_1314,
                            status: NTStatus(rawValue: 0xA1A2_A3A4), srb: Self.sampleSRB())
        let bytes = p.wireBytes
        var c = LayoutCheck(try linuxLayout(VStorPacket.cName), bytes)
        c.size()
        c.value("operation", 0x0102_0304)
        c.value("flags", 0x1112_1314)
        c.value("status", 0xA1A2_A3A4)
        Self.checkSRBFields(&c, prefix: "vm_srb.")
        // The other union members overlay the SRB; their bytes are whatever the SRB put there.
        c.complete(ignoring: ["storage_channel_properties", "version", "wwn_packet", "sub_channel_count", "buffer"]
            .reduce(into: Set<String>()) { set, name in
                set.insert(name)
                for f in c.layout.fields where f.name.hasPrefix(name + ".") { set.insert(f.name) }
            })
        #expect(try VStorPacket(wireBytes: bytes) == p)
        #expect(try VStorPacket(wireBytes: bytes).srb == Self.sampleSRB())
    }

    @Test func vstorPacketWithPropertiesMatchesLinux() throws {
        var p = VStorPacket(operation: .completeIO, flags: 0)
        p.properties = StorageChannelProperties(maxChannelCount: 0xB1B2, flags: 0xC1C2_C3C4, maxTransferBytes: 0xD1D2_D3D4)
        let layout = try linuxLayout(VStorPacket.cName)
        var c = LayoutCheck(layout, p.wireBytes)
        c.value("storage_channel_properties.reserved", 0)
        c.value("storage_channel_properties.max_channel_cnt", 0xB1B2)
        c.value("storage_channel_properties.reserved1", 0)
        c.value("storage_channel_properties.flags", 0xC1C2_C3C4)
        c.value("storage_channel_properties.max_transfer_bytes", 0xD1D2_D3D4)
        c.value("storage_channel_properties.reserved2", 0)
        #expect(try VStorPacket(wireBytes: p.wireBytes).properties == p.properties)

        // The standalone struct has the same layout as the union member.
        var c2 = LayoutCheck(try linuxLayout(StorageChannelProperties.cName), p.properties.wireBytes)
        c2.size()
        c2.value("max_channel_cnt", 0xB1B2)
        c2.value("flags", 0xC1C2_C3C4)
        c2.value("max_transfer_bytes", 0xD1D2_D3D4)
        c2.zero("reserved")
        c2.zero("reserved1")
        c2.zero("reserved2")
        c2.complete()
    }

    @Test func vstorPacketWithVersionAndSubChannelCountMatchesLinux() throws {
        var p = VStorPacket(operation: .queryProtocolVersion)
        p.version = StorageVersionBody(.win10, revision: 0x1234)
        var c = LayoutCheck(try linuxLayout(VStorPacket.cName), p.wireBytes)
        c.value("operation", 9)
        c.value("flags", UInt64(VStorPacket.requestCompletionFlag))
        c.value("version.major_minor", 0x0602)
        c.value("version.revision", 0x1234)
        var v = LayoutCheck(try linuxLayout(StorageVersionBody.cName), p.version.wireBytes)
        v.size()
        v.value("major_minor", 0x0602)
        v.value("revision", 0x1234)
        v.complete()

        var s = VStorPacket(operation: .createSubChannels)
        s.subChannelCount = 0xE1E2
        var c3 = LayoutCheck(try linuxLayout(VStorPacket.cName), s.wireBytes)
        c3.value("operation", 13)
        c3.value("sub_channel_count", 0xE1E2)
    }

    @Test func fcWWNPacketMatchesLinux() throws {
        var p = FCWWNPacket()
        p.primaryActive = 1
        p.primaryPortWWN = 0x1011_1213_1415_1617
        p.primaryNodeWWN = 0x2021_2223_2425_2627
        p.secondaryPortWWN = 0x3031_3233_3435_3637
        p.secondaryNodeWWN = 0x4041_4243_4445_4647
        var c = LayoutCheck(try linuxLayout(FCWWNPacket.cName), p.wireBytes)
        c.size()
        c.value("primary_active", 1)
        c.zero("reserved1")
        c.bytes("primary_port_wwn", [0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17])
        c.bytes("primary_node_wwn", [0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27])
        c.bytes("secondary_port_wwn", [0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37])
        c.bytes("secondary_node_wwn", [0x40, 0x41, 0x42, 0x43, 0x44, 0x45, 0x46, 0x47])
        c.complete()
        #expect(try FCWWNPacket(wireBytes: p.wireBytes) == p)
    }

    @Test func sizesMatchLinux() throws {
        #expect(try linuxLayout(VStorPacket.cName).size == VStorPacket.wireSize)
        #expect(try linuxLayout(VStorPacket.cName).packed)
        #expect(try linuxLayout(VMSCSIRequest.cName).size == VMSCSIRequest.wireSize)
        let l = try linuxLayout(VMSCSIRequest.cName)
        // The Win8 extension starts at `reserve`: what pre-5.1 protocols leave out.
        #expect(l.field("reserve")?.offset == VMSCSIRequest.wireSize - VMSCSIRequest.win8ExtensionSize)
        #expect(l.field("cdb")?.offset == VMSCSIRequest.dataAreaOffset)
    }
}
