import Testing
import VMBusLayoutTesting
import VMBusNetProtocol
import VMBusWire

/// Round trips of the OID structures and the checks of their peer-supplied sizes and offsets.
@Suite struct NDISStructureTests {
    @Test func offloadRoundTripsAtEveryRevision() throws {
        let full = NDISGoldenLayoutTests.sampleOffload()
        #expect(try NDISOffload(wireBytes: full.wireBytes) == full)
        for (revision, size) in [(UInt8(1), 112), (2, 144), (3, 156)] {
            var o = full
            o.header = NDISOffload.header(revision: revision)
            let bytes = o.wireBytes
            #expect(bytes.count == size)
            let back = try NDISOffload(wireBytes: bytes)
            #expect(back.lsoV2 == full.lsoV2 && back.flags == full.flags && back.checksum == full.checksum)
            // What the revision does not carry reads as zero.
            if size < 156 { #expect(back.rsc == NDISRSCOffload() && back.encapsulationGRE == NDISEncapsulationOffload()) }
            if size < 144 { #expect(back.ipsecV2 == NDISIPsecV2Offload()) }
        }
    }

    @Test func offloadWithABadHeaderThrows() {
        var o = NDISOffload()
        o.header.type = 0x80
        #expect(throws: WireError.invalidValue(field: "header.type", value: 0x80)) { try NDISOffload(wireBytes: o.wireBytes) }
        var short = NDISOffload()
        short.header.size = 100
        #expect(throws: WireError.invalidValue(field: "header.size", value: 100)) {
            try NDISOffload(wireBytes: short.wireBytes)
        }
        // header.size larger than the buffer.
        var big = NDISOffload()
        big.header.size = 156
        #expect(throws: WireError.self) { try NDISOffload(wireBytes: Array(big.wireBytes[0..<144])) }
        for n in 0..<4 { #expect(throws: WireError.self) { try NDISOffload(wireBytes: Array(big.wireBytes[0..<n])) } }
    }

    @Test func offloadParamsRoundTripInBothSizes() throws {
        var p = NDISOffloadParams()
        p.tcpIPv4Checksum = NDISOffloadParams.txRXEnabled
        p.lsoV2IPv4 = NDISOffloadParams.lsoV2Enabled
        p.rscIPv4 = NDISOffloadParams.rscEnabled
        #expect(try NDISOffloadParams(wireBytes: p.wireBytes) == p)
        var legacy = p
        legacy.header = NDISOffloadParams.header(legacy: true)
        #expect(legacy.wireBytes.count == 22)
        let back = try NDISOffloadParams(wireBytes: legacy.wireBytes)
        #expect(back.tcpIPv4Checksum == NDISOffloadParams.txRXEnabled && back.rscIPv4 == 0)
        var wrong = p
        wrong.header.type = 0xA7
        #expect(throws: WireError.self) { try NDISOffloadParams(wireBytes: wrong.wireBytes) }
        #expect(throws: WireError.self) { try NDISOffloadParams(wireBytes: Array(p.wireBytes[0..<20])) }
    }

    @Test func receiveScaleCapabilitiesRoundTrip() throws {
        let c = NDISReceiveScaleCapabilities(capabilityFlags: NDISReceiveScaleCapabilities.capsHashTypeTCPIPv4,
                                             interruptMessageCount: 1, receiveQueueCount: 8,
                                             indirectionTableEntryCount: 128)
        #expect(try NDISReceiveScaleCapabilities(wireBytes: c.wireBytes) == c)
        for n in 0..<18 {
            #expect(throws: WireError.self) { try NDISReceiveScaleCapabilities(wireBytes: Array(c.wireBytes[0..<n])) }
        }
    }

    @Test func receiveScaleParametersRoundTripLikeLinuxSendsThem() throws {
        let table = (0..<128).map { UInt32($0 % 4) }
        let disable = NDISReceiveScaleParameters(flags: NDISReceiveScaleParameters.flagDisableRSS, indirectionTable: table)
        let enable = NDISReceiveScaleParameters(indirectionTable: table)
        for p in [disable, enable] {
            let bytes = p.wireBytes
            #expect(bytes.count == 40 + 512 + 40)
            let back = try NDISReceiveScaleParameters(wireBytes: bytes)
            #expect(back.flags == p.flags && back.hashInfo == .linuxRSS)
            #expect(back.indirectionTable.count == 128 && back.indirectionTable.elementsEqual(table))
            #expect(back.hashKey.elementsEqual(NDISReceiveScaleParameters.linuxHashKey))
        }
        // Inside a SET message, as it travels.
        let set = RNDISMessage.setRequest(.init(requestID: 3, oid: .genReceiveScaleParameters, infoBuffer: enable.wireBytes))
        guard case .setRequest(let s) = try RNDISMessage(wireBytes: set.wireBytes) else {
            Issue.record("not a SET")
            return
        }
        #expect(try NDISReceiveScaleParameters(wireBytes: s.infoBuffer) == enable)
    }

    /// Fixed fields of an RSS parameter block with chosen table and key fields, then `extra` bytes.
    static func rss(tableSize: UInt16, tableOffset: UInt32, keySize: UInt16 = 0, keyOffset: UInt32 = 0,
                    type: UInt8 = 0x89, extra: Int = 64) -> [UInt8] {
        var w = WireWriter()
        NDISObjectHeader(type: type, revision: 2, size: 40).encode(into: &w)
        w.writeUInt16(0); w.writeUInt16(0); w.writeUInt32(NDISHashInfo.linuxRSS.rawValue)
        w.writeUInt16(tableSize); w.writeUInt16(0); w.writeUInt32(tableOffset)
        w.writeUInt16(keySize); w.writeUInt16(0); w.writeUInt32(keyOffset)
        w.writeUInt32(0); w.writeUInt32(0); w.writeUInt32(0)
        w.writeZeros(extra)
        return w.bytes
    }

    @Test func receiveScaleParametersWithHostileOffsetsThrow() throws {
        // The table: past the end, partly past the end, wrapping, over the fixed fields, not whole u32s, too big.
        #expect(throws: WireError.self) { try NDISReceiveScaleParameters(wireBytes: Self.rss(tableSize: 64, tableOffset: 200)) }
        #expect(throws: WireError.self) { try NDISReceiveScaleParameters(wireBytes: Self.rss(tableSize: 64, tableOffset: 41)) }
        #expect(throws: WireError.self) {
            try NDISReceiveScaleParameters(wireBytes: Self.rss(tableSize: 64, tableOffset: 0xFFFF_FFF0))
        }
        #expect(throws: WireError.invalidValue(field: "indirect_taboffset", value: 8)) {
            try NDISReceiveScaleParameters(wireBytes: Self.rss(tableSize: 16, tableOffset: 8))
        }
        #expect(throws: WireError.invalidValue(field: "indirect_tabsize", value: 6)) {
            try NDISReceiveScaleParameters(wireBytes: Self.rss(tableSize: 6, tableOffset: 40))
        }
        #expect(throws: WireError.countTooLarge(field: "indirect_tabsize", count: 16383, limit: 256)) {
            try NDISReceiveScaleParameters(wireBytes: Self.rss(tableSize: 0xFFFC, tableOffset: 40))
        }
        // The key: too long, outside, over the fixed fields.
        #expect(throws: WireError.countTooLarge(field: "hashkey_size", count: 41, limit: 40)) {
            try NDISReceiveScaleParameters(wireBytes: Self.rss(tableSize: 0, tableOffset: 0, keySize: 41, keyOffset: 40))
        }
        #expect(throws: WireError.self) {
            try NDISReceiveScaleParameters(wireBytes: Self.rss(tableSize: 0, tableOffset: 0, keySize: 40, keyOffset: 80))
        }
        #expect(throws: WireError.invalidValue(field: "hashkey_offset", value: 0)) {
            try NDISReceiveScaleParameters(wireBytes: Self.rss(tableSize: 0, tableOffset: 0, keySize: 40, keyOffset: 0))
        }
        // Wrong object type, and truncated fixed fields.
        #expect(throws: WireError.invalidValue(field: "hdr.type", value: 0x88)) {
            try NDISReceiveScaleParameters(wireBytes: Self.rss(tableSize: 0, tableOffset: 0, type: 0x88))
        }
        let good = Self.rss(tableSize: 64, tableOffset: 40, keySize: 0, keyOffset: 0, extra: 64)
        for n in 0..<40 {
            #expect(throws: WireError.self) { try NDISReceiveScaleParameters(wireBytes: Array(good[0..<n])) }
        }
        // A table of size 0 decodes (empty); refusing it is NetVSP's call.
        #expect(try NDISReceiveScaleParameters(wireBytes: Self.rss(tableSize: 0, tableOffset: 0xFFFF_FFFF))
            .indirectionTable.isEmpty)
        #expect(try NDISReceiveScaleParameters(wireBytes: good).indirectionTable.count == 16)
    }

    @Test func configParameterRoundTripsAndRejectsBadOffsets() throws {
        let p = RNDISConfigParameterInfo.networkAddress([0x00, 0x15, 0x5D, 0x01, 0x02, 0x03])
        #expect(try RNDISConfigParameterInfo(wireBytes: p.wireBytes) == p)
        var bytes = p.wireBytes
        bytes[12] = 0xF0  // value offset far outside
        #expect(throws: WireError.self) { try RNDISConfigParameterInfo(wireBytes: bytes) }
        bytes = p.wireBytes
        bytes[0] = 4  // name over the fixed fields
        #expect(throws: WireError.invalidValue(field: "parameter_name_offset", value: 4)) {
            try RNDISConfigParameterInfo(wireBytes: bytes)
        }
    }

    @Test func ppiPayloadAccessorsStayInTheirBits() {
        var c = NDISTCPIPChecksumInfo()
        c.tcpHeaderOffset = 0xFFFF  // wider than 10 bits: truncated, neighbours untouched
        #expect(c.value == 0x03FF_0000)
        var v = NDISPacket8021QInfo(priority: 0xFF, vlanID: 0xFFFF)
        #expect(v.priority == 7 && v.vlanID == 0xFFF && !v.cfi)
        v.cfi = true
        #expect(v.value == 0xFFFF)
        let l = NDISTCPLSOInfo.v2Transmit(mss: 0xFFFFFF, tcpHeaderOffset: 0xFFFF, ipv6: false)
        #expect(l.mss == 0xFFFFF && l.tcpHeaderOffset == 0x3FF && l.type == 1 && l.ipVersion == 0)
    }
}
