import Testing
import VMBusICProtocol
import VMBusLayoutTesting
import VMBusWire

/// What a hostile or broken peer can send: short buffers, sizes past their arrays, strings without their NUL,
/// pools and operations that do not exist, file-copy fragments past their limits, and random bytes. Every
/// case must throw a ``WireError`` (or be accepted as Linux accepts it), never trap.
@Suite struct ICHostileDecodingTests {
    /// A decoder under test: its name, how many bytes it needs, and a valid encoding to cut short.
    struct Decoder {
        let name: String
        let minimum: Int
        let valid: [UInt8]
        let decode: ([UInt8]) throws(WireError) -> Void
    }

    static func decoder<T: WireDecodable>(_ type: T.Type, _ value: some WireEncodable, minimum: Int) -> Decoder {
        Decoder(name: "\(T.self)", minimum: minimum, valid: value.wireBytes) { (b: [UInt8]) throws(WireError) in
            _ = try T(wireBytes: b)
        }
    }

    static func fixed<T: WireCodable>(_ type: T.Type, _ value: T) -> Decoder {
        decoder(T.self, value, minimum: T.wireSize)
    }

    static var decoders: [Decoder] {
        [
            fixed(VMBusPipeHeader.self, VMBusPipeHeader(msgsize: 48)),
            fixed(ICVersion.self, ICVersion(3, 0)),
            fixed(ICMessageHeader.self, ICMessageHeader(icmsgtype: .heartbeat, icmsgsize: 40)),
            decoder(HeartbeatMessage.self, HeartbeatMessage(seqNum: 9), minimum: HeartbeatMessage.minimumSize),
            fixed(ShutdownMessage.self, ShutdownMessage(flags: .restart)),
            fixed(TimeSyncData.self, TimeSyncData(parenttime: 1, flags: .sync)),
            fixed(TimeSyncReferenceData.self, TimeSyncReferenceData(parenttime: 1, vmreferencetime: 2, flags: .sample)),
            fixed(KVPHeader.self, KVPHeader(operation: .get, pool: .auto)),
            fixed(KVPExchangeValue.self, KVPExchangeValue()),
            fixed(KVPDelete.self, KVPDelete()),
            fixed(KVPEnumerate.self, KVPEnumerate(index: 3)),
            fixed(KVPRegister.self, KVPRegister()),
            fixed(KVPIPAddressValue.self, KVPIPAddressValue()),
            fixed(KVPIPMessage.self, KVPIPMessage(operation: .getIPInfo, pool: .auto)),
            decoder(KVPMessage.self, KVPMessage(header: KVPHeader(operation: .get, pool: .auto)), minimum: 4),
            fixed(VSSHeader.self, VSSHeader(operation: .freeze)),
            fixed(VSSCheckFeature.self, VSSCheckFeature(flags: 5)),
            fixed(VSSCheckDMInfo.self, VSSCheckDMInfo(flags: 0)),
            fixed(VSSMessage.self, VSSMessage(operation: .thaw)),
            fixed(FCopyHeader.self, FCopyHeader(operation: .completeFCopy)),
            fixed(FCopyStart.self, FCopyStart(fileSize: 10)),
        ]
    }

    @Test func everyTruncatedPrefixOfEveryStructIsTruncated() throws {
        for d in Self.decoders {
            #expect(d.valid.count >= d.minimum, "\(d.name)")
            var wrong: [Int] = []
            for n in 0..<d.minimum {
                do {
                    try d.decode(Array(d.valid.prefix(n)))
                    wrong.append(n)
                } catch {
                    if case .truncated = error {} else { wrong.append(n) }
                }
            }
            #expect(wrong.isEmpty, "\(d.name): prefixes \(wrong.prefix(5)) not refused as truncated")
            #expect(throws: Never.self, "\(d.name) at its minimum size") { try d.decode(Array(d.valid.prefix(d.minimum))) }
        }
    }

    @Test func aFragmentNeedsItsFixedPartAndSizeBytes() throws {
        let d = try FCopyData(offset: 100, data: pattern(10, seed: 3))
        let bytes = d.wireBytes
        for n in 0..<(FCopyData.fixedSize + 10) {
            #expect(throws: WireError.self, "\(n) bytes") { try FCopyData(wireBytes: Array(bytes.prefix(n))) }
        }
        #expect(try FCopyData(wireBytes: Array(bytes.prefix(FCopyData.fixedSize + 10))) == d)
    }

    @Test func aHeartbeatNeedsOnlyItsSequenceNumberAsInLinux() throws {
        let short = le(UInt64(41)) + le(UInt32(7)) + [0xEE, 0xEE]
        let h = try HeartbeatMessage(wireBytes: short)
        #expect(h.seqNum == 41)
        #expect(h.reserved == [7, 0, 0, 0, 0, 0, 0, 0])
        #expect(h.applicationState == 7)
        #expect(h.linuxResponse.seqNum == 42)
        #expect(HeartbeatMessage(seqNum: .max).linuxResponse.seqNum == 0)
        #expect(h.wireBytes.count == HeartbeatMessage.wireSize)
    }

    // MARK: Strings

    static func utf16(_ units: [UInt16]) -> [UInt8] { units.flatMap { le($0) } }

    @Test func anUnterminatedKeyThrowsUnlessToleratedAsLinuxDoes() throws {
        var v = KVPExchangeValue(keySize: 512, key: Self.utf16(Array(repeating: 0x41, count: 256)))
        #expect(throws: WireError.invalidValue(field: "key_size (no NUL)", value: 512)) {
            try v.keyString(encoding: .utf16LE)
        }
        #expect(try v.keyString(encoding: .utf16LE, termination: .tolerated) == String(repeating: "A", count: 256))
        // key_size shorter than the text: the string ends at key_size, and strictly it still needs its NUL.
        v.keySize = 6
        #expect(throws: WireError.self) { try v.keyString(encoding: .utf16LE) }
        #expect(try v.keyString(encoding: .utf16LE, termination: .tolerated) == "AAA")
        // Daemon form, UTF-8.
        let d = KVPDelete(keySize: 4, key: Array("abcd".utf8))
        #expect(throws: WireError.self) { try d.keyString(encoding: .utf8) }
        #expect(try d.keyString(encoding: .utf8, termination: .tolerated) == "abcd")
    }

    @Test func sizesPastTheArrayAreRefusedInEveryMode() throws {
        for size in [UInt32(513), 0x1_0000, .max] {
            let v = KVPExchangeValue(keySize: size, valueSize: 0)
            for t in [ICStringTermination.required, .tolerated] {
                #expect(throws: WireError.countTooLarge(field: "key_size", count: Int(size), limit: 512)) {
                    try v.keyString(encoding: .utf16LE, termination: t)
                }
            }
            let w = KVPExchangeValue(keySize: 0, valueSize: size == 513 ? 2049 : size)
            #expect(throws: WireError.self) { try w.stringValue(encoding: .utf16LE, termination: .tolerated) }
        }
    }

    @Test func oddSizesAndLoneSurrogatesAreMalformedUTF16() throws {
        let odd = KVPExchangeValue(keySize: 5, key: Self.utf16([0x41, 0x42, 0]))
        #expect(throws: WireError.invalidValue(field: "key_size (odd UTF-16 size)", value: 5)) {
            try odd.keyString(encoding: .utf16LE)
        }
        #expect(try odd.keyString(encoding: .utf16LE, termination: .tolerated) == "AB")
        let lone = KVPExchangeValue(keySize: 6, key: Self.utf16([0x41, 0xD800, 0]))
        #expect(throws: WireError.invalidValue(field: "key_size (bad UTF-16)", value: 2)) {
            try lone.keyString(encoding: .utf16LE)
        }
        #expect(try lone.keyString(encoding: .utf16LE, termination: .tolerated) == "A\u{FFFD}")
        let badUTF8 = KVPDelete(keySize: 3, key: [0x41, 0xFF, 0])
        #expect(throws: WireError.self) { try badUTF8.keyString(encoding: .utf8) }
    }

    @Test func stringsRoundTripInBothForms() throws {
        for text in ["FullyQualifiedDomainName", "", "Grüße 😀 ok"] {
            for encoding in [ICStringEncoding.utf16LE, .utf8] {
                let v = try KVPExchangeValue(key: text, value: text + "=v", encoding: encoding)
                #expect(try v.keyString(encoding: encoding) == text)
                #expect(try v.stringValue(encoding: encoding) == text + "=v")
                let expected = encoding == .utf16LE ? text.utf16.count * 2 + 2 : text.utf8.count + 1
                #expect(Int(v.keySize) == expected, "size counts bytes and the NUL")
            }
        }
    }

    @Test func overlongStringsAreRefusedOrCutAtACharacter() throws {
        let long = String(repeating: "a", count: 255) + "😀"
        #expect(throws: WireError.countTooLarge(field: "key", count: 516, limit: 512)) {
            try KVPExchangeValue(key: long, value: "", encoding: .utf16LE)
        }
        var v = KVPExchangeValue()
        try v.setKey(long, encoding: .utf16LE, overflow: .truncate)
        #expect(try v.keyString(encoding: .utf16LE) == String(repeating: "a", count: 255))
        #expect(v.keySize == 512)
        var ip = KVPIPAddressValue()
        #expect(throws: WireError.self) {
            try ip.setString(String(repeating: "1", count: 1024), for: .ipAddr, encoding: .utf16LE)
        }
        try ip.setString(String(repeating: "1", count: 1023), for: .ipAddr, encoding: .utf16LE)
        #expect(try ip.string(.ipAddr, encoding: .utf16LE).count == 1023)
    }

    @Test func unterminatedIPFieldsAndFileNames() throws {
        var ip = KVPIPAddressValue()
        ip.gateWay = pattern(1024, seed: 1)
        #expect(throws: WireError.self) { try ip.string(.gateWay, encoding: .utf16LE) }
        #expect(try ip.string(.gateWay, encoding: .utf16LE, termination: .tolerated).utf16.count == 512)
        #expect(try ip.string(.ipAddr, encoding: .utf16LE).isEmpty)

        let name = FCopyStart(fileName: Self.utf16(Array(repeating: 0x62, count: 260)), fileSize: 1)
        #expect(throws: WireError.invalidValue(field: "file_name (no NUL)", value: 520)) {
            try name.fileNameString(encoding: .utf16LE)
        }
        #expect(try name.fileNameString(encoding: .utf16LE, termination: .tolerated).count == 260)
        // Linux's daemon copy keeps 259 bytes of UTF-8 and a NUL.
        let copy = try name.daemonCopy()
        #expect(try copy.fileNameString(encoding: .utf8) == String(repeating: "b", count: 259))
        #expect(copy.fileSize == 1)
    }

    // MARK: KVP dispatch

    static func kvpBody(_ op: KVPOperation, pool: UInt8, member: some WireEncodable) -> [UInt8] {
        KVPMessage(operation: op, pool: KVPPool(rawValue: pool), member: member).wireBytes
    }

    @Test func keyOperationsRefusePoolsPastFour() throws {
        let members: [(KVPOperation, any WireEncodable)] = [
            (.get, KVPExchangeValue()), (.set, KVPExchangeValue()), (.delete, KVPDelete()),
            (.enumerate, KVPEnumerate(index: 0)),
        ]
        for (op, member) in members {
            for pool in UInt8(0)...4 {
                let r = try KVPRequest(body: Self.kvpBody(op, pool: pool, member: member))
                #expect(r.operation == op && r.pool == KVPPool(rawValue: pool))
            }
            for pool in [UInt8(5), 0x80, 0xFF] {
                #expect(throws: WireError.invalidValue(field: "kvp_hdr.pool", value: UInt64(pool)), "\(op)") {
                    try KVPRequest(body: Self.kvpBody(op, pool: pool, member: member))
                }
            }
        }
        // IP operations carry a pool Linux never reads.
        let ip = KVPIPMessage(operation: .getIPInfo, pool: KVPPool(rawValue: 9)).wireBytes
        #expect(try KVPRequest(body: ip).pool == KVPPool(rawValue: 9))
    }

    @Test func unknownOperationsAndTheHandshakeAreNotRequests() throws {
        for op in [UInt8(6), 7, 99, 100, 0xFF] {
            let body = Self.kvpBody(KVPOperation(rawValue: op), pool: 0, member: KVPExchangeValue())
            #expect(throws: WireError.invalidValue(field: "kvp_hdr.operation", value: UInt64(op))) {
                try KVPRequest(body: body)
            }
        }
    }

    @Test func kvpRequestsShorterThanTheirMemberAreTruncated() throws {
        let cases: [(KVPOperation, Int)] = [
            (.get, 4 + KVPExchangeValue.wireSize), (.set, 4 + KVPExchangeValue.wireSize),
            (.delete, 4 + KVPDelete.wireSize), (.enumerate, 4 + KVPEnumerate.wireSize),
            (.getIPInfo, KVPIPMessage.wireSize), (.setIPInfo, KVPIPMessage.wireSize),
        ]
        for (op, needed) in cases {
            let full = KVPMessage(header: KVPHeader(operation: op, pool: .external)).wireBytes
            #expect(throws: Never.self, "\(op)") { try KVPRequest(body: Array(full.prefix(needed))) }
            for n in [0, 3, 4, needed / 2, needed - 1] {
                do {
                    _ = try KVPRequest(body: Array(full.prefix(n)))
                    Issue.record("\(op): \(n) bytes accepted")
                } catch {
                    if case .truncated = error {} else { Issue.record("\(op): \(n) bytes gave \(error)") }
                }
            }
        }
        // The daemon form puts the IP settings after the 4-byte head.
        let daemon = KVPMessage(header: KVPHeader(operation: .setIPInfo, pool: .auto)).wireBytes
        #expect(throws: WireError.self) { try KVPRequest(body: Array(daemon.prefix(7429)), form: .daemon) }
        #expect(throws: Never.self) { try KVPRequest(body: daemon, form: .daemon) }
    }

    @Test func kvpRequestsWithSizesPastTheirArraysAreRefused() throws {
        let bigKey = KVPExchangeValue(keySize: 514)
        #expect(throws: WireError.countTooLarge(field: "key_size", count: 514, limit: 512)) {
            try KVPRequest(body: Self.kvpBody(.set, pool: 0, member: bigKey))
        }
        let bigValue = KVPExchangeValue(keySize: 2, valueSize: 0xFFFF_FFFF)
        #expect(throws: WireError.countTooLarge(field: "value_size", count: 0xFFFF_FFFF, limit: 2048)) {
            try KVPRequest(body: Self.kvpBody(.enumerate, pool: 0, member: KVPEnumerate(index: 1, data: bigValue)))
        }
        #expect(throws: WireError.self) {
            try KVPRequest(body: Self.kvpBody(.delete, pool: 0, member: KVPDelete(keySize: 600)))
        }
    }

    @Test func kvpRequestsRoundTripInBothForms() throws {
        var ip = KVPIPAddressValue(addrFamily: KVPIPAddressValue.addrFamilyIPv4, dhcpEnabled: 1)
        try ip.setString("192.168.0.2;10.0.0.1", for: .ipAddr, encoding: .utf16LE)
        let requests: [KVPRequest] = [
            .get(pool: .auto, try KVPExchangeValue(key: "OSName", value: "", encoding: .utf16LE)),
            .set(pool: .external, try KVPExchangeValue(key: "k", value: "v", encoding: .utf16LE)),
            .delete(pool: .guest, try KVPDelete(key: "k", encoding: .utf16LE)),
            .enumerate(pool: .autoInternal, KVPEnumerate(index: 4)),
            .getIPInfo(KVPIPMessage(operation: .getIPInfo, pool: .auto, kvpIPVal: ip)),
            .setIPInfo(KVPIPMessage(operation: .setIPInfo, pool: .auto, kvpIPVal: ip)),
        ]
        for request in requests {
            for form in [KVPMessageForm.vmbus, .daemon] {
                let bytes = request.wireBytes(form: form)
                let isIPOnVMBus = form == .vmbus && (request.operation == .getIPInfo || request.operation == .setIPInfo)
                #expect(bytes.count == (isIPOnVMBus ? KVPIPMessage.wireSize : KVPMessage.wireSize))
                #expect(try KVPRequest(body: bytes, form: form) == request, "\(request.operation) \(form)")
            }
        }
    }

    // MARK: File copy

    func fragment(offset: UInt64, size: UInt32, present: Int? = nil) -> [UInt8] {
        var bytes = FCopyHeader(operation: .writeToFile).wireBytes + le(UInt32(0)) + le(offset) + le(size)
        bytes += pattern(present ?? Int(min(size, 6144)), seed: 5)
        return bytes
    }

    @Test func fragmentSizesPastDATA_FRAGMENTAreRefused() throws {
        for size in [UInt32(6145), 0x1_0000, .max] {
            #expect(throws: WireError.countTooLarge(field: "size", count: Int(size), limit: 6144)) {
                try FCopyData(wireBytes: fragment(offset: 0, size: size, present: 6144))
            }
        }
        #expect(try FCopyData(wireBytes: fragment(offset: 0, size: 6144)).data.count == 6144)
        #expect(throws: WireError.countTooLarge(field: "size", count: 6145, limit: 6144)) {
            try FCopyData(offset: 0, data: Array(repeating: 0, count: 6145))
        }
        // More bytes announced than sent.
        #expect(throws: WireError.self) { try FCopyData(wireBytes: fragment(offset: 0, size: 100, present: 99)) }
    }

    @Test func fragmentOffsetsPastAFileOffsetAreRefused() throws {
        let max = UInt64(Int64.max)
        for (offset, size) in [(UInt64.max, UInt32(1)), (max, 1), (max - 10, 100), (UInt64(1) << 63, 0)] {
            #expect(throws: WireError.invalidValue(field: "offset", value: offset), "\(offset)+\(size)") {
                try FCopyData(wireBytes: fragment(offset: offset, size: size))
            }
        }
        let last = try FCopyData(wireBytes: fragment(offset: max - 100, size: 100))
        #expect(last.end == max)
        #expect(throws: WireError.self) { try FCopyData(offset: .max, data: [1]) }

        let d = try FCopyData(offset: 4096, data: Array(repeating: 1, count: 100))
        #expect(throws: Never.self) { try d.checkWithin(fileSize: 4196) }
        #expect(throws: WireError.invalidValue(field: "offset + size past file_size", value: 4196)) {
            try d.checkWithin(fileSize: 4195)
        }
    }

    @Test func fileCopyDispatchChecksTheOperation() throws {
        let start = FCopyStart(fileSize: 5)
        #expect(try FCopyMessage(body: start.wireBytes) == .startFileCopy(start))
        let data = try FCopyData(offset: 1, data: [1, 2, 3])
        #expect(try FCopyMessage(body: data.wireBytes) == .writeToFile(data))
        #expect(try FCopyMessage(body: FCopyHeader(operation: .completeFCopy).wireBytes)
                    == .completeFCopy(FCopyHeader(operation: .completeFCopy)))
        let cancel = FCopyMessage.cancelFCopy(FCopyHeader(operation: .cancelFCopy))
        #expect(try FCopyMessage(body: cancel.wireBytes) == cancel)
        #expect(cancel.header.operation == .cancelFCopy)
        #expect(throws: WireError.invalidValue(field: "hv_fcopy_hdr.operation", value: 4)) {
            try FCopyMessage(body: FCopyHeader(operation: FCopyOperation(rawValue: 4)).wireBytes)
        }
        // A START cut short, and a header alone under START's operation.
        #expect(throws: WireError.self) { try FCopyMessage(body: Array(start.wireBytes.dropLast())) }
        #expect(throws: WireError.self) { try FCopyMessage(body: FCopyHeader(operation: .startFileCopy).wireBytes) }
        #expect(throws: WireError.self) { try FCopyMessage(body: [0, 0, 0]) }
    }

    // MARK: Random input

    /// xorshift64*: deterministic, so a failure reproduces.
    struct Random {
        var state: UInt64
        mutating func next() -> UInt64 {
            state ^= state >> 12; state ^= state << 25; state ^= state >> 27
            return state &* 0x2545_F491_4F6C_DD1D
        }
        mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
    }

    @Test func randomBytesNeverTrapAnyDecoder() throws {
        var rng = Random(state: 0x9E37_79B9_7F4A_7C15)
        let lengths = [0, 1, 4, 27, 28, 31, 32, 36, 40, 52, 520, 1088, 2576, 6196, 7428, 7432, 8000]
        var decoded = 0
        for round in 0..<600 {
            let n = round < lengths.count ? lengths[round] : Int(rng.next() % 8200)
            var b = rng.bytes(n)
            // Steer the leading bytes towards real operations half of the time.
            if n > 0 && round % 2 == 0 { b[0] = UInt8(truncatingIfNeeded: rng.next() % 8) }
            if n > 1 && round % 4 == 0 { b[1] = UInt8(truncatingIfNeeded: rng.next() % 6) }
            for d in Self.decoders where (try? d.decode(b)) != nil { decoded += 1 }
            if let r = try? KVPRequest(body: b) { decoded += 1; _ = try? Self.readStrings(r) }
            if let r = try? KVPRequest(body: b, form: .daemon) { decoded += 1; _ = try? Self.readStrings(r) }
            if let f = try? FCopyMessage(body: b), case .startFileCopy(let s) = f {
                _ = try? s.fileNameString(encoding: .utf16LE)
                _ = try? s.daemonCopy()
            }
            _ = try? FCopyData(wireBytes: b)
            // The same bytes as a whole packet, and as a negotiate request.
            _ = try? ICMessage(packet: b)
            _ = try? ICService.kvp.linuxAnswer(to: b)
            _ = ICNegotiation.linuxRefusal(of: b)
            _ = try? ICNegotiation.parseAnswer(b)
        }
        #expect(decoded > 0)
    }

    static func readStrings(_ r: KVPRequest) throws(WireError) {
        for t in [ICStringTermination.required, .tolerated] {
            switch r {
            case .get(_, let v), .set(_, let v):
                _ = try? v.keyString(encoding: .utf16LE, termination: t)
                _ = try? v.stringValue(encoding: .utf8, termination: t)
                _ = try? v.daemonValueString()
            case .delete(_, let d): _ = try? d.keyString(encoding: .utf16LE, termination: t)
            case .enumerate(_, let e): _ = try? e.data.keyString(encoding: .utf8, termination: t)
            case .getIPInfo(let m), .setIPInfo(let m):
                for f in KVPIPAddressValue.TextField.allCases {
                    _ = try? m.kvpIPVal.string(f, encoding: .utf16LE, termination: t)
                    _ = try? m.kvpIPVal.string(f, encoding: .utf8, termination: t)
                }
            }
        }
    }
}
