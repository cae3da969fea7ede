import Testing
import VMBusLayoutTesting
import VMBusNetProtocol
import VMBusWire

/// The data-path decoder of PACKET messages and its PPI walker.
@Suite struct RNDISPacketViewTests {
    static let frame: [UInt8] = (0..<1514).map { UInt8(truncatingIfNeeded: $0 * 7) }

    static func allInfo() -> RNDISPacketInfo {
        var csum = NDISTCPIPChecksumInfo()
        csum.isIPv4 = true; csum.tcpChecksum = true; csum.tcpHeaderOffset = 34
        return RNDISPacketInfo(checksum: csum, largeSend: .v2Transmit(mss: 1460, tcpHeaderOffset: 34, ipv6: false),
                               vlan: .init(priority: 3, vlanID: 100), hashValue: 0xCAFE_F00D,
                               hashInfo: [.toeplitz, .tcpIPv4],
                               packetID: .init(flags: RNDISPacketInfoID.flagFirstFragment, packetID: 77))
    }

    static func message(_ info: RNDISPacketInfo, frame: [UInt8] = RNDISPacketViewTests.frame) -> [UInt8] {
        var w = WireWriter()
        RNDISPacket.encodeMessage(into: &w, info: info, frame: frame)
        return w.bytes
    }

    @Test func everyPPIKindRoundTripsAndTheFrameIsNotCopied() throws {
        let bytes = Self.message(Self.allInfo())
        let v = try RNDISPacketView(wireBytes: bytes)
        #expect(v.info == Self.allInfo())
        #expect(v.otherPerPacketInfoCount == 0)
        #expect(v.messageLength == bytes.count)
        #expect(v.dataIndex == 8 + 36 + 6 * 16)
        #expect(v.dataLength == Self.frame.count)
        #expect(v.data.elementsEqual(Self.frame))
        #expect(v.perPacketInfoIndex == 44 && v.perPacketInfoLength == 96)
        var kinds: [(PerPacketInfoType, Bool)] = []
        v.forEachPerPacketInfo { kinds.append(($0.type, $0.isInternal)) }
        #expect(kinds.map(\.0) == [.nblHashValue, .ieee8021Q, .tcpLargeSend, .tcpIPChecksum, .nblHashInfo,
                                   .rndisPacketInfoID])
        #expect(kinds.map(\.1) == [false, false, false, false, false, true])
    }

    @Test func linuxTransmitLayoutIsExactBytes() {
        // One VLAN PPI and a 4-byte frame, as Linux lays it out.
        let bytes = Self.message(RNDISPacketInfo(vlan: .init(priority: 0, vlanID: 5)), frame: [0xA, 0xB, 0xC, 0xD])
        var expected: [UInt8] = []
        for v: UInt32 in [1, 8 + 36 + 16 + 4, 36 + 16, 4, 0, 0, 0, 36, 16, 0, 0, 16, 6, 12, 0x50] { expected += le(v) }
        expected += [0xA, 0xB, 0xC, 0xD]
        expectBytes(bytes, expected)
    }

    @Test func batchedPacketsInOneSectionDecodeOneAfterAnother() throws {
        var w = WireWriter()
        for i in 0..<5 {
            RNDISPacket.encodeMessage(into: &w, info: RNDISPacketInfo(hashValue: UInt32(i)), frame: [UInt8](repeating: UInt8(i), count: 60 + i))
        }
        var r = WireReader(w.bytes)
        for i in 0..<5 {
            let v = try RNDISPacketView(from: &r)
            #expect(v.info.hashValue == UInt32(i))
            #expect(v.data.count == 60 + i && v.data.allSatisfy { $0 == UInt8(i) })
        }
        #expect(r.remaining == 0)
    }

    @Test func unknownAndRepeatedPPIsAreCountedAndSkipped() throws {
        var w = WireWriter()
        var ppis = WireWriter()
        PerPacketInfoHeader(type: .classificationHandle, dataLength: 8).encode(into: &ppis)
        ppis.writeUInt64(0x1111)
        PerPacketInfoHeader(type: .nblHashValue, dataLength: 4).encode(into: &ppis)
        ppis.writeUInt32(1)
        PerPacketInfoHeader(type: .nblHashValue, dataLength: 4).encode(into: &ppis)
        ppis.writeUInt32(2)
        // An internal type that is not RNDIS_PKTINFO_ID, and IPSEC (1, not internal).
        PerPacketInfoHeader(type: .init(rawValue: 5), isInternal: true, dataLength: 4).encode(into: &ppis)
        ppis.writeUInt32(3)
        PerPacketInfoHeader(type: .ipsec, dataLength: 4).encode(into: &ppis)
        ppis.writeUInt32(4)
        w.writeUInt32(1); w.writeUInt32(UInt32(8 + 36 + ppis.count + 2))
        RNDISPacket(perPacketInfoLength: ppis.count, frameLength: 2).encode(into: &w)
        w.writeBytes(ppis.bytes)
        w.writeBytes([0xAB, 0xCD])
        let v = try RNDISPacketView(wireBytes: w.bytes)
        #expect(v.info.hashValue == 1)  // the first one wins
        #expect(v.info.packetID == nil)
        #expect(v.otherPerPacketInfoCount == 4)
        #expect(Array(v.data) == [0xAB, 0xCD])
    }

    @Test func aPPIWithAPaddedDataOffsetIsRead() throws {
        // ppi_offset 16: four pad bytes between head and data.
        var ppis = WireWriter()
        PerPacketInfoHeader(size: 20, type: .ieee8021Q, ppiOffset: 16).encode(into: &ppis)
        ppis.writeUInt32(0xFFFF_FFFF)
        ppis.writeUInt32(NDISPacket8021QInfo(priority: 7, vlanID: 4095).value)
        let v = try RNDISPacketView(wireBytes: Self.raw(ppis: ppis.bytes, frame: [1]))
        #expect(v.info.vlan == NDISPacket8021QInfo(priority: 7, vlanID: 4095))
    }

    // MARK: Hostile input

    /// A PACKET message with the given PPI area bytes and frame, offsets as Linux puts them unless overridden.
    static func raw(ppis: [UInt8], frame: [UInt8], dataOffset: UInt32? = nil, dataLength: UInt32? = nil,
                    ppiOffset: UInt32? = nil, ppiLength: UInt32? = nil, oobOffset: UInt32 = 0, oobLength: UInt32 = 0,
                    msgLen: UInt32? = nil) -> [UInt8] {
        var w = WireWriter()
        w.writeUInt32(1)
        w.writeUInt32(msgLen ?? UInt32(8 + 36 + ppis.count + frame.count))
        RNDISPacket(dataOffset: dataOffset ?? UInt32(36 + ppis.count), dataLength: dataLength ?? UInt32(frame.count),
                    oobDataOffset: oobOffset, oobDataLength: oobLength,
                    perPacketInfoOffset: ppiOffset ?? 36, perPacketInfoLength: ppiLength ?? UInt32(ppis.count))
            .encode(into: &w)
        w.writeBytes(ppis)
        w.writeBytes(frame)
        return w.bytes
    }

    static let oneVLAN: [UInt8] = {
        var w = WireWriter()
        PerPacketInfoHeader(type: .ieee8021Q, dataLength: 4).encode(into: &w)
        w.writeUInt32(0x50)
        return w.bytes
    }()

    @Test func everyTruncatedPrefixThrows() {
        let bytes = Self.message(Self.allInfo(), frame: [1, 2, 3])
        for n in 0..<bytes.count {
            #expect(throws: WireError.self, "prefix \(n)") { try RNDISPacketView(wireBytes: Array(bytes[0..<n])) }
        }
    }

    @Test func frameOutsideTheMessageThrows() {
        let f: [UInt8] = [1, 2, 3, 4]
        #expect(throws: WireError.self) { try RNDISPacketView(wireBytes: Self.raw(ppis: [], frame: f, dataLength: 5)) }
        #expect(throws: WireError.self) { try RNDISPacketView(wireBytes: Self.raw(ppis: [], frame: f, dataOffset: 37)) }
        #expect(throws: WireError.self) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: [], frame: f, dataOffset: 0xFFFF_FFFF, dataLength: 2))
        }
        #expect(throws: WireError.self) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: [], frame: f, dataLength: 0xFFFF_FFFF))
        }
        // Data over the packet body's own fields.
        #expect(throws: WireError.invalidValue(field: "data_offset", value: 0)) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: [], frame: f, dataOffset: 0))
        }
        // OOB area outside the message.
        #expect(throws: WireError.self) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: [], frame: f, oobOffset: 36, oobLength: 100))
        }
        // msg_len beyond the bytes, and below the fixed part.
        #expect(throws: WireError.self) { try RNDISPacketView(wireBytes: Self.raw(ppis: [], frame: f, msgLen: 100)) }
        #expect(throws: WireError.invalidValue(field: "msg_len", value: 20)) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: [], frame: f, msgLen: 20))
        }
        // Not a PACKET at all.
        var notPacket = Self.raw(ppis: [], frame: f)
        notPacket[0] = 2
        #expect(throws: WireError.invalidValue(field: "ndis_msg_type", value: 2)) {
            try RNDISPacketView(wireBytes: notPacket)
        }
    }

    @Test func ppiAreaOutsideTheMessageThrows() {
        let f: [UInt8] = [1, 2]
        // The area claims more bytes than the message has, starts past its end, or wraps.
        #expect(throws: WireError.self) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: Self.oneVLAN, frame: f, ppiLength: 100))
        }
        #expect(throws: WireError.self) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: Self.oneVLAN, frame: f, ppiOffset: 1000))
        }
        #expect(throws: WireError.self) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: Self.oneVLAN, frame: f, ppiOffset: 0xFFFF_FFF8, ppiLength: 16))
        }
        #expect(throws: WireError.invalidValue(field: "per_pkt_info_offset", value: 8)) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: Self.oneVLAN, frame: f, ppiOffset: 8))
        }
    }

    @Test func ppisOverflowingTheirAreaThrow() {
        let f: [UInt8] = [1, 2]
        func vlan(size: UInt32, offset: UInt32 = 12) -> [UInt8] {
            var w = WireWriter()
            PerPacketInfoHeader(size: size, type: .ieee8021Q, ppiOffset: offset).encode(into: &w)
            w.writeUInt32(0x50)
            return w.bytes
        }
        // size past the area (the area is 16 bytes).
        #expect(throws: WireError.countTooLarge(field: "rndis_per_packet_info.size", count: 17, limit: 16)) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: vlan(size: 17), frame: f))
        }
        #expect(throws: WireError.self) { try RNDISPacketView(wireBytes: Self.raw(ppis: vlan(size: 0xFFFF_FFFF), frame: f)) }
        // size 0 (Linux would loop) and sizes below the head.
        #expect(throws: WireError.invalidValue(field: "rndis_per_packet_info.size", value: 0)) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: vlan(size: 0), frame: f))
        }
        #expect(throws: WireError.self) { try RNDISPacketView(wireBytes: Self.raw(ppis: vlan(size: 11), frame: f)) }
        // ppi_offset past the PPI, or into its head.
        #expect(throws: WireError.invalidValue(field: "rndis_per_packet_info.ppi_offset", value: 17)) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: vlan(size: 16, offset: 17), frame: f))
        }
        #expect(throws: WireError.self) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: vlan(size: 16, offset: 0xFFFF_FFFF), frame: f))
        }
        #expect(throws: WireError.invalidValue(field: "rndis_per_packet_info.ppi_offset", value: 4)) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: vlan(size: 16, offset: 4), frame: f))
        }
        // A known kind with less data than its u32.
        #expect(throws: WireError.invalidValue(field: "rndis_per_packet_info.size", value: 2)) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: vlan(size: 16, offset: 14), frame: f))
        }
        // A second PPI whose head is cut by the end of the area.
        #expect(throws: WireError.self) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: Self.oneVLAN + [1, 2, 3, 4, 5, 6], frame: f))
        }
        // An area that ends inside the first PPI while the message goes on.
        #expect(throws: WireError.self) {
            try RNDISPacketView(wireBytes: Self.raw(ppis: Self.oneVLAN, frame: f, dataOffset: 36 + 16, ppiLength: 10))
        }
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix(seed: 23)
        let base = Self.message(Self.allInfo(), frame: [1, 2, 3, 4, 5, 6, 7, 8])
        for _ in 0..<30_000 {
            var bytes = base
            // Flip a few bytes, biased to the offsets and PPI heads.
            for _ in 0..<Int(1 + rng.next() % 4) {
                let i = Int(rng.next() % UInt64(rng.next() % 2 == 0 ? min(bytes.count, 140) : bytes.count))
                bytes[i] = UInt8(truncatingIfNeeded: rng.next())
            }
            if rng.next() % 4 == 0 { bytes.removeLast(Int(rng.next() % UInt64(bytes.count))) }
            _ = try? RNDISPacketView(wireBytes: bytes)
        }
    }
}
