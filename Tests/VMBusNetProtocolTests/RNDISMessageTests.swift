import Testing
import VMBusLayoutTesting
import VMBusNetProtocol
import VMBusWire

/// RNDIS control messages: every one round-trips, a few against hand-computed bytes, hostile input throws.
@Suite struct RNDISMessageTests {
    static let samples: [RNDISMessage] = [
        .initializeRequest(.init(requestID: 1)),
        .initializeComplete(.init(requestID: 1, status: .success, maxPacketsPerMessage: 8, maxTransferSize: 0xEFFF_FFFF,
                                  packetAlignmentFactor: 3)),
        .halt(.init(requestID: 9)),
        .queryRequest(.init(requestID: 2, oid: .genMaximumFrameSize)),
        .queryRequest(.init(requestID: 3, oid: .tcpOffloadHardwareCapabilities,
                            infoBuffer: NDISOffload(header: NDISOffload.header(revision: 3)).wireBytes)),
        .queryComplete(.init(requestID: 2, status: .success, infoBuffer: [0xDC, 0x05, 0, 0])),
        .queryComplete(.init(requestID: 4, status: .notSupported)),
        .setRequest(.init(requestID: 5, oid: .genCurrentPacketFilter,
                          infoBuffer: [UInt8(NDISPacketFilter.linuxDefault.rawValue), 0, 0, 0])),
        .setRequest(.init(requestID: 6, oid: .genRNDISConfigParameter,
                          infoBuffer: RNDISConfigParameterInfo.networkAddress([2, 0, 0, 0, 0, 1]).wireBytes)),
        .setComplete(.init(requestID: 5, status: .success)),
        .resetRequest(.init()),
        .resetComplete(.init(status: .success, addressingReset: 1)),
        .indicateStatus(.init(status: .mediaConnect)),
        .indicateStatus(.linkSpeedChange(hundredsOfBitsPerSecond: 100_000_000)),
        .keepaliveRequest(.init(requestID: 7)),
        .keepaliveComplete(.init(requestID: 7, status: .success)),
        .packet(info: RNDISPacketInfo(vlan: .init(priority: 1, vlanID: 5), hashValue: 0x1234_5678),
                frame: (0..<60).map { UInt8($0) }),
        .packet(info: RNDISPacketInfo(), frame: []),
        .other(type: .bus, body: [1, 2, 3]),
        .other(type: .init(rawValue: 0x8000_8001), body: []),
    ]

    @Test func everyMessageRoundTrips() throws {
        for m in Self.samples {
            let bytes = m.wireBytes
            #expect(UInt32(bytes.count) == UInt32(bytes[4]) | UInt32(bytes[5]) << 8 | UInt32(bytes[6]) << 16,
                    "\(m.type) msg_len")
            #expect(try RNDISMessage(wireBytes: bytes) == m, "\(m.type)")
        }
    }

    @Test func messagesBatchedBackToBackDecodeInOrder() throws {
        var w = WireWriter()
        for m in Self.samples { m.encode(into: &w) }
        var r = WireReader(w.bytes)
        for m in Self.samples { #expect(try RNDISMessage(from: &r) == m) }
        #expect(r.remaining == 0)
    }

    @Test func queryIsTheBytesLinuxSends() {
        // QUERY 802_3_PERMANENT_ADDRESS, req_id 2: header, req_id, oid, buflen 0, offset 20, vc 0.
        let bytes = RNDISMessage.queryRequest(.init(requestID: 2, oid: .ieee802_3PermanentAddress)).wireBytes
        expectBytes(bytes, [4, 0, 0, 0, 28, 0, 0, 0, 2, 0, 0, 0, 0x01, 0x01, 0x01, 0x01, 0, 0, 0, 0, 20, 0, 0, 0,
                            0, 0, 0, 0])
    }

    @Test func setPacketFilterIsExactBytes() {
        let bytes = RNDISMessage.setRequest(.init(requestID: 0x10, oid: .genCurrentPacketFilter,
                                                  infoBuffer: [0x0D, 0, 0, 0])).wireBytes
        expectBytes(bytes, [5, 0, 0, 0, 32, 0, 0, 0, 0x10, 0, 0, 0, 0x0E, 0x01, 0x01, 0, 4, 0, 0, 0, 20, 0, 0, 0,
                            0, 0, 0, 0, 0x0D, 0, 0, 0])
    }

    @Test func initializeCompleteIsExactBytes() {
        let m = RNDISMessage.initializeComplete(.init(requestID: 1, status: .success, maxPacketsPerMessage: 8,
                                                      maxTransferSize: 0xEFFF_FFFF, packetAlignmentFactor: 3))
        var expected: [UInt8] = [2, 0, 0, 0x80, 52, 0, 0, 0]
        for v: UInt32 in [1, 0, 1, 0, 1, 0, 8, 0xEFFF_FFFF, 3, 0, 0] { expected += le(v) }
        expectBytes(m.wireBytes, expected)
    }

    @Test func completionsAreMatchedByRequestID() {
        #expect(RNDISMessage.queryComplete(.init(requestID: 42, status: .success)).requestID == 42)
        #expect(RNDISMessage.resetComplete(.init(status: .success, addressingReset: 0)).requestID == nil)
        #expect(RNDISMessageType.queryComplete.isCompletion && !RNDISMessageType.query.isCompletion)
    }

    // MARK: Hostile input

    @Test func everyTruncatedPrefixThrows() {
        for m in Self.samples {
            let bytes = m.wireBytes
            for n in 0..<bytes.count {
                #expect(throws: WireError.self, "\(m.type) prefix \(n)") { try RNDISMessage(wireBytes: Array(bytes[0..<n])) }
            }
        }
    }

    @Test func msgLenThatLiesThrows() {
        var bytes = RNDISMessage.setComplete(.init(requestID: 1, status: .success)).wireBytes
        // Shorter than the header.
        bytes[4] = 4
        #expect(throws: WireError.invalidValue(field: "msg_len", value: 4)) { try RNDISMessage(wireBytes: bytes) }
        // Longer than what arrived.
        bytes[4] = 200
        #expect(throws: WireError.self) { try RNDISMessage(wireBytes: bytes) }
        // Shorter than the body's fixed fields.
        bytes[4] = 12
        #expect(throws: WireError.self) { try RNDISMessage(wireBytes: bytes) }
        // Huge.
        bytes[4] = 0xFF; bytes[5] = 0xFF; bytes[6] = 0xFF; bytes[7] = 0xFF
        #expect(throws: WireError.self) { try RNDISMessage(wireBytes: bytes) }
    }

    /// A QUERY_C whose info buffer fields are `length` at `offset`, with `extra` bytes after the fixed fields.
    static func queryComplete(length: UInt32, offset: UInt32, extra: Int = 8) -> [UInt8] {
        var w = WireWriter()
        w.writeUInt32(RNDISMessageType.queryComplete.rawValue)
        w.writeUInt32(UInt32(8 + 16 + extra))
        w.writeUInt32(1); w.writeUInt32(0); w.writeUInt32(length); w.writeUInt32(offset)
        w.writeZeros(extra)
        return w.bytes
    }

    @Test func infoBufferOutsideTheMessageThrows() throws {
        // Good: 8 bytes at 16.
        #expect(try RNDISMessage(wireBytes: Self.queryComplete(length: 8, offset: 16))
            == .queryComplete(.init(requestID: 1, status: .success, infoBuffer: [0, 0, 0, 0, 0, 0, 0, 0])))
        // One byte too long, offset too far, a length that wraps, an offset over the fixed fields.
        #expect(throws: WireError.self) { try RNDISMessage(wireBytes: Self.queryComplete(length: 9, offset: 16)) }
        #expect(throws: WireError.self) { try RNDISMessage(wireBytes: Self.queryComplete(length: 4, offset: 24)) }
        #expect(throws: WireError.self) {
            try RNDISMessage(wireBytes: Self.queryComplete(length: 0xFFFF_FFFF, offset: 16))
        }
        #expect(throws: WireError.self) {
            try RNDISMessage(wireBytes: Self.queryComplete(length: 8, offset: 0xFFFF_FFFC))
        }
        #expect(throws: WireError.invalidValue(field: "info_buf_offset", value: 4)) {
            try RNDISMessage(wireBytes: Self.queryComplete(length: 4, offset: 4))
        }
        // An empty buffer's offset is not looked at.
        #expect(try RNDISMessage(wireBytes: Self.queryComplete(length: 0, offset: 0xFFFF_FFFF))
            == .queryComplete(.init(requestID: 1, status: .success)))
    }

    @Test func indicateStatusBufferOutsideTheMessageThrows() {
        var bytes = RNDISMessage.indicateStatus(.linkSpeedChange(hundredsOfBitsPerSecond: 1)).wireBytes
        // Old vSwitches: the buffer outside msg_len.
        bytes[4] = 20
        #expect(throws: WireError.self) { try RNDISMessage(wireBytes: bytes) }
    }

    @Test func randomBytesNeverTrap() {
        var rng = SplitMix(seed: 11)
        let types: [UInt32] = [1, 2, 0x8000_0002, 3, 4, 0x8000_0004, 5, 0x8000_0005, 6, 0x8000_0006, 7, 8, 0x8000_0008]
        for _ in 0..<20_000 {
            let n = Int(rng.next() % 120)
            var bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next() % 64) }
            if n >= 8 {
                let t = types[Int(rng.next() % UInt64(types.count))]
                for i in 0..<4 { bytes[i] = UInt8(truncatingIfNeeded: t >> (8 * UInt32(i))) }
                let len = UInt32(rng.next() % UInt64(n + 8))
                for i in 0..<4 { bytes[4 + i] = UInt8(truncatingIfNeeded: len >> (8 * UInt32(i))) }
            }
            _ = try? RNDISMessage(wireBytes: bytes)
        }
    }
}
