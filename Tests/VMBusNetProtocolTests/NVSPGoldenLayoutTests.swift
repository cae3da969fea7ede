import Testing
import VMBusLayoutTesting
import VMBusNetProtocol
import VMBusWire

/// Every NVSP body, encoded by us with a distinct value per field, against hv_netvsc.ko's layouts: on its own
/// and inside the 40-byte `struct nvsp_message`.
@Suite struct NVSPGoldenLayoutTests {
    @Test func nvspMessageIsFortyBytesAndTheLegacyLayoutTwentyEight() throws {
        let m = try linuxLayout(NVSPMessage.cName)
        #expect(m.size == NVSPMessage.wireSize)
        #expect(m.packed)
        // The pre-6.1 union ends with the largest version-1 member.
        let v1 = try #require(m.field("msg.v1_msg"))
        #expect(v1.offset + v1.size == NVSPMessage.legacyWireSize)
        #expect(try linuxLayout("nvsp_message_header").size == NVSPMessage.headerSize)
        // Every message we encode is padded to 40.
        #expect(NVSPMessage.sendRNDISPacketComplete(.init(status: .success)).wireBytes.count == 40)
    }

    @Test func initAndInitComplete() throws {
        let i = NVSPInit(minProtocolVersion: .init(rawValue: 0x1112_1314), maxProtocolVersion: .init(rawValue: 0x2122_2324))
        try checkGolden(i, NVSPInit.cName, ["min_protocol_ver": 0x1112_1314, "max_protocol_ver": 0x2122_2324])
        try checkMessageGolden(NVSPMessage.`init`(i).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 1, "msg.init_msg.init.min_protocol_ver": 0x1112_1314,
            "msg.init_msg.init.max_protocol_ver": 0x2122_2324,
        ])
        let c = NVSPInitComplete(negotiatedProtocolVersion: .init(rawValue: 0x3132_3334), maxMDLChainLength: 0x4142_4344,
                                 status: .init(rawValue: 0x5152_5354))
        try checkGolden(c, NVSPInitComplete.cName, [
            "negotiated_protocol_ver": 0x3132_3334, "max_mdl_chain_len": 0x4142_4344, "status": 0x5152_5354,
        ])
        try checkMessageGolden(NVSPMessage.initComplete(c).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 2, "msg.init_msg.init_complete.negotiated_protocol_ver": 0x3132_3334,
            "msg.init_msg.init_complete.max_mdl_chain_len": 0x4142_4344, "msg.init_msg.init_complete.status": 0x5152_5354,
        ])
    }

    @Test func version1Messages() throws {
        let v = NVSPSendNDISVersion(ndisMajorVersion: 0x0102_0304, ndisMinorVersion: 0x0506_0708)
        try checkGolden(v, NVSPSendNDISVersion.cName, ["ndis_major_ver": 0x0102_0304, "ndis_minor_ver": 0x0506_0708])
        try checkMessageGolden(NVSPMessage.sendNDISVersion(v).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 100, "msg.v1_msg.send_ndis_ver.ndis_major_ver": 0x0102_0304,
            "msg.v1_msg.send_ndis_ver.ndis_minor_ver": 0x0506_0708,
        ])

        let rb = NVSPSendReceiveBuffer(gpadlHandle: 0x1112_1314, id: 0xCAFE)
        try checkGolden(rb, NVSPSendReceiveBuffer.cName, ["gpadl_handle": 0x1112_1314, "id": 0xCAFE])
        try checkMessageGolden(NVSPMessage.sendReceiveBuffer(rb).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 101, "msg.v1_msg.send_recv_buf.gpadl_handle": 0x1112_1314, "msg.v1_msg.send_recv_buf.id": 0xCAFE,
        ])

        let section = NVSPReceiveBufferSection(offset: 0x2122_2324, subAllocationSize: 0x3132_3334,
                                               subAllocationCount: 0x4142_4344, endOffset: 0x5152_5354)
        try checkGolden(section, NVSPReceiveBufferSection.cName, [
            "offset": 0x2122_2324, "sub_alloc_size": 0x3132_3334, "num_sub_allocs": 0x4142_4344, "end_offset": 0x5152_5354,
        ])
        let rbc = NVSPSendReceiveBufferComplete(status: .init(rawValue: 0x0A0B_0C0D), sections: [section])
        try checkGolden(rbc, NVSPSendReceiveBufferComplete.cName, [
            "status": 0x0A0B_0C0D, "num_sections": 1, "sections[].offset": 0x2122_2324,
            "sections[].sub_alloc_size": 0x3132_3334, "sections[].num_sub_allocs": 0x4142_4344,
            "sections[].end_offset": 0x5152_5354,
        ])
        try checkMessageGolden(NVSPMessage.sendReceiveBufferComplete(rbc).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 102, "msg.v1_msg.send_recv_buf_complete.status": 0x0A0B_0C0D,
            "msg.v1_msg.send_recv_buf_complete.num_sections": 1,
            "msg.v1_msg.send_recv_buf_complete.sections[].offset": 0x2122_2324,
            "msg.v1_msg.send_recv_buf_complete.sections[].end_offset": 0x5152_5354,
        ])

        let rr = NVSPRevokeReceiveBuffer(id: 0xA1A2)
        try checkGolden(rr, NVSPRevokeReceiveBuffer.cName, ["id": 0xA1A2])
        try checkMessageGolden(NVSPMessage.revokeReceiveBuffer(rr).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 103, "msg.v1_msg.revoke_recv_buf.id": 0xA1A2,
        ])

        let sb = NVSPSendSendBuffer(gpadlHandle: 0x6162_6364, id: 0xFACE)
        try checkGolden(sb, NVSPSendSendBuffer.cName, ["gpadl_handle": 0x6162_6364, "id": 0xFACE])
        try checkMessageGolden(NVSPMessage.sendSendBuffer(sb).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 104, "msg.v1_msg.send_send_buf.gpadl_handle": 0x6162_6364, "msg.v1_msg.send_send_buf.id": 0xFACE,
        ])

        let sbc = NVSPSendSendBufferComplete(status: .init(rawValue: 0x7172_7374), sectionSize: 0x8182_8384)
        try checkGolden(sbc, NVSPSendSendBufferComplete.cName, ["status": 0x7172_7374, "section_size": 0x8182_8384])
        try checkMessageGolden(NVSPMessage.sendSendBufferComplete(sbc).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 105, "msg.v1_msg.send_send_buf_complete.status": 0x7172_7374,
            "msg.v1_msg.send_send_buf_complete.section_size": 0x8182_8384,
        ])

        let rs = NVSPRevokeSendBuffer(id: 0xB1B2)
        try checkGolden(rs, NVSPRevokeSendBuffer.cName, ["id": 0xB1B2])
        try checkMessageGolden(NVSPMessage.revokeSendBuffer(rs).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 106, "msg.v1_msg.revoke_send_buf.id": 0xB1B2,
        ])

        let p = NVSPSendRNDISPacket(channelType: .init(rawValue: 0x9192_9394), sendBufferSectionIndex: 0xA1A2_A3A4,
                                    sendBufferSectionSize: 0xB1B2_B3B4)
        try checkGolden(p, NVSPSendRNDISPacket.cName, [
            "channel_type": 0x9192_9394, "send_buf_section_index": 0xA1A2_A3A4, "send_buf_section_size": 0xB1B2_B3B4,
        ])
        try checkMessageGolden(NVSPMessage.sendRNDISPacket(p).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 107, "msg.v1_msg.send_rndis_pkt.channel_type": 0x9192_9394,
            "msg.v1_msg.send_rndis_pkt.send_buf_section_index": 0xA1A2_A3A4,
            "msg.v1_msg.send_rndis_pkt.send_buf_section_size": 0xB1B2_B3B4,
        ])

        let pc = NVSPSendRNDISPacketComplete(status: .init(rawValue: 0xC1C2_C3C4))
        try checkGolden(pc, NVSPSendRNDISPacketComplete.cName, ["status": 0xC1C2_C3C4])
        try checkMessageGolden(NVSPMessage.sendRNDISPacketComplete(pc).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 108, "msg.v1_msg.send_rndis_pkt_complete.status": 0xC1C2_C3C4,
        ])
    }

    @Test func version2Messages() throws {
        let caps: NVSPVSCCapability = [.vmq, .sriov, .correlationID, .virtualSubnetID]
        let cfg = NVSPSendNDISConfig(mtu: 0x1112_1314, capability: caps)
        try checkGolden(cfg, NVSPSendNDISConfig.cName, [
            "mtu": 0x1112_1314, "capability.data": 0x55, "capability.vmq": 1, "capability.chimney": 0,
            "capability.sriov": 1, "capability.ieee8021q": 0, "capability.correlation_id": 1, "capability.teaming": 0,
            "capability.vsubnetid": 1, "capability.rsc": 0,
        ], zero: ["reserved"])
        try checkMessageGolden(NVSPMessage.sendNDISConfig(cfg).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 125, "msg.v2_msg.send_ndis_config.mtu": 0x1112_1314,
            "msg.v2_msg.send_ndis_config.capability.data": 0x55,
        ])
        // Linux's NVSP 6.1 set: 802.1Q, SR-IOV, teaming, RSC.
        let linux: NVSPVSCCapability = [.ieee8021q, .sriov, .teaming, .rsc]
        var c = LayoutCheck(try linuxLayout("nvsp_2_vsc_capability"), le(linux.rawValue))
        c.value("ieee8021q", 1); c.value("sriov", 1); c.value("teaming", 1); c.value("rsc", 1); c.value("vmq", 0)

        let a = NVSPAllocateReceiveBuffer(allocationID: 0x2122_2324, length: 0x3132_3334)
        try checkGolden(a, NVSPAllocateReceiveBuffer.cName, ["alloc_id": 0x2122_2324, "len": 0x3132_3334])
        try checkMessageGolden(NVSPMessage.allocateReceiveBuffer(a).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 120, "msg.v2_msg.alloc_rxbuf.alloc_id": 0x2122_2324, "msg.v2_msg.alloc_rxbuf.len": 0x3132_3334,
        ])
        let ac = NVSPAllocateReceiveBufferComplete(status: .init(rawValue: 0x4142_4344), allocationID: 0x5152_5354,
                                                   gpadlHandle: 0x6162_6364, receiveBufferID: 0x7172_7374_7576_7778)
        try checkGolden(ac, NVSPAllocateReceiveBufferComplete.cName, [
            "status": 0x4142_4344, "alloc_id": 0x5152_5354, "gpadl_handle": 0x6162_6364,
            "recv_buf_id": 0x7172_7374_7576_7778,
        ])
        try checkMessageGolden(NVSPMessage.allocateReceiveBufferComplete(ac).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 121, "msg.v2_msg.alloc_rxbuf_comp.recv_buf_id": 0x7172_7374_7576_7778,
        ])
        let f = NVSPFreeReceiveBuffer(receiveBufferID: 0x8182_8384_8586_8788)
        try checkGolden(f, NVSPFreeReceiveBuffer.cName, ["recv_buf_id": 0x8182_8384_8586_8788])
        try checkMessageGolden(NVSPMessage.freeReceiveBuffer(f).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 122, "msg.v2_msg.free_rxbuf.recv_buf_id": 0x8182_8384_8586_8788,
        ])
    }

    @Test func version4And5Messages() throws {
        let vf = NVSPSendVFAssociation(allocated: 0x1112_1314, serial: 0x2122_2324)
        try checkGolden(vf, NVSPSendVFAssociation.cName, ["allocated": 0x1112_1314, "serial": 0x2122_2324])
        try checkMessageGolden(NVSPMessage.sendVFAssociation(vf).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 128, "msg.v4_msg.vf_assoc.allocated": 0x1112_1314, "msg.v4_msg.vf_assoc.serial": 0x2122_2324,
        ])
        let dp = NVSPSwitchDataPath(activeDataPath: .init(rawValue: 0x3132_3334))
        try checkGolden(dp, NVSPSwitchDataPath.cName, ["active_datapath": 0x3132_3334])
        try checkMessageGolden(NVSPMessage.switchDataPath(dp).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 129, "msg.v4_msg.active_dp.active_datapath": 0x3132_3334,
        ])
        let sr = NVSPSubchannelRequest(operation: .init(rawValue: 0x4142_4344), subchannelCount: 0x5152_5354)
        try checkGolden(sr, NVSPSubchannelRequest.cName, ["op": 0x4142_4344, "num_subchannels": 0x5152_5354])
        try checkMessageGolden(NVSPMessage.subchannelRequest(sr).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 133, "msg.v5_msg.subchn_req.op": 0x4142_4344,
            "msg.v5_msg.subchn_req.num_subchannels": 0x5152_5354,
        ])
        let sc = NVSPSubchannelComplete(status: .init(rawValue: 0x6162_6364), subchannelCount: 0x7172_7374)
        try checkGolden(sc, NVSPSubchannelComplete.cName, ["status": 0x6162_6364, "num_subchannels": 0x7172_7374])
        try checkMessageGolden(NVSPMessage.subchannelComplete(sc).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 133, "msg.v5_msg.subchn_comp.status": 0x6162_6364,
            "msg.v5_msg.subchn_comp.num_subchannels": 0x7172_7374,
        ])
        // The table header; the entries follow it (compact form) and run past the 40 bytes.
        let table = NVSPSendIndirectionTable(entries: (0..<16).map { UInt32($0) })
        try checkGolden(table, NVSPSendIndirectionTable.cName, size: NVSPSendIndirectionTable.wireSize,
                        ["count": 16, "offset": 12])
        try checkMessageGolden(NVSPMessage.sendIndirectionTable(table).wireBytes, NVSPMessage.cName, checkSize: false, [
            "hdr.msg_type": 134, "msg.v5_msg.send_table.count": 16, "msg.v5_msg.send_table.offset": 12,
        ])
    }

    @Test func version6PacketDirect() throws {
        var req = NVSPPacketDirectRequest(operation: .init(rawValue: 0x0102_0304))
        req.config = (mmioPA: 0x1112_1314_1516_1718, mmioLength: 0x2122_2324, subchannelCount: 0x3132)
        let reqUnions = ["sw_dpath", "open_prov", "cls_prov", "cr_q", "del_q", "flush_q", "alloc_com_buf", "free_com_buf"]
        try checkGolden(req, NVSPPacketDirectRequest.cName, [
            "op": 0x0102_0304, "config.mmio_pa": 0x1112_1314_1516_1718, "config.mmio_len": 0x2122_2324,
            "config.num_subchn": 0x3132,
        ], ignoring: reqUnions.reduce(into: Set<String>()) { $0.formUnion(members(of: NVSPPacketDirectRequest.cName, under: $1)) })
        try checkMessageGolden(NVSPMessage.pdAPIRequest(req).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 135, "msg.v6_msg.pd_req.op": 0x0102_0304,
            "msg.v6_msg.pd_req.config.mmio_pa": 0x1112_1314_1516_1718, "msg.v6_msg.pd_req.config.num_subchn": 0x3132,
        ])
        var sw = NVSPPacketDirectRequest(operation: .switchDataPath)
        sw.switchDataPath = (hostDataPathIsPD: 0x41, guestPDEnabled: 0x42)
        try checkMessageGolden(NVSPMessage.pdAPIRequest(sw).wireBytes, NVSPMessage.cName, [
            "msg.v6_msg.pd_req.sw_dpath.host_dpath_is_pd": 0x41, "msg.v6_msg.pd_req.sw_dpath.guest_pd_enabled": 0x42,
        ])
        var prov = NVSPPacketDirectRequest(operation: .openProvider)
        prov.providerID = 0x5152_5354
        try checkMessageGolden(NVSPMessage.pdAPIRequest(prov).wireBytes, NVSPMessage.cName, [
            "msg.v6_msg.pd_req.open_prov.prov_id": 0x5152_5354, "msg.v6_msg.pd_req.cr_q.prov_id": 0x5152_5354,
        ])

        var comp = NVSPPacketDirectComplete(operation: .init(rawValue: 0x6162_6364), status: .init(rawValue: 0x7172_7374))
        comp.config = (pdQueueCount: 0x8182, rssQueueCount: 0x83, isSupported: 0x84, isEnabled: 0x85)
        try checkGolden(comp, NVSPPacketDirectComplete.cName, [
            "op": 0x6162_6364, "status": 0x7172_7374, "config.num_pd_q": 0x8182, "config.num_rss_q": 0x83,
            "config.is_supported": 0x84, "config.is_enabled": 0x85,
        ], ignoring: ["open_prov", "cr_q", "alloc_com_buf"]
            .reduce(into: Set<String>()) { $0.formUnion(members(of: NVSPPacketDirectComplete.cName, under: $1)) })
        try checkMessageGolden(NVSPMessage.pdAPIComplete(comp).wireBytes, NVSPMessage.cName, [
            "hdr.msg_type": 135, "msg.v6_msg.pd_comp.status": 0x7172_7374, "msg.v6_msg.pd_comp.config.is_enabled": 0x85,
        ])
        #expect(try linuxLayout("grp_affinity").size == 16)
    }
}
