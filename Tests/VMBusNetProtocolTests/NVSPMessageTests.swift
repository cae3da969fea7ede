import Testing
import VMBusNetProtocol
import VMBusWire

/// NVSP encode/decode: every message round-trips, a few against hand-computed bytes, and hostile input throws.
@Suite struct NVSPMessageTests {
    /// One of every message, with the direction it travels in.
    static let samples: [(NVSPMessage, NVSPDirection)] = [
        (.`init`(.init(version: .v61)), .guestToHost),
        (.initComplete(.init(negotiatedProtocolVersion: .v61, maxMDLChainLength: 34, status: .success)), .hostToGuest),
        (.sendNDISVersion(.ndis6_30), .guestToHost),
        (.sendReceiveBuffer(.init(gpadlHandle: 0x1234)), .guestToHost),
        (.sendReceiveBufferComplete(.init(status: .success, sections: [
            .init(offset: 0, subAllocationSize: 1728, subAllocationCount: 9709, endOffset: 1728 * 9709)])), .hostToGuest),
        (.sendReceiveBufferComplete(.init(status: .success, sections: [
            .init(offset: 0, subAllocationSize: 1, subAllocationCount: 2, endOffset: 3),
            .init(offset: 4, subAllocationSize: 5, subAllocationCount: 6, endOffset: 7),
            .init(offset: 8, subAllocationSize: 9, subAllocationCount: 10, endOffset: 11)])), .hostToGuest),
        (.sendReceiveBufferComplete(.init(status: .fail, sections: [])), .hostToGuest),
        (.revokeReceiveBuffer(.init()), .guestToHost),
        (.sendSendBuffer(.init(gpadlHandle: 0x5678)), .guestToHost),
        (.sendSendBufferComplete(.init(status: .success, sectionSize: 6144)), .hostToGuest),
        (.revokeSendBuffer(.init()), .guestToHost),
        (.sendRNDISPacket(.init(channelType: .data, sendBufferSectionIndex: 7, sendBufferSectionSize: 1514)), .guestToHost),
        (.sendRNDISPacket(.init(channelType: .control)), .hostToGuest),
        (.sendRNDISPacketComplete(.init(status: .success)), .guestToHost),
        (.sendNDISConfig(.init(mtu: 1514, capability: [.ieee8021q, .sriov, .teaming, .rsc])), .guestToHost),
        (.allocateReceiveBuffer(.init(allocationID: 1, length: 2)), .guestToHost),
        (.allocateReceiveBufferComplete(.init(status: .success, allocationID: 1, gpadlHandle: 2, receiveBufferID: 3)),
         .hostToGuest),
        (.freeReceiveBuffer(.init(receiveBufferID: 3)), .guestToHost),
        (.sendVFAssociation(.init(allocated: 1, serial: 0xABCD)), .hostToGuest),
        (.switchDataPath(.init(activeDataPath: .vf)), .guestToHost),
        (.switchDataPath(.init(activeDataPath: .synthetic)), .hostToGuest),
        (.subchannelRequest(.init(subchannelCount: 7)), .guestToHost),
        (.subchannelComplete(.init(status: .success, subchannelCount: 3)), .hostToGuest),
        (.sendIndirectionTable(.init(entries: (0..<16).map { UInt32($0 % 4) })), .hostToGuest),
        (.pdAPIRequest(.init(operation: .config)), .guestToHost),
        (.pdAPIComplete(.init(operation: .config, status: .success)), .hostToGuest),
        (.other(type: .sendChimneyPacket, body: [1, 2, 3, 4, 5, 6, 7, 8]), .guestToHost),
        (.other(type: .oidQueryEx, body: [0xAA, 0xBB, 0xCC, 0xDD]), .guestToHost),
        (.other(type: .uplinkConnectStateDeprecated, body: []), .hostToGuest),
        (.other(type: .pdPostBatch, body: [9, 9]), .hostToGuest),
    ]

    @Test func everyMessageRoundTripsPaddedAndBare() throws {
        for (m, direction) in Self.samples {
            let padded = m.wireBytes
            #expect(padded.count >= NVSPMessage.wireSize, "\(m.type)")
            let back = try NVSPMessage(wireBytes: padded, direction: direction, version: .v61)
            switch (m, back) {
            case (.other(let t, let body), .other(let t2, let body2)):
                // The decoder keeps whatever follows the type, padding included.
                #expect(t == t2)
                #expect(Array(body2.prefix(body.count)) == body)
            default:
                #expect(back == m, "\(m.type)")
            }
            var w = WireWriter()
            m.encode(into: &w, minimumSize: 0)
            #expect(try NVSPMessage(wireBytes: w.bytes, direction: direction) == m, "\(m.type) bare")
        }
    }

    @Test func initIsTheBytesLinuxSends() {
        // msg_type 1, min = max = 0x00060001, then zeros to 40.
        var expected: [UInt8] = [1, 0, 0, 0, 0x01, 0, 0x06, 0, 0x01, 0, 0x06, 0]
        expected += [UInt8](repeating: 0, count: 28)
        expectBytes(NVSPMessage.`init`(.init(version: .v61)).wireBytes, expected)
    }

    @Test func sendRNDISPacketAndItsShortCompletionAreExactBytes() {
        let m = NVSPMessage.sendRNDISPacket(.init(channelType: .control))
        var expected: [UInt8] = [107, 0, 0, 0, 1, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0xFF, 0, 0, 0, 0]
        expected += [UInt8](repeating: 0, count: 24)
        expectBytes(m.wireBytes, expected)
        // The guest's completion of a transfer-page packet: 8 bytes, not 40.
        var w = WireWriter()
        NVSPMessage.sendRNDISPacketComplete(.init(status: .success)).encode(into: &w, minimumSize: 0)
        expectBytes(w.bytes, [108, 0, 0, 0, 1, 0, 0, 0])
        // OpenVMM's legacy size for pre-6.1 peers.
        var l = WireWriter()
        m.encode(into: &l, minimumSize: NVSPProtocolVersion.v6.messageSize)
        #expect(l.count == 28)
    }

    @Test func receiveBufferCompleteWithOneSectionIsExactBytes() {
        let m = NVSPMessage.sendReceiveBufferComplete(.init(status: .success, sections: [
            .init(offset: 0, subAllocationSize: 0x06C0, subAllocationCount: 0x25ED, endOffset: 0x0100_0000)]))
        var expected: [UInt8] = [102, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0]
        expected += [0, 0, 0, 0, 0xC0, 0x06, 0, 0, 0xED, 0x25, 0, 0, 0, 0, 0, 0x01]
        expected += [UInt8](repeating: 0, count: 12)
        expectBytes(m.wireBytes, expected)
    }

    @Test func indirectionTableIsTheCompactFormAndDecodesBothWays() throws {
        let entries = (0..<16).map { UInt32($0 % 3) }
        let bytes = NVSPMessage.sendIndirectionTable(.init(entries: entries)).wireBytes
        #expect(bytes.count == 12 + 64)
        expectBytes(Array(bytes[0..<12]), [134, 0, 0, 0, 16, 0, 0, 0, 12, 0, 0, 0])
        // Hyper-V's form for NVSP ≤ 6: a bogus offset, the table after a full 40-byte message.
        var h = WireWriter()
        h.writeUInt32(134); h.writeUInt32(16); h.writeUInt32(0xDEAD)
        h.writeZeros(40 - 12)
        for e in entries { h.writeUInt32(e) }
        let fixed = try NVSPMessage(wireBytes: h.bytes, direction: .hostToGuest, version: .v6)
        #expect(fixed == .sendIndirectionTable(.init(entries: entries)))
        // Under 6.1 the offset is taken as sent, and this one lies outside the message.
        #expect(throws: WireError.self) {
            try NVSPMessage(wireBytes: h.bytes, direction: .hostToGuest, version: .v61)
        }
        // Without a version, the compact form decodes as sent.
        #expect(try NVSPMessage(wireBytes: bytes, direction: .hostToGuest) == .sendIndirectionTable(.init(entries: entries)))
    }

    @Test func directionPicksTheBodyOfSharedNumbers() throws {
        let bytes = NVSPMessage.subchannelRequest(.init(subchannelCount: 5)).wireBytes
        #expect(try NVSPMessage(wireBytes: bytes, direction: .hostToGuest)
            == .subchannelComplete(.init(status: .init(rawValue: 1), subchannelCount: 5)))
        let pd = NVSPMessage.pdAPIRequest(.init(operation: .config)).wireBytes
        guard case .pdAPIComplete = try NVSPMessage(wireBytes: pd, direction: .hostToGuest) else {
            Issue.record("PD_API host → guest is a completion")
            return
        }
    }

    // MARK: Hostile input

    @Test func everyTruncatedPrefixThrows() {
        for (m, direction) in Self.samples {
            // PD_API and the raw messages take whatever body there is; the rest need their fixed fields.
            switch m {
            case .pdAPIRequest, .pdAPIComplete, .other: continue
            default: break
            }
            var w = WireWriter()
            m.encode(into: &w, minimumSize: 0)
            for n in 0..<w.count {
                #expect(throws: WireError.self, "\(m.type) prefix \(n)") {
                    try NVSPMessage(wireBytes: Array(w.bytes[0..<n]), direction: direction)
                }
            }
        }
    }

    @Test func sectionCountBeyondTheMessageThrowsBeforeAllocating() {
        var w = WireWriter()
        w.writeUInt32(102); w.writeUInt32(1); w.writeUInt32(0xFFFF_FFFF)
        w.writeZeros(28)
        #expect(throws: WireError.countTooLarge(field: "num_sections", count: 0xFFFF_FFFF, limit: 1)) {
            try NVSPMessage(wireBytes: w.bytes, direction: .hostToGuest)
        }
        // Two sections claimed, one present (the 40-byte message holds 1.75).
        var two = WireWriter()
        two.writeUInt32(102); two.writeUInt32(1); two.writeUInt32(2)
        two.writeZeros(28)
        #expect(throws: WireError.countTooLarge(field: "num_sections", count: 2, limit: 1)) {
            try NVSPMessage(wireBytes: two.bytes, direction: .hostToGuest)
        }
    }

    @Test func indirectionTableOutsideTheMessageThrows() throws {
        func table(count: UInt32, offset: UInt32, length: Int) -> [UInt8] {
            var w = WireWriter()
            w.writeUInt32(134); w.writeUInt32(count); w.writeUInt32(offset)
            w.writeZeros(length - 12)
            return w.bytes
        }
        // Count larger than the whole message.
        #expect(throws: WireError.countTooLarge(field: "send_table.count", count: 0x4000_0000, limit: 19)) {
            try NVSPMessage(wireBytes: table(count: 0x4000_0000, offset: 12, length: 76), direction: .hostToGuest)
        }
        // Offset past the end, offset such that the table runs off the end, offset wrapping near 2^32.
        for offset: UInt32 in [200, 16, 0xFFFF_FFF0] {
            #expect(throws: WireError.self, "offset \(offset)") {
                try NVSPMessage(wireBytes: table(count: 16, offset: offset, length: 76), direction: .hostToGuest)
            }
        }
        // A table over the message's own fields.
        #expect(throws: WireError.invalidValue(field: "send_table.offset", value: 4)) {
            try NVSPMessage(wireBytes: table(count: 16, offset: 4, length: 76), direction: .hostToGuest)
        }
        // Count 0 at a valid offset is empty, not an error (the guest decides what to do with it).
        #expect(try NVSPMessage(wireBytes: table(count: 0, offset: 12, length: 40), direction: .hostToGuest)
            == .sendIndirectionTable(.init(entries: [])))
    }

    @Test func messagesNewerThanTheNegotiatedVersionAreRefused() throws {
        let vf = NVSPMessage.sendVFAssociation(.init(allocated: 1, serial: 2)).wireBytes
        #expect(throws: WireError.invalidValue(field: "msg_type", value: 128)) {
            try NVSPMessage(wireBytes: vf, direction: .hostToGuest, version: .v2)
        }
        _ = try NVSPMessage(wireBytes: vf, direction: .hostToGuest, version: .v4)
        let sub = NVSPMessage.subchannelRequest(.init(subchannelCount: 1)).wireBytes
        #expect(throws: WireError.self) { try NVSPMessage(wireBytes: sub, direction: .guestToHost, version: .v4) }
        // INIT predates versioning, and an unknown number is carried, not refused.
        _ = try NVSPMessage(wireBytes: NVSPMessage.`init`(.init(version: .v1)).wireBytes, direction: .guestToHost,
                            version: .v1)
        var w = WireWriter()
        w.writeUInt32(999); w.writeUInt32(5)
        #expect(try NVSPMessage(wireBytes: w.bytes, direction: .guestToHost, version: .v61)
            == .other(type: .init(rawValue: 999), body: [5, 0, 0, 0]))
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix(seed: 9)
        for _ in 0..<20_000 {
            let n = Int(rng.next() % 90)
            var bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Point the type at real messages most of the time.
            if n >= 4, rng.next() % 4 != 0 {
                let types: [UInt32] = [1, 2, 100, 101, 102, 103, 104, 105, 106, 107, 108, 120, 121, 122, 125, 128, 129,
                                       133, 134, 135]
                let t = types[Int(rng.next() % UInt64(types.count))]
                bytes[0] = UInt8(t & 0xFF); bytes[1] = 0; bytes[2] = 0; bytes[3] = 0
            }
            _ = try? NVSPMessage(wireBytes: bytes, direction: rng.next() % 2 == 0 ? .guestToHost : .hostToGuest,
                                 version: rng.next() % 2 == 0 ? .v6 : nil)
        }
    }
}

/// A small deterministic generator for the no-trap sweeps.
struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
