import VMBusLayoutTesting
import Testing
import VMBusProtocol
import VMBusWire

/// One wire type and the check that its encoding matches the C layout byte for byte.
struct GoldenCase: Sendable, CustomTestStringConvertible {
    let swiftName: String
    let cName: String
    let wireSize: Int
    let messageType: ChannelMessageType?
    let check: @Sendable () throws -> Void
    var testDescription: String { "\(swiftName) (\(cName))" }

    init<T: WireCodable>(_ type: T.Type, cName: String, messageType: ChannelMessageType? = nil,
                         check: @escaping @Sendable () throws -> Void) {
        self.swiftName = String(describing: type)
        self.cName = cName
        self.wireSize = T.wireSize
        self.messageType = messageType
        self.check = check
    }

    init<T: ChannelMessageCodable>(_ type: T.Type, check: @escaping @Sendable () throws -> Void) {
        self.init(type, cName: T.cName, messageType: T.messageType, check: check)
    }
}

/// Checks `value` against `layout`: decodes back to itself and, when `exactSize`, is exactly `sizeof` long.
func encodeChecked<T: WireCodable & Equatable>(
    _ value: T, _ layout: LinuxLayout, exactSize: Bool = true, sourceLocation: SourceLocation = #_sourceLocation
) throws -> LayoutCheck {
    let bytes = value.wireBytes
    let check = LayoutCheck(layout, bytes)
    if exactSize { check.size(sourceLocation: sourceLocation) }
    #expect(try T(wireBytes: bytes) == value, "\(T.self) decodes back to itself", sourceLocation: sourceLocation)
    return check
}

private func headerFields(_ c: inout LayoutCheck, _ type: ChannelMessageType, prefix: String = "header.") {
    c.value(prefix + "msgtype", UInt64(type.rawValue))
    c.zero(prefix + "padding")
}

enum GoldenCases {
    static let all: [GoldenCase] = messages + headerOnly + other

    static let messages: [GoldenCase] = [
        GoldenCase(OfferChannel.self) {
            let m = Samples.offer
            var c = try encodeChecked(m, linuxLayout(OfferChannel.cName))
            headerFields(&c, .offerChannel)
            c.guid("offer.if_type", m.interfaceType)
            c.guid("offer.if_instance", m.interfaceInstance)
            c.zero("offer.reserved1")
            c.zero("offer.reserved2")
            c.value("offer.chn_flags", 0xB1B2)
            c.value("offer.mmio_megabytes", 0xC1C2)
            c.bytes("offer.u.std.user_def", patternBytes(120, from: 0x60))
            c.value("offer.u.pipe.pipe_mode", UInt64(m.pipeMode))
            c.bytes("offer.u.pipe.user_def", Array(patternBytes(120, from: 0x60)[4...]))
            c.value("offer.sub_channel_index", 0xD1D2)
            c.value("offer.reserved3", 0xE1E2)
            c.value("child_relid", 0xF1F2_F3F4)
            c.value("monitorid", 0x5A)
            c.value("monitor_allocated", 1)
            c.zero("reserved")
            c.value("is_dedicated_interrupt", 1)
            c.zero("reserved1")
            c.value("connection_id", 0x6A6B_6C6D)
            c.complete()
            #expect(m.pipeMode == 0x6362_6160)
        },
        GoldenCase(RescindChannelOffer.self) {
            var c = try encodeChecked(Samples.rescind, linuxLayout(RescindChannelOffer.cName))
            headerFields(&c, .rescindChannelOffer)
            c.value("child_relid", 0x1121_3141)
            c.complete()
        },
        GoldenCase(OpenChannel.self) {
            var c = try encodeChecked(Samples.openChannel, linuxLayout(OpenChannel.cName))
            headerFields(&c, .openChannel)
            c.value("child_relid", 0x1112_1314)
            c.value("openid", 0x2122_2324)
            c.value("ringbuffer_gpadlhandle", 0x3132_3334)
            c.value("target_vp", 0x4142_4344)
            c.value("downstream_ringbuffer_pageoffset", 0x5152_5354)
            c.bytes("userdata", patternBytes(120, from: 0x80))
            c.complete()

            // The 6.0 OpenChannel2 form extends the Linux layout.
            var c2 = try encodeChecked(Samples.openChannel2, OpenVMMLayouts.openChannel2)
            headerFields(&c2, .openChannel)
            c2.value("channel_id", 0x1112_1314)
            c2.value("open_id", 0x2122_2324)
            c2.value("ring_buffer_gpadl_id", 0x3132_3334)
            c2.value("target_vp", 0x4142_4344)
            c2.value("downstream_ring_buffer_page_offset", 0x5152_5354)
            c2.bytes("user_data", patternBytes(120, from: 0x80))
            c2.value("connection_id", 0x6162_6364)
            c2.value("event_flag", 0x7172)
            c2.value("flags", 0x8182)
            c2.complete()
        },
        GoldenCase(OpenChannelResult.self) {
            var c = try encodeChecked(Samples.openResult, linuxLayout(OpenChannelResult.cName))
            headerFields(&c, .openChannelResult)
            c.value("child_relid", 0x1A1B_1C1D)
            c.value("openid", 0x2A2B_2C2D)
            c.value("status", 0x3A3B_3C3D)
            c.complete()
        },
        GoldenCase(CloseChannel.self) {
            var c = try encodeChecked(Samples.close, linuxLayout(CloseChannel.cName))
            headerFields(&c, .closeChannel)
            c.value("child_relid", 0x4A4B_4C4D)
            c.complete()
        },
        GoldenCase(GPADLHeader.self) {
            let layout = try linuxLayout(GPADLHeader.cName)
            var fixed = Samples.gpadlHeader
            fixed.rangeData = []
            _ = try encodeChecked(fixed, layout)

            var c = try encodeChecked(Samples.gpadlHeader, layout, exactSize: false)
            headerFields(&c, .gpadlHeader)
            c.value("child_relid", 0x1516_1718)
            c.value("gpadl", 0x2526_2728)
            c.value("range_buflen", 24)
            c.value("rangecount", 1)
            c.value("range[].byte_count", 0x2000)
            c.value("range[].byte_offset", 0)
            c.bytes("range[].pfn_array", le(UInt64(0x0102_0304_0506)) + le(UInt64(0x0A0B_0C0D)))
            c.complete()
        },
        GoldenCase(GPADLBody.self) {
            let layout = try linuxLayout(GPADLBody.cName)
            var fixed = Samples.gpadlBody
            fixed.data = []
            _ = try encodeChecked(fixed, layout)

            var c = try encodeChecked(Samples.gpadlBody, layout, exactSize: false)
            headerFields(&c, .gpadlBody)
            c.value("msgnumber", 0x3536_3738)
            c.value("gpadl", 0x4546_4748)
            c.bytes("pfn", le(UInt64(0x5556_5758_595A_5B5C)))
            c.complete()
        },
        GoldenCase(GPADLCreated.self) {
            var c = try encodeChecked(Samples.gpadlCreated, linuxLayout(GPADLCreated.cName))
            headerFields(&c, .gpadlCreated)
            c.value("child_relid", 0x1E1F_2021)
            c.value("gpadl", 0x2E2F_3031)
            c.value("creation_status", 0x3E3F_4041)
            c.complete()
        },
        GoldenCase(GPADLTeardown.self) {
            var c = try encodeChecked(Samples.gpadlTeardown, linuxLayout(GPADLTeardown.cName))
            headerFields(&c, .gpadlTeardown)
            c.value("child_relid", 0x4E4F_5051)
            c.value("gpadl", 0x5E5F_6061)
            c.complete()
        },
        GoldenCase(GPADLTorndown.self) {
            var c = try encodeChecked(Samples.gpadlTorndown, linuxLayout(GPADLTorndown.cName))
            headerFields(&c, .gpadlTorndown)
            c.value("gpadl", 0x6E6F_7071)
            c.complete()
        },
        GoldenCase(RelIDReleased.self) {
            var c = try encodeChecked(Samples.relIDReleased, linuxLayout(RelIDReleased.cName))
            headerFields(&c, .relIDReleased)
            c.value("child_relid", 0x7E7F_8081)
            c.complete()
        },
        GoldenCase(InitiateContact.self) {
            var c = try encodeChecked(Samples.initiateContact, linuxLayout(InitiateContact.cName))
            headerFields(&c, .initiateContact)
            c.value("vmbus_version_requested", 0x1314_1516)
            c.value("target_vcpu", 0x2324_2526)
            c.value("interrupt_page", 0x3334_3536_3738_393A)
            c.value("msg_sint", 0x3A)
            c.value("msg_vtl", 0x39)
            c.bytes("reserved", [0x38, 0x37, 0x36, 0x35, 0x34, 0x33])
            c.value("monitor_page1", 0x4344_4546_4748_494A)
            c.value("monitor_page2", 0x5354_5556_5758_595A)
            c.complete()
            #expect(Samples.initiateContact.messageSINT == 0x3A)
            #expect(Samples.initiateContact.messageVTL == 0x39)

            // The 5.0 union members and the 6.0 form with feature flags and a client id.
            var l = try encodeChecked(Samples.initiateContact2, linuxLayout(InitiateContact.cName), exactSize: false)
            l.value("msg_sint", 0x37)
            l.value("msg_vtl", 0x38)
            l.bytes("reserved", [0, 0, 0x3F, 0x3E, 0x3D, 0x3C])
            var c2 = try encodeChecked(Samples.initiateContact2, OpenVMMLayouts.initiateContact2)
            headerFields(&c2, .initiateContact)
            c2.value("version_requested", UInt64(VMBusVersion.copper.rawValue))
            c2.value("target_message_vp", 0x2324_2526)
            c2.value("target_info.sint", 0x37)
            c2.value("target_info.vtl", 0x38)
            c2.zero("target_info.padding")
            c2.value("target_info.feature_flags", 0x3C3D_3E3F)
            c2.value("parent_to_child_monitor_page_gpa", 0x4344_4546_4748_494A)
            c2.value("child_to_parent_monitor_page_gpa", 0x5354_5556_5758_595A)
            c2.guid("client_id", patternGUID(0x90))
            c2.complete()
        },
        GoldenCase(VersionResponse.self) {
            var c = try encodeChecked(Samples.versionResponse, linuxLayout(VersionResponse.cName))
            headerFields(&c, .versionResponse)
            c.value("version_supported", 1)
            c.value("connection_state", 0xC3)
            c.zero("padding")
            c.value("msg_conn_id", 0xD4D5_D6D7)
            c.complete()

            var c2 = try encodeChecked(Samples.versionResponse2, OpenVMMLayouts.versionResponse2)
            headerFields(&c2, .versionResponse)
            c2.value("version_supported", 1)
            c2.value("connection_state", 0xC3)
            c2.zero("padding")
            c2.value("selected_version_or_connection_id", 0xD4D5_D6D7)
            c2.value("supported_features", 0xE4E5_E6E7)
            c2.complete()
        },
        GoldenCase(ModifyChannel.self) {
            var c = try encodeChecked(Samples.modifyChannel, linuxLayout(ModifyChannel.cName))
            headerFields(&c, .modifyChannel)
            c.value("child_relid", 0x9192_9394)
            c.value("target_vp", 0xA1A2_A3A4)
            c.complete()
        },
        GoldenCase(ModifyChannelResponse.self) {
            var c = try encodeChecked(Samples.modifyChannelResponse, linuxLayout(ModifyChannelResponse.cName))
            headerFields(&c, .modifyChannelResponse)
            c.value("child_relid", 0xB1B2_B3B4)
            c.value("status", 0xC1C2_C3C4)
            c.complete()
        },
        GoldenCase(TLConnectRequest.self) {
            var c = try encodeChecked(Samples.tlConnectRequest, linuxLayout(TLConnectRequest.cName))
            headerFields(&c, .tlConnectRequest)
            c.guid("guest_endpoint_id", patternGUID(0x10))
            c.guid("host_service_id", patternGUID(0x30))
            c.complete()

            var c2 = try encodeChecked(Samples.tlConnectRequest2, OpenVMMLayouts.tlConnectRequest2)
            headerFields(&c2, .tlConnectRequest)
            c2.guid("endpoint_id", patternGUID(0x10))
            c2.guid("service_id", patternGUID(0x30))
            c2.guid("silo_id", patternGUID(0x50))
            c2.complete()
        },
        GoldenCase(TLConnectResult.self) {
            var c = try encodeChecked(Samples.tlConnectResult, OpenVMMLayouts.tlConnectResult)
            headerFields(&c, .tlConnectResult)
            c.guid("endpoint_id", patternGUID(0x70))
            c.guid("service_id", patternGUID(0xA0))
            c.value("status", 0xC000_0236)
            c.complete()
        },
        GoldenCase(OpenReservedChannel.self) {
            var c = try encodeChecked(Samples.openReserved, OpenVMMLayouts.openReservedChannel)
            headerFields(&c, .openReservedChannel)
            c.value("channel_id", 0x0102_0304)
            c.value("target_vp", 0x1112_1314)
            c.value("target_sint", 0x2122_2324)
            c.value("ring_buffer_gpadl", 0x3132_3334)
            c.value("downstream_page_offset", 0x4142_4344)
            c.complete()
        },
        GoldenCase(CloseReservedChannel.self) {
            var c = try encodeChecked(Samples.closeReserved, OpenVMMLayouts.closeReservedChannel)
            headerFields(&c, .closeReservedChannel)
            c.value("channel_id", 0x5152_5354)
            c.value("target_vp", 0x6162_6364)
            c.value("target_sint", 0x7172_7374)
            c.complete()
        },
        GoldenCase(CloseReservedResponse.self) {
            var c = try encodeChecked(Samples.closeReservedResponse, OpenVMMLayouts.closeReservedChannelResponse)
            headerFields(&c, .closeReservedResponse)
            c.value("channel_id", 0x8182_8384)
            c.complete()
        },
        GoldenCase(ModifyConnection.self) {
            var c = try encodeChecked(Samples.modifyConnection, OpenVMMLayouts.modifyConnection)
            headerFields(&c, .modifyConnection)
            c.value("parent_to_child_monitor_page_gpa", 0x1112_1314_1516_1718)
            c.value("child_to_parent_monitor_page_gpa", 0x2122_2324_2526_2728)
            c.complete()
        },
        GoldenCase(ModifyConnectionResponse.self) {
            var c = try encodeChecked(Samples.modifyConnectionResponse, OpenVMMLayouts.modifyConnectionResponse)
            headerFields(&c, .modifyConnectionResponse)
            c.value("connection_state", 0x9E)
            c.complete()
        },
        GoldenCase(Pause.self) {
            var c = try encodeChecked(Pause(), OpenVMMLayouts.pause)
            headerFields(&c, .pause)
            c.complete()
        },
        GoldenCase(PauseResponse.self) {
            var c = try encodeChecked(PauseResponse(), OpenVMMLayouts.pauseResponse)
            headerFields(&c, .pauseResponse)
            c.complete()
        },
        GoldenCase(Resume.self) {
            var c = try encodeChecked(Resume(), OpenVMMLayouts.resume)
            headerFields(&c, .resume)
            c.complete()
        },
    ]

    /// Messages Linux sends as a bare `struct vmbus_channel_message_header`.
    static let headerOnly: [GoldenCase] = [
        GoldenCase(RequestOffers.self) { try bare(RequestOffers()) },
        GoldenCase(AllOffersDelivered.self) { try bare(AllOffersDelivered()) },
        GoldenCase(Unload.self) { try bare(Unload()) },
        GoldenCase(UnloadResponse.self) { try bare(UnloadResponse()) },
    ]

    private static func bare<M: ChannelMessageCodable>(_ m: M) throws {
        var c = try encodeChecked(m, linuxLayout(M.cName))
        headerFields(&c, M.messageType, prefix: "")
        c.complete()
    }

    /// Wire types that are not control messages.
    static let other: [GoldenCase] = [
        GoldenCase(ChannelMessageHeader.self, cName: ChannelMessageHeader.cName) {
            var c = try encodeChecked(ChannelMessageHeader(messageType: ChannelMessageType(rawValue: 0xA1A2_A3A4)),
                                      linuxLayout(ChannelMessageHeader.cName))
            c.value("msgtype", 0xA1A2_A3A4)
            c.zero("padding")
            c.complete()
        },
        GoldenCase(PacketDescriptor.self, cName: PacketDescriptor.cName) {
            let d = PacketDescriptor(type: VMBusPacketType(rawValue: 0xA1A2), offset8: 0xB1B2, len8: 0xC1C2,
                                     flags: 0xD1D2, transactionID: 0xE1E2_E3E4_E5E6_E7E8)
            var c = try encodeChecked(d, linuxLayout(PacketDescriptor.cName))
            c.value("type", 0xA1A2)
            c.value("offset8", 0xB1B2)
            c.value("len8", 0xC1C2)
            c.value("flags", 0xD1D2)
            c.value("trans_id", 0xE1E2_E3E4_E5E6_E7E8)
            c.complete()
        },
        GoldenCase(GPADirectPacketHeader.self, cName: GPADirectPacketHeader.cName) {
            let layout = try linuxLayout(GPADirectPacketHeader.cName)
            let range = GPARange(byteCount: 0x1000, byteOffset: 0x123, pfns: [0x1111_2222_3333, 0x4444_5555_6666])
            let h = GPADirectPacketHeader(transactionID: 0x0102_0304_0506_0708, ranges: [range], payloadLength: 20)
            var c = LayoutCheck(layout, h.wireBytes)
            c.value("type", UInt64(VMBusPacketType.dataUsingGPADirect.rawValue))
            c.value("dataoffset8", 6)  // (24 + 8 + 2 × 8) / 8
            c.value("length8", 9)  // ALIGN(48 + 20, 8) / 8
            c.value("flags", 1)
            c.value("transactionid", 0x0102_0304_0506_0708)
            c.zero("reserved")
            c.value("rangecount", 1)
            c.value("range.len", 0x1000)
            c.value("range.offset", 0x123)
            c.bytes("range.pfn_array", le(UInt64(0x1111_2222_3333)) + le(UInt64(0x4444_5555_6666)))
            c.complete()
            // sizeof counts the first range's header: one range without PFNs encodes to exactly 32 bytes.
            let bare = GPADirectPacketHeader(descriptor: h.descriptor, ranges: [GPARange(byteCount: 1, byteOffset: 0, pfns: [])])
            #expect(bare.wireBytes.count == layout.size)
            #expect(GPADirectPacketHeader.fixedLength == layout.field("range")?.offset)
        },
        GoldenCase(TransferPagePacketHeader.self, cName: TransferPagePacketHeader.cName) {
            let layout = try linuxLayout(TransferPagePacketHeader.cName)
            let h = TransferPagePacketHeader(
                transactionID: 0x1112_1314_1516_1718, xferPageSetID: 0xCAFE, senderOwnsSet: true,
                ranges: [TransferPageRange(byteCount: 0xA1A2_A3A4, byteOffset: 0xB1B2_B3B4)], payloadLength: 16)
            var c = LayoutCheck(layout, h.wireBytes)
            c.value("d.type", UInt64(VMBusPacketType.dataUsingXferPages.rawValue))
            c.value("d.offset8", 4)
            c.value("d.len8", 6)
            c.value("d.flags", 1)
            c.value("d.trans_id", 0x1112_1314_1516_1718)
            c.value("xfer_pageset_id", 0xCAFE)
            c.value("sender_owns_set", 1)
            c.zero("reserved")
            c.value("range_cnt", 1)
            c.value("ranges[].byte_count", 0xA1A2_A3A4)
            c.value("ranges[].byte_offset", 0xB1B2_B3B4)
            c.complete()
            let bare = TransferPagePacketHeader(descriptor: h.descriptor, xferPageSetID: 1, ranges: [])
            #expect(bare.wireBytes.count == layout.size)
        },
        GoldenCase(TransferPageRange.self, cName: TransferPageRange.cName) {
            var c = try encodeChecked(TransferPageRange(byteCount: 0x0102_0304, byteOffset: 0x1112_1314),
                                      linuxLayout(TransferPageRange.cName))
            c.value("byte_count", 0x0102_0304)
            c.value("byte_offset", 0x1112_1314)
            c.complete()
        },
        GoldenCase(HvMessageHeader.self, cName: HvMessageHeader.cName) {
            let h = HvMessageHeader(messageType: HvMessageType(rawValue: 0xA1A2_A3A4), payloadSize: 0xB1,
                                    messageFlags: .messagePending, sender: 0xC1C2_C3C4_C5C6_C7C8)
            var c = try encodeChecked(h, linuxLayout(HvMessageHeader.cName))
            c.value("message_type", 0xA1A2_A3A4)
            c.value("payload_size", 0xB1)
            c.value("message_flags.asu8", 1)
            c.value("message_flags.msg_pending", 1)
            c.zero("message_flags.reserved")
            c.zero("reserved")
            c.value("sender", 0xC1C2_C3C4_C5C6_C7C8)
            c.value("port.asu32", 0xC5C6_C7C8)
            c.value("port.u.id", 0xC6C7C8)
            c.value("port.u.reserved", 0xC5)
            c.complete()
            #expect(h.portID == 0xC6C7C8)
        },
        GoldenCase(HvMessage.self, cName: HvMessage.cName) {
            let m = HvMessage(
                header: HvMessageHeader(messageType: .vmbusChannelMessage, payloadSize: 0xF0, messageFlags: [],
                                        sender: 0x0102_0304_0506_0708),
                payload: patternBytes(240, from: 0x10))
            var c = try encodeChecked(m, linuxLayout(HvMessage.cName))
            c.value("header.message_type", 1)
            c.value("header.payload_size", 0xF0)
            c.zero("header.message_flags")
            c.zero("header.reserved")
            c.value("header.sender", 0x0102_0304_0506_0708)
            c.value("header.port.asu32", 0x0506_0708)
            c.value("header.port.u.id", 0x06_0708)
            c.value("header.port.u.reserved", 0x05)
            c.bytes("u.payload", patternBytes(240, from: 0x10))
            c.complete()
        },
        GoldenCase(HvInputPostMessage.self, cName: HvInputPostMessage.cName) {
            let m = HvInputPostMessage(connectionID: 0xA1A2_A3A4, messageType: HvMessageType(rawValue: 0xB1B2_B3B4),
                                       payloadSize: 0xC1C2_C3C4, payload: patternBytes(240, from: 0x20))
            var c = try encodeChecked(m, linuxLayout(HvInputPostMessage.cName))
            c.value("connectionid.asu32", 0xA1A2_A3A4)
            c.value("connectionid.u.id", 0xA2A3A4)
            c.value("connectionid.u.reserved", 0xA1)
            c.zero("reserved")
            c.value("message_type", 0xB1B2_B3B4)
            c.value("payload_size", 0xC1C2_C3C4)
            c.bytes("payload", patternBytes(240, from: 0x20))
            c.complete()
        },
    ]
}

/// GPARange is variable-length (not `WireCodable`), so its golden check is a test of its own.
@Suite struct GoldenLayoutTests {
    @Test(arguments: GoldenCases.all)
    func encodingMatchesTheCLayoutByteForByte(_ golden: GoldenCase) throws {
        try golden.check()
    }

    @Test func aGPARangeIsLaidOutAsStructGPARangeFollowedByItsPFNs() throws {
        let range = GPARange(byteCount: 0x0000_2001, byteOffset: 0x0FFF, pfns: [0xA1A2_A3A4_A5A6, 0xB1B2_B3B4_B5B6, 0xC1C2])
        let layout = try linuxLayout(GPARange.cName)
        var c = LayoutCheck(layout, range.wireBytes)
        c.value("byte_count", 0x2001)
        c.value("byte_offset", 0xFFF)
        c.bytes("pfn_array", le(UInt64(0xA1A2_A3A4_A5A6)) + le(UInt64(0xB1B2_B3B4_B5B6)) + le(UInt64(0xC1C2)))
        c.complete()
        #expect(GPARange.headerSize == layout.size)
        #expect(GPARange(byteCount: 1, byteOffset: 0, pfns: []).wireBytes.count == layout.size)
    }

    @Test func ringControlOffsetsMatchStructHvRingBuffer() throws {
        let layout = try linuxLayout(RingControlLayout.cName)
        #expect(layout.field("write_index")?.offset == RingControlLayout.writeIndexOffset)
        #expect(layout.field("read_index")?.offset == RingControlLayout.readIndexOffset)
        #expect(layout.field("interrupt_mask")?.offset == RingControlLayout.interruptMaskOffset)
        #expect(layout.field("pending_send_sz")?.offset == RingControlLayout.pendingSendSizeOffset)
        #expect(layout.field("feature_bits")?.offset == RingControlLayout.featureBitsOffset)
        #expect(layout.field("buffer")?.offset == RingControlLayout.dataOffset)
        #expect(layout.size == RingControlLayout.controlPageSize)
        let bit = try #require(layout.field("feature_bits.feat_pending_send_sz"))
        #expect(UInt32(1) << UInt32(bit.bit ?? 99) == RingControlLayout.featurePendingSendSize)
        #expect(LinuxConstants.values["VMBUS_PKT_TRAILER"] == UInt64(RingControlLayout.packetTrailerSize))
        for name in ["write_index", "read_index", "interrupt_mask", "pending_send_sz", "feature_bits"] {
            #expect(layout.field(name)?.size == 4, "\(name) is a 32-bit word")
        }
    }

    /// The registry: every wire type this module encodes, each either in the Linux fixture with the same size or
    /// listed in `linuxLayoutExceptions` with a reason. Adding a wire type without a golden case, or losing a
    /// type from the fixture, fails here.
    @Test func everyWireTypeIsInTheLinuxFixtureOrAnExplicitException() throws {
        let encoded: [(String, String, Int)] = GoldenCases.all.map { ($0.swiftName, $0.cName, $0.wireSize) }
            + [("GPARange", GPARange.cName, GPARange.headerSize), ("RingControlLayout", RingControlLayout.cName, RingControlLayout.controlPageSize)]
        for (swiftName, cName, size) in encoded {
            if let reason = linuxLayoutExceptions[cName] {
                #expect(!reason.isEmpty)
                #expect(LinuxLayouts.layout(cName) == nil,
                        "\(swiftName): \(cName) is now in the Linux fixture; remove it from linuxLayoutExceptions")
                continue
            }
            guard let layout = LinuxLayouts.layout(cName) else {
                Issue.record("""
                    \(swiftName) encodes C type \(cName), which is MISSING from VMBusLayoutTesting/LinuxLayouts.swift. \
                    Add it to Scripts/generate-layout-fixtures and regenerate, or list it in linuxLayoutExceptions \
                    with the reason Linux 6.12 does not have it.
                    """)
                continue
            }
            #expect(layout.size == size, "\(swiftName).wireSize \(size) != sizeof(\(cName)) \(layout.size)")
        }
        // Every exception names a type we actually encode.
        let cNames = Set(encoded.map(\.1))
        for name in linuxLayoutExceptions.keys { #expect(cNames.contains(name), "stale exception \(name)") }
    }

    @Test func everyControlMessageTypeHasAGoldenCase() {
        let covered = Set(GoldenCases.all.compactMap(\.messageType))
        for entry in ChannelMessage.table {
            #expect(covered.contains(entry.type), "no golden layout case for \(entry.type)")
        }
        #expect(Set(GoldenCases.all.map(\.swiftName)).count == GoldenCases.all.count, "duplicate golden cases")
    }

    @Test func theTableNamesTheSameCStructAsEachMessageType() {
        for golden in GoldenCases.all {
            guard let type = golden.messageType else { continue }
            #expect(ChannelMessage.entry(for: type)?.cName == golden.cName)
        }
    }
}
