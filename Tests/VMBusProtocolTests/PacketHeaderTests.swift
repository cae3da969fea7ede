import VMBusLayoutTesting
import Testing
import VMBusProtocol
import VMBusWire

/// Builds a packet as it would be copied out of the ring: header, zero padding to offset8, payload, padding
/// to len8, then the 8-byte trailer.
func packet(_ header: some WireEncodable, descriptor: PacketDescriptor, payload: [UInt8]) -> [UInt8] {
    var w = WireWriter()
    header.encode(into: &w)
    w.writeZeros(descriptor.payloadOffset - w.count)
    w.writeBytes(payload)
    w.writeZeros(descriptor.totalLength - w.count)
    w.writeUInt64(0)
    return w.bytes
}

@Suite struct PacketDescriptorTests {
    @Test func aValidDescriptorNamesItsPayload() throws {
        let d = PacketDescriptor(type: .dataInband, offset8: 2, len8: 5, flags: 1, transactionID: 9)
        try d.validate()
        #expect(d.payloadOffset == 16)
        #expect(d.totalLength == 40)
        #expect(d.payloadLength == 24)
        #expect(d.payloadRange == 16..<40)
        #expect(d.completionRequested)
    }

    @Test func theReceiverRulesRejectBadDescriptors() {
        let bad: [PacketDescriptor] = [
            PacketDescriptor(type: .synch, offset8: 2, len8: 2, flags: 0, transactionID: 0),
            PacketDescriptor(type: VMBusPacketType(rawValue: 99), offset8: 2, len8: 2, flags: 0, transactionID: 0),
            PacketDescriptor(type: .dataInband, offset8: 1, len8: 2, flags: 0, transactionID: 0),
            PacketDescriptor(type: .dataInband, offset8: 3, len8: 2, flags: 0, transactionID: 0),
            PacketDescriptor(type: .completion, offset8: 2, len8: 2, flags: 2, transactionID: 0),
        ]
        for d in bad { #expect(throws: WireError.self) { try d.validate() } }
        #expect(PacketDescriptor(type: .dataInband, offset8: 3, len8: 2, flags: 0, transactionID: 0).payloadRange.isEmpty)
    }

    @Test func packetTypeValuesMatchLinux() {
        let pairs: [(VMBusPacketType, String)] = [
            (.invalid, "VM_PKT_INVALID"), (.synch, "VM_PKT_SYNCH"), (.addXferPageset, "VM_PKT_ADD_XFER_PAGESET"),
            (.rmXferPageset, "VM_PKT_RM_XFER_PAGESET"), (.establishGPADL, "VM_PKT_ESTABLISH_GPADL"),
            (.teardownGPADL, "VM_PKT_TEARDOWN_GPADL"), (.dataInband, "VM_PKT_DATA_INBAND"),
            (.dataUsingXferPages, "VM_PKT_DATA_USING_XFER_PAGES"), (.dataUsingGPADL, "VM_PKT_DATA_USING_GPADL"),
            (.dataUsingGPADirect, "VM_PKT_DATA_USING_GPA_DIRECT"), (.cancelRequest, "VM_PKT_CANCEL_REQUEST"),
            (.completion, "VM_PKT_COMP"), (.dataUsingAdditionalPkt, "VM_PKT_DATA_USING_ADDITIONAL_PKT"),
            (.additionalData, "VM_PKT_ADDITIONAL_DATA"),
        ]
        for (type, name) in pairs { #expect(LinuxConstants.enumValues[name] == Int64(type.rawValue), "\(name)") }
        #expect(LinuxConstants.values["VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED"] == UInt64(PacketDescriptor.flagCompletionRequested))
    }
}

@Suite struct GPADirectPacketHeaderTests {
    let ranges = [GPARange(byteCount: 6000, byteOffset: 200, pfns: [0x100, 0x101]), GPARange(wholePages: [0x200])]

    @Test func aBuiltPacketDecodesBackAndPointsAtItsPayload() throws {
        let header = GPADirectPacketHeader(transactionID: 42, ranges: ranges, payloadLength: 13)
        #expect(header.descriptor.payloadOffset == 24 + 24 + 16)
        #expect(header.descriptor.totalLength == 64 + 16)
        let bytes = packet(header, descriptor: header.descriptor, payload: patternBytes(13, from: 1))
        var r = WireReader(bytes)
        #expect(try GPADirectPacketHeader(from: &r) == header)
        #expect(r.index == header.descriptor.payloadOffset)
        #expect(try GPADirectPacketHeader.decode(packet: bytes) == header)
        #expect(GPADirectPacketHeader.headerLength(ranges: ranges) == 64)
    }

    @Test func anOffsetThatLeavesNoRoomForTheRangeCountIsRefused() {
        // OpenVMM's test_malformed_gpa_direct_packet: offset8 2, len8 3, rangecount 1.
        var w = WireWriter()
        PacketDescriptor(type: .dataUsingGPADirect, offset8: 2, len8: 3, flags: 0, transactionID: 0).encode(into: &w)
        w.writeUInt32(0)
        w.writeUInt32(1)
        w.writeZeros(64)
        #expect(throws: WireError.invalidValue(field: "vmpacket_descriptor.offset8", value: 2)) {
            try GPADirectPacketHeader.decode(packet: w.bytes)
        }
    }

    @Test func aZeroRangeCountIsRefused() {
        let d = PacketDescriptor(type: .dataUsingGPADirect, offset8: 3, len8: 3, flags: 1, transactionID: 0)
        let bytes = packet(GPADirectPacketHeader(descriptor: d, ranges: []), descriptor: d, payload: [])
        #expect(throws: WireError.invalidValue(field: "vmbus_packet_mpb_array.rangecount", value: 0)) {
            try GPADirectPacketHeader.decode(packet: bytes)
        }
    }

    @Test func aHugeRangeCountIsRefusedBeforeAllocating() {
        let header = GPADirectPacketHeader(transactionID: 1, ranges: ranges, payloadLength: 8)
        var bytes = packet(header, descriptor: header.descriptor, payload: [1, 2, 3, 4, 5, 6, 7, 8])
        bytes.replaceSubrange(20..<24, with: le(UInt32.max))
        #expect(throws: WireError.countTooLarge(field: "vmbus_packet_mpb_array.rangecount", count: Int(UInt32.max), limit: 2)) {
            try GPADirectPacketHeader.decode(packet: bytes)
        }
    }

    @Test func rangesThatRunIntoThePayloadAreRefused() {
        // offset8 claims only the first range fits before the payload; the packet says two.
        let header = GPADirectPacketHeader(transactionID: 1, ranges: ranges, payloadLength: 8)
        var d = header.descriptor
        d.offset8 = UInt16((24 + 24) / 8)
        let bytes = packet(GPADirectPacketHeader(descriptor: d, ranges: ranges), descriptor: header.descriptor, payload: [])
        #expect(throws: WireError.self) { try GPADirectPacketHeader.decode(packet: bytes) }
    }

    @Test func aPFNCountBeyondThePacketIsRefused() {
        let lying = [GPARange(byteCount: 100 * 4096, byteOffset: 0, pfns: [1])]
        let header = GPADirectPacketHeader(transactionID: 1, ranges: lying, payloadLength: 0)
        let bytes = packet(header, descriptor: header.descriptor, payload: [])
        #expect(throws: WireError.countTooLarge(field: "gpa_range.pfn_array", count: 100, limit: 1)) {
            try GPADirectPacketHeader.decode(packet: bytes)
        }
    }

    @Test func aPacketShorterThanLen8IsRefused() {
        let header = GPADirectPacketHeader(transactionID: 1, ranges: ranges, payloadLength: 32)
        let bytes = packet(header, descriptor: header.descriptor, payload: patternBytes(32, from: 0))
        let cut = Array(bytes.prefix(header.descriptor.totalLength - 8))
        #expect(throws: WireError.truncated(offset: 0, needed: header.descriptor.totalLength, available: cut.count)) {
            try GPADirectPacketHeader.decode(packet: cut)
        }
        for length in 0..<header.descriptor.totalLength {
            #expect(throws: WireError.self) { try GPADirectPacketHeader.decode(packet: Array(bytes.prefix(length))) }
        }
    }

    @Test func anotherPacketTypeOrBadFlagsAreRefused() {
        let header = GPADirectPacketHeader(transactionID: 1, ranges: ranges, payloadLength: 0, flags: 0)
        var bytes = packet(header, descriptor: header.descriptor, payload: [])
        #expect(throws: Never.self) { try GPADirectPacketHeader.decode(packet: bytes) }
        bytes[0] = UInt8(VMBusPacketType.dataInband.rawValue)
        #expect(throws: WireError.invalidValue(field: "vmpacket_descriptor.type", value: 6)) { try GPADirectPacketHeader.decode(packet: bytes) }
        bytes[0] = UInt8(VMBusPacketType.dataUsingGPADirect.rawValue)
        bytes[6] = 0x80
        #expect(throws: WireError.self) { try GPADirectPacketHeader.decode(packet: bytes) }
    }

    @Test func garbageInTheReservedWordIsTolerated() throws {
        let header = GPADirectPacketHeader(transactionID: 1, ranges: ranges, payloadLength: 0)
        var bytes = packet(header, descriptor: header.descriptor, payload: [])
        bytes.replaceSubrange(16..<20, with: [0xDE, 0xAD, 0xBE, 0xEF])
        #expect(try GPADirectPacketHeader.decode(packet: bytes) == header)
    }
}

@Suite struct TransferPagePacketHeaderTests {
    let ranges = [TransferPageRange(byteCount: 1514, byteOffset: 0), TransferPageRange(byteCount: 60, byteOffset: 6144)]

    @Test func aBuiltPacketDecodesBackAndPointsAtItsPayload() throws {
        let header = TransferPagePacketHeader(transactionID: 7, xferPageSetID: 0xCAFE, ranges: ranges, payloadLength: 40)
        #expect(header.descriptor.offset8 == 5)
        #expect(TransferPagePacketHeader.headerLength(rangeCount: 2) == 40)
        let bytes = packet(header, descriptor: header.descriptor, payload: patternBytes(40, from: 3))
        var r = WireReader(bytes)
        #expect(try TransferPagePacketHeader(from: &r) == header)
        #expect(r.index == 40)
        #expect(try TransferPagePacketHeader.decode(packet: bytes) == header)
    }

    @Test func anOffsetThatLeavesNoRoomForTheFixedHeaderIsRefused() {
        // OpenVMM's test_malformed_transfer_page_packet: offset8 2, len8 3.
        var w = WireWriter()
        PacketDescriptor(type: .dataUsingXferPages, offset8: 2, len8: 3, flags: 0, transactionID: 0).encode(into: &w)
        w.writeUInt16(1)
        w.writeUInt16(0)
        w.writeUInt32(1)
        w.writeZeros(64)
        #expect(throws: WireError.invalidValue(field: "vmpacket_descriptor.offset8", value: 2)) {
            try TransferPagePacketHeader.decode(packet: w.bytes)
        }
    }

    @Test func aRangeCountBeyondTheHeaderAreaIsRefusedBeforeAllocating() {
        let header = TransferPagePacketHeader(transactionID: 7, xferPageSetID: 0xCAFE, ranges: ranges, payloadLength: 8)
        var bytes = packet(header, descriptor: header.descriptor, payload: patternBytes(8, from: 0))
        bytes.replaceSubrange(20..<24, with: le(UInt32(3)))
        #expect(throws: WireError.countTooLarge(field: "vmtransfer_page_packet_header.range_cnt", count: 3, limit: 2)) {
            try TransferPagePacketHeader.decode(packet: bytes)
        }
        bytes.replaceSubrange(20..<24, with: le(UInt32.max))
        #expect(throws: WireError.self) { try TransferPagePacketHeader.decode(packet: bytes) }
    }

    @Test func everyTruncatedPacketIsRefused() {
        let header = TransferPagePacketHeader(transactionID: 7, xferPageSetID: 0xCAFE, ranges: ranges, payloadLength: 8)
        let bytes = packet(header, descriptor: header.descriptor, payload: patternBytes(8, from: 0))
        for length in 0..<header.descriptor.totalLength {
            #expect(throws: WireError.self) { try TransferPagePacketHeader.decode(packet: Array(bytes.prefix(length))) }
        }
    }

    @Test func fewerRangesThanRoomAndReservedGarbageAreTolerated() throws {
        var header = TransferPagePacketHeader(transactionID: 7, xferPageSetID: 0xCAFE, ranges: ranges, payloadLength: 8)
        header.ranges.removeLast()  // the descriptor still leaves room for two
        var bytes = packet(header, descriptor: header.descriptor, payload: patternBytes(8, from: 0))
        bytes[19] = 0x5A
        var r = WireReader(bytes)
        #expect(try TransferPagePacketHeader(from: &r) == header)
        #expect(r.index == header.descriptor.payloadOffset)
    }
}
