import Testing
import VMBusLayoutTesting
import VMBusNetProtocol
import VMBusWire

/// Every RNDIS body and per-packet info, encoded by us, against hv_netvsc.ko's layouts: on its own and at its
/// offset inside `struct rndis_message` (body at 8).
@Suite struct RNDISGoldenLayoutTests {
    @Test func rndisMessageHeaderAndContainer() throws {
        let m = try linuxLayout(RNDISMessage.cName)
        #expect(m.field("ndis_msg_type")?.offset == 0)
        #expect(m.field("msg_len")?.offset == 4)
        #expect(m.field("msg")?.offset == RNDISMessage.headerSize)
    }

    @Test func initializeRequestAndComplete() throws {
        let req = RNDISInitializeRequest(requestID: 0x1112_1314, majorVersion: 0x2122_2324, minorVersion: 0x3132_3334,
                                         maxTransferSize: 0x4142_4344)
        try checkGolden(req, RNDISInitializeRequest.cName, [
            "req_id": 0x1112_1314, "major_ver": 0x2122_2324, "minor_ver": 0x3132_3334, "max_xfer_size": 0x4142_4344,
        ])
        let bytes = RNDISMessage.initializeRequest(req).wireBytes
        try checkMessageGolden(bytes, RNDISMessage.cName, checkSize: false, [
            "ndis_msg_type": 2, "msg_len": 24, "msg.init_req.req_id": 0x1112_1314,
            "msg.init_req.max_xfer_size": 0x4142_4344,
        ])
        let c = RNDISInitializeComplete(requestID: 1, status: .init(rawValue: 2), majorVersion: 3, minorVersion: 4,
                                        deviceFlags: 5, medium: 6, maxPacketsPerMessage: 7, maxTransferSize: 8,
                                        packetAlignmentFactor: 9, afListOffset: 10, afListSize: 11)
        try checkGolden(c, RNDISInitializeComplete.cName, [
            "req_id": 1, "status": 2, "major_ver": 3, "minor_ver": 4, "dev_flags": 5, "medium": 6,
            "max_pkt_per_msg": 7, "max_xfer_size": 8, "pkt_alignment_factor": 9, "af_list_offset": 10,
            "af_list_size": 11,
        ])
        // INIT_C is the largest body: the whole rndis_message.
        try checkMessageGolden(RNDISMessage.initializeComplete(c).wireBytes, RNDISMessage.cName, [
            "ndis_msg_type": 0x8000_0002, "msg_len": 52, "msg.init_complete.pkt_alignment_factor": 9,
            "msg.init_complete.af_list_size": 11,
        ])
    }

    @Test func queryAndSet() throws {
        let q = RNDISQueryRequest(requestID: 0x1112_1314, oid: .init(rawValue: 0x2122_2324), deviceVCHandle: 0x3132_3334)
        try checkGolden(q, RNDISQueryRequest.cName, [
            "req_id": 0x1112_1314, "oid": 0x2122_2324, "info_buflen": 0, "info_buf_offset": 20,
            "dev_vc_handle": 0x3132_3334,
        ])
        try checkMessageGolden(RNDISMessage.queryRequest(q).wireBytes, RNDISMessage.cName, checkSize: false, [
            "ndis_msg_type": 4, "msg_len": 28, "msg.query_req.oid": 0x2122_2324, "msg.query_req.info_buf_offset": 20,
        ])
        let qc = RNDISQueryComplete(requestID: 0x4142_4344, status: .init(rawValue: 0x5152_5354))
        try checkGolden(qc, RNDISQueryComplete.cName, [
            "req_id": 0x4142_4344, "status": 0x5152_5354, "info_buflen": 0, "info_buf_offset": 16,
        ])
        let s = RNDISSetRequest(requestID: 0x6162_6364, oid: .genCurrentPacketFilter, infoBuffer: [0x0D, 0, 0, 0],
                                deviceVCHandle: 0x7172_7374)
        var c = LayoutCheck(try linuxLayout(RNDISSetRequest.cName), s.wireBytes)
        c.value("req_id", 0x6162_6364)
        c.value("oid", 0x0001_010E)
        c.value("info_buflen", 4)
        c.value("info_buf_offset", 20)
        c.value("dev_vc_handle", 0x7172_7374)
        c.bytes("info_buf", [0x0D, 0, 0, 0])
        c.complete()
        #expect(c.layout.size == RNDISSetRequest.wireSize)
        try checkMessageGolden(RNDISMessage.setRequest(s).wireBytes, RNDISMessage.cName, checkSize: false, [
            "ndis_msg_type": 5, "msg_len": 32, "msg.set_req.req_id": 0x6162_6364, "msg.set_req.info_buflen": 4,
        ])
        let sc = RNDISSetComplete(requestID: 0x8182_8384, status: .init(rawValue: 0x9192_9394))
        try checkGolden(sc, RNDISSetComplete.cName, ["req_id": 0x8182_8384, "status": 0x9192_9394])
    }

    @Test func resetHaltKeepaliveAndIndicate() throws {
        try checkGolden(RNDISResetRequest(), RNDISResetRequest.cName, [:], zero: ["reserved"])
        try checkGolden(RNDISResetComplete(status: .init(rawValue: 0x1112_1314), addressingReset: 0x2122_2324),
                        RNDISResetComplete.cName, ["status": 0x1112_1314, "addressing_reset": 0x2122_2324])
        try checkGolden(RNDISHaltRequest(requestID: 0x3132_3334), RNDISHaltRequest.cName, ["req_id": 0x3132_3334])
        try checkGolden(RNDISKeepaliveRequest(requestID: 0x4142_4344), RNDISKeepaliveRequest.cName,
                        ["req_id": 0x4142_4344])
        try checkGolden(RNDISKeepaliveComplete(requestID: 0x5152_5354, status: .init(rawValue: 0x6162_6364)),
                        RNDISKeepaliveComplete.cName, ["req_id": 0x5152_5354, "status": 0x6162_6364])
        try checkGolden(RNDISIndicateStatus(status: .init(rawValue: 0x7172_7374)), RNDISIndicateStatus.cName, [
            "status": 0x7172_7374, "status_buflen": 0, "status_buf_offset": 0,
        ])
        try checkMessageGolden(RNDISMessage.indicateStatus(.linkSpeedChange(hundredsOfBitsPerSecond: 100_000_000))
            .wireBytes, RNDISMessage.cName, checkSize: false, [
                "ndis_msg_type": 7, "msg_len": 24, "msg.indicate_status.status": 0x4001_0013,
                "msg.indicate_status.status_buflen": 4, "msg.indicate_status.status_buf_offset": 12,
            ])
        try checkMessageGolden(RNDISMessage.keepaliveComplete(.init(requestID: 9, status: .success)).wireBytes,
                               RNDISMessage.cName, checkSize: false, [
                                "ndis_msg_type": 0x8000_0008, "msg_len": 16, "msg.keep_alive_complete.req_id": 9,
                               ])
    }

    @Test func packetBodyAndPerPacketInfo() throws {
        let p = RNDISPacket(dataOffset: 0x1112_1314, dataLength: 0x2122_2324, oobDataOffset: 0x3132_3334,
                            oobDataLength: 0x4142_4344, oobDataElementCount: 0x5152_5354,
                            perPacketInfoOffset: 0x6162_6364, perPacketInfoLength: 0x7172_7374, vcHandle: 0x8182_8384)
        try checkGolden(p, RNDISPacket.cName, [
            "data_offset": 0x1112_1314, "data_len": 0x2122_2324, "oob_data_offset": 0x3132_3334,
            "oob_data_len": 0x4142_4344, "num_oob_data_elements": 0x5152_5354, "per_pkt_info_offset": 0x6162_6364,
            "per_pkt_info_len": 0x7172_7374, "vc_handle": 0x8182_8384,
        ], zero: ["reserved"])

        let h = PerPacketInfoHeader(size: 0x1112_1314, type: .init(rawValue: 0x2122_2324), isInternal: true,
                                    ppiOffset: 0x3132_3334)
        try checkGolden(h, PerPacketInfoHeader.cName, [
            "size": 0x1112_1314, "type": 0x2122_2324, "internal": 1, "ppi_offset": 0x3132_3334,
        ])
        try checkGolden(PerPacketInfoHeader(type: .ieee8021Q, dataLength: 4), PerPacketInfoHeader.cName, [
            "size": 16, "type": 6, "internal": 0, "ppi_offset": 12,
        ])

        // A whole Linux-style PACKET: body at 8, PPIs at 8 + 36.
        let info = RNDISPacketInfo(vlan: .init(priority: 5, vlanID: 0x123), hashValue: 0xDEAD_BEEF)
        var w = WireWriter()
        RNDISPacket.encodeMessage(into: &w, info: info, frame: [UInt8](repeating: 0xEE, count: 60))
        try checkMessageGolden(w.bytes, RNDISMessage.cName, checkSize: false, [
            "ndis_msg_type": 1, "msg_len": 8 + 36 + 32 + 60, "msg.pkt.data_offset": 36 + 32, "msg.pkt.data_len": 60,
            "msg.pkt.per_pkt_info_offset": 36, "msg.pkt.per_pkt_info_len": 32, "msg.pkt.oob_data_len": 0,
        ])
    }

    @Test func perPacketInfoPayloadBitfields() throws {
        var tx = NDISTCPIPChecksumInfo()
        tx.isIPv4 = true
        tx.tcpChecksum = true
        tx.ipHeaderChecksum = true
        tx.tcpHeaderOffset = 0x2AB
        try checkGolden(tx, NDISTCPIPChecksumInfo.cName, [
            "transmit.is_ipv4": 1, "transmit.is_ipv6": 0, "transmit.tcp_checksum": 1, "transmit.udp_checksum": 0,
            "transmit.ip_header_checksum": 1, "transmit.reserved": 0, "transmit.tcp_header_offset": 0x2AB,
            "value": 0x02AB_0015,
        ], ignoring: members(of: NDISTCPIPChecksumInfo.cName, under: "receive"))
        var rx = NDISTCPIPChecksumInfo()
        rx.tcpChecksumFailed = true
        rx.ipChecksumFailed = true
        rx.udpChecksumSucceeded = true
        rx.loopback = true
        rx.ipChecksumValueInvalid = true
        try checkGolden(rx, NDISTCPIPChecksumInfo.cName, [
            "receive.tcp_checksum_failed": 1, "receive.udp_checksum_failed": 0, "receive.ip_checksum_failed": 1,
            "receive.tcp_checksum_succeeded": 0, "receive.udp_checksum_succeeded": 1,
            "receive.ip_checksum_succeeded": 0, "receive.loopback": 1, "receive.tcp_checksum_value_invalid": 0,
            "receive.ip_checksum_value_invalid": 1, "value": 0x155,
        ], ignoring: members(of: NDISTCPIPChecksumInfo.cName, under: "transmit"))
        rx.udpChecksumFailed = true
        rx.tcpChecksumSucceeded = true
        rx.ipChecksumSucceeded = true
        rx.tcpChecksumValueInvalid = true
        #expect(rx.value == 0x1FF)
        #expect(tx.isIPv6 == false && tx.udpChecksum == false)

        let lso = NDISTCPLSOInfo.v2Transmit(mss: 0xABCDE, tcpHeaderOffset: 0x3A5, ipv6: true)
        try checkGolden(lso, NDISTCPLSOInfo.cName, [
            "lso_v2_transmit.mss": 0xABCDE, "lso_v2_transmit.tcp_header_offset": 0x3A5, "lso_v2_transmit.type": 1,
            "lso_v2_transmit.ip_version": 1, "lso_v1_transmit.mss": 0xABCDE, "transmit.type": 1,
        ], ignoring: ["transmit", "lso_v1_transmit", "lso_v1_transmit_complete", "lso_v2_transmit_complete", "value"]
            .reduce(into: Set<String>()) { $0.formUnion(members(of: NDISTCPLSOInfo.cName, under: $1)) })
        var done = NDISTCPLSOInfo()
        done.tcpPayload = 0x2345_6789 & 0x3FFF_FFFF
        var c = LayoutCheck(try linuxLayout(NDISTCPLSOInfo.cName), done.wireBytes)
        c.value("lso_v1_transmit_complete.tcp_payload", 0x2345_6789 & 0x3FFF_FFFF)
        c.value("lso_v1_transmit_complete.type", 0)

        let vlan = NDISPacket8021QInfo(priority: 6, cfi: true, vlanID: 0xABC)
        try checkGolden(vlan, NDISPacket8021QInfo.cName, [
            "pri": 6, "cfi": 1, "vlanid": 0xABC, "reserved": 0, "value": 0xABCE,
        ])

        let id = RNDISPacketInfoID(version: 0x11, flags: 0x22, packetID: 0x3344)
        try checkGolden(id, RNDISPacketInfoID.cName, ["ver": 0x11, "flag": 0x22, "pkt_id": 0x3344])
    }
}
