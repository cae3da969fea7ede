import Testing
import VMBusLayoutTesting
import VMBusNetProtocol
import VMBusWire

/// The OID structures (offload, offload parameters, RSS capabilities and parameters, config parameter)
/// against hv_netvsc.ko's layouts.
@Suite struct NDISGoldenLayoutTests {
    @Test func objectHeaderAndItsTwin() throws {
        let h = NDISObjectHeader(type: 0x11, revision: 0x22, size: 0x3344)
        try checkGolden(h, NDISObjectHeader.cName, ["type": 0x11, "revision": 0x22, "size": 0x3344])
        try checkGolden(h, "ndis_obj_header", ["type": 0x11, "rev": 0x22, "size": 0x3344])
    }

    static func sampleOffload() -> NDISOffload {
        var o = NDISOffload(header: .init(type: NDISObjectHeader.typeOffload, revision: 3, size: 156))
        o.checksum.ip4TXEncapsulation = 0x0101; o.checksum.ip4TXChecksum = 0x0102
        o.checksum.ip4RXEncapsulation = 0x0103; o.checksum.ip4RXChecksum = 0x0104
        o.checksum.ip6TXEncapsulation = 0x0105; o.checksum.ip6TXChecksum = 0x0106
        o.checksum.ip6RXEncapsulation = 0x0107; o.checksum.ip6RXChecksum = 0x0108
        o.lsoV1.encapsulation = 0x0201; o.lsoV1.maxSize = 0x0202; o.lsoV1.minSegments = 0x0203; o.lsoV1.options = 0x0204
        o.ipsecV1.encapsulation = 0x0301; o.ipsecV1.ahESP = 0x0302; o.ipsecV1.transportTunnel = 0x0303
        o.ipsecV1.ip4Options = 0x0304; o.ipsecV1.flags = 0x0305; o.ipsecV1.ip4AH = 0x0306; o.ipsecV1.ip4ESP = 0x0307
        o.lsoV2.ip4Encapsulation = 0x0401; o.lsoV2.ip4MaxSize = 0x0402; o.lsoV2.ip4MinSegments = 0x0403
        o.lsoV2.ip6Encapsulation = 0x0404; o.lsoV2.ip6MaxSize = 0x0405; o.lsoV2.ip6MinSegments = 0x0406
        o.lsoV2.ip6Options = 0x0407
        o.flags = 0x0501
        o.ipsecV2.encapsulation = 0x0601
        o.ipsecV2.ip6 = 0x61; o.ipsecV2.ip4Options = 0x62; o.ipsecV2.ip6Extensions = 0x63; o.ipsecV2.ah = 0x64
        o.ipsecV2.esp = 0x65; o.ipsecV2.ahESP = 0x66; o.ipsecV2.transport = 0x67; o.ipsecV2.tunnel = 0x68
        o.ipsecV2.transportTunnel = 0x69; o.ipsecV2.lso = 0x6A; o.ipsecV2.extendedSequence = 0x6B
        o.ipsecV2.udpESP = 0x0602; o.ipsecV2.authentication = 0x0603; o.ipsecV2.crypto = 0x0604
        o.ipsecV2.saCapabilities = 0x0605
        o.rsc.ip4 = 0x71; o.rsc.ip6 = 0x72
        o.encapsulationGRE.flags = 0x0801; o.encapsulationGRE.maxHeader = 0x0802
        return o
    }

    static let offloadFields: KeyValuePairs<String, UInt64> = [
        "header.type": 0xA7, "header.revision": 3, "header.size": 156,
        "csum.ip4_txenc": 0x0101, "csum.ip4_txcsum": 0x0102, "csum.ip4_rxenc": 0x0103, "csum.ip4_rxcsum": 0x0104,
        "csum.ip6_txenc": 0x0105, "csum.ip6_txcsum": 0x0106, "csum.ip6_rxenc": 0x0107, "csum.ip6_rxcsum": 0x0108,
        "lsov1.encap": 0x0201, "lsov1.maxsize": 0x0202, "lsov1.minsegs": 0x0203, "lsov1.opts": 0x0204,
        "ipsecv1.encap": 0x0301, "ipsecv1.ah_esp": 0x0302, "ipsecv1.xport_tun": 0x0303, "ipsecv1.ip4_opts": 0x0304,
        "ipsecv1.flags": 0x0305, "ipsecv1.ip4_ah": 0x0306, "ipsecv1.ip4_esp": 0x0307,
        "lsov2.ip4_encap": 0x0401, "lsov2.ip4_maxsz": 0x0402, "lsov2.ip4_minsg": 0x0403, "lsov2.ip6_encap": 0x0404,
        "lsov2.ip6_maxsz": 0x0405, "lsov2.ip6_minsg": 0x0406, "lsov2.ip6_opts": 0x0407,
        "flags": 0x0501,
        "ipsecv2.encap": 0x0601, "ipsecv2.ip6": 0x61, "ipsecv2.ip4opt": 0x62, "ipsecv2.ip6ext": 0x63,
        "ipsecv2.ah": 0x64, "ipsecv2.esp": 0x65, "ipsecv2.ah_esp": 0x66, "ipsecv2.xport": 0x67, "ipsecv2.tun": 0x68,
        "ipsecv2.xport_tun": 0x69, "ipsecv2.lso": 0x6A, "ipsecv2.extseq": 0x6B, "ipsecv2.udp_esp": 0x0602,
        "ipsecv2.auth": 0x0603, "ipsecv2.crypto": 0x0604, "ipsecv2.sa_caps": 0x0605,
        "rsc.ip4": 0x71, "rsc.ip6": 0x72,
        "encap_gre.flags": 0x0801, "encap_gre.maxhdr": 0x0802,
    ]

    @Test func offloadMatchesLinux() throws {
        let o = Self.sampleOffload()
        try checkGolden(o, NDISOffload.cName, Self.offloadFields)
        // The parts on their own.
        try checkGolden(o.checksum, NDISChecksumOffload.cName, [
            "ip4_txenc": 0x0101, "ip4_txcsum": 0x0102, "ip4_rxenc": 0x0103, "ip4_rxcsum": 0x0104,
            "ip6_txenc": 0x0105, "ip6_txcsum": 0x0106, "ip6_rxenc": 0x0107, "ip6_rxcsum": 0x0108,
        ])
        try checkGolden(o.lsoV1, NDISLSOv1Offload.cName, ["encap": 0x0201, "maxsize": 0x0202, "minsegs": 0x0203,
                                                         "opts": 0x0204])
        try checkGolden(o.ipsecV1, NDISIPsecV1Offload.cName, [
            "encap": 0x0301, "ah_esp": 0x0302, "xport_tun": 0x0303, "ip4_opts": 0x0304, "flags": 0x0305,
            "ip4_ah": 0x0306, "ip4_esp": 0x0307,
        ])
        try checkGolden(o.lsoV2, NDISLSOv2Offload.cName, [
            "ip4_encap": 0x0401, "ip4_maxsz": 0x0402, "ip4_minsg": 0x0403, "ip6_encap": 0x0404, "ip6_maxsz": 0x0405,
            "ip6_minsg": 0x0406, "ip6_opts": 0x0407,
        ])
        try checkGolden(o.ipsecV2, NDISIPsecV2Offload.cName, [
            "encap": 0x0601, "ip6": 0x61, "ip4opt": 0x62, "ip6ext": 0x63, "ah": 0x64, "esp": 0x65, "ah_esp": 0x66,
            "xport": 0x67, "tun": 0x68, "xport_tun": 0x69, "lso": 0x6A, "extseq": 0x6B, "udp_esp": 0x0602,
            "auth": 0x0603, "crypto": 0x0604, "sa_caps": 0x0605,
        ])
        try checkGolden(o.rsc, NDISRSCOffload.cName, ["ip4": 0x71, "ip6": 0x72])
        try checkGolden(o.encapsulationGRE, NDISEncapsulationOffload.cName, ["flags": 0x0801, "maxhdr": 0x0802])
        // The revision sizes end where the layout says.
        let l = try linuxLayout(NDISOffload.cName)
        let lso2 = try #require(l.field("lsov2"))
        #expect(lso2.offset + lso2.size + 4 == NDISOffload.size6_0)  // + flags
        let ipsec2 = try #require(l.field("ipsecv2"))
        #expect(ipsec2.offset + ipsec2.size == NDISOffload.size6_1)
    }

    @Test func offloadParamsMatchLinux() throws {
        var p = NDISOffloadParams(header: .init(type: 0x80, revision: 3, size: 28))
        p.ipV4Checksum = 0x11; p.tcpIPv4Checksum = 0x12; p.udpIPv4Checksum = 0x13; p.tcpIPv6Checksum = 0x14
        p.udpIPv6Checksum = 0x15; p.lsoV1 = 0x16; p.ipSecV1 = 0x17; p.lsoV2IPv4 = 0x18; p.lsoV2IPv6 = 0x19
        p.tcpConnectionIPv4 = 0x1A; p.tcpConnectionIPv6 = 0x1B; p.flags = 0x2122_2324; p.ipSecV2 = 0x31
        p.ipSecV2IPv4 = 0x32; p.rscIPv4 = 0x33; p.rscIPv6 = 0x34; p.encapsulatedPacketTaskOffload = 0x35
        p.encapsulationTypes = 0x36
        try checkGolden(p, NDISOffloadParams.cName, [
            "header.type": 0x80, "header.revision": 3, "header.size": 28, "ip_v4_csum": 0x11, "tcp_ip_v4_csum": 0x12,
            "udp_ip_v4_csum": 0x13, "tcp_ip_v6_csum": 0x14, "udp_ip_v6_csum": 0x15, "lso_v1": 0x16, "ip_sec_v1": 0x17,
            "lso_v2_ipv4": 0x18, "lso_v2_ipv6": 0x19, "tcp_connection_ip_v4": 0x1A, "tcp_connection_ip_v6": 0x1B,
            "flags": 0x2122_2324, "ip_sec_v2": 0x31, "ip_sec_v2_ip_v4": 0x32, "rsc_ip_v4": 0x33, "rsc_ip_v6": 0x34,
            "encapsulated_packet_task_offload": 0x35, "encapsulation_types": 0x36,
        ])
        // The tail padding is zero.
        expectBytes(Array(p.wireBytes[26...]), [0, 0])
        // The NVSP ≤ 4 form stops before the RSC fields.
        let l = try linuxLayout(NDISOffloadParams.cName)
        #expect(l.field("rsc_ip_v4")?.offset == NDISOffloadParams.version4Size)
    }

    @Test func receiveScaleCapabilitiesMatchLinux() throws {
        let c = NDISReceiveScaleCapabilities(header: .init(type: 0x88, revision: 2, size: 18),
                                             capabilityFlags: 0x1112_1314, interruptMessageCount: 0x2122_2324,
                                             receiveQueueCount: 0x3132_3334, indirectionTableEntryCount: 0x4142)
        try checkGolden(c, NDISReceiveScaleCapabilities.cName, [
            "hdr.type": 0x88, "hdr.rev": 2, "hdr.size": 18, "cap_flag": 0x1112_1314, "num_int_msg": 0x2122_2324,
            "num_recv_que": 0x3132_3334, "num_indirect_tabent": 0x4142,
        ])
    }

    @Test func receiveScaleParametersMatchLinux() throws {
        let p = NDISReceiveScaleParameters(flags: 0x1112, baseCPUNumber: 0x2122, hashInfo: .init(rawValue: 0x3132_3334),
                                           indirectionTable: [7, 8, 9], hashKey: [1, 2, 3, 4, 5],
                                           processorMasksOffset: 0x4142_4344, processorMaskCount: 0x5152_5354,
                                           processorMasksEntrySize: 0x6162_6364)
        let bytes = p.wireBytes
        var c = LayoutCheck(try linuxLayout(NDISReceiveScaleParameters.cName), Array(bytes[0..<40]))
        c.size()
        c.value("hdr.type", 0x89); c.value("hdr.rev", 2); c.value("hdr.size", 40)
        c.value("flag", 0x1112); c.value("base_cpu_number", 0x2122); c.value("hashinfo", 0x3132_3334)
        c.value("indirect_tabsize", 12); c.value("indirect_taboffset", 40)
        c.value("hashkey_size", 5); c.value("hashkey_offset", 52)
        c.value("processor_masks_offset", 0x4142_4344); c.value("num_processor_masks", 0x5152_5354)
        c.value("processor_masks_entry_size", 0x6162_6364)
        c.complete()
        // The holes after the two u16 sizes are zero; table then key follow.
        expectBytes(Array(bytes[14..<16]) + Array(bytes[22..<24]), [0, 0, 0, 0])
        expectBytes(Array(bytes[40...]), le(UInt32(7)) + le(UInt32(8)) + le(UInt32(9)) + [1, 2, 3, 4, 5])
    }

    @Test func configParameterInfoMatchesLinux() throws {
        let p = RNDISConfigParameterInfo.networkAddress([0x00, 0x15, 0x5D, 0xAB, 0xCD, 0xEF])
        let bytes = p.wireBytes
        var c = LayoutCheck(try linuxLayout(RNDISConfigParameterInfo.cName), Array(bytes[0..<20]))
        c.size()
        c.value("parameter_name_offset", 20)
        c.value("parameter_name_length", 28)  // "NetworkAddress", UTF-16
        c.value("parameter_type", 2)
        c.value("parameter_value_offset", 48)
        c.value("parameter_value_length", 24)  // 12 hex digits, UTF-16
        c.complete()
        #expect(p.nameString == "NetworkAddress")
        #expect(p.valueString == "00155DABCDEF")
        #expect(bytes.count == 20 + 28 + 24)
    }
}
