#if canImport(Glibc)
import Glibc
#endif
import Testing
import VMBusICGuest
import VMBusICHost
import VMBusICProtocol
import VMBusTestSupport
import VMBusTransport
import VMBusWire

/// The guest's services against a raw host sending malformed IC messages: each gets Linux's drop or an
/// HV_E_FAIL answer, and the guest keeps answering afterwards.
@Suite(.serialized)
struct ICGuestHostileHostTests {
    final class Rig: @unchecked Sendable {
        let raw: RawICHost
        let rig: ICRig
        let service: ICService
        var nextID: UInt64 = 100

        init(_ service: ICService, _ responder: any ICResponder) throws {
            self.service = service
            raw = RawICHost(service: service)
            rig = try ICRig(configuration: .init(services: []), extraHost: [raw], responders: [responder])
            let negotiate = ICNegotiation.request(frameworkVersions: [.utilFWVersion], serviceVersions: service.serviceVersions)
            guard let answer = try raw.exchange(negotiate, id: 1),
                  try ICNegotiation.parseAnswer(answer.wireBytes) != nil else { throw RawPeerError.noChannel }
        }

        func ask(_ type: ICMessageType, _ body: [UInt8]) throws -> ICMessage? {
            nextID += 1
            return try raw.exchange(RawICHost.request(type, body, service: service.serviceVersions[0]), id: nextID)
        }

        func status(_ type: ICMessageType, _ body: [UInt8]) throws -> ICStatus? { try ask(type, body)?.header.status }

        var guestChannel: ICGuestChannel? { rig.driver.channel(for: service) }
        func stop() { rig.stop() }
    }

    @Test func packetsShorterThanTheHeaderAreDroppedWithoutAnAnswer() throws {
        let r = try Rig(.heartbeat, HeartbeatResponder())
        defer { r.stop() }
        // VMBus packets are whole 8-byte units, so 24 is the longest payload short of ICMSG_HDR (28).
        for n in [0, 1, 8, 20, 24] {
            try r.raw.send([UInt8](repeating: 0xEE, count: n), id: 900 + UInt64(n))
        }
        #expect(eventually(5) { r.guestChannel?.packetsDropped.load(ordering: .relaxed) == 5 })
        // Still alive: a good heartbeat is answered.
        let answer = try r.ask(.heartbeat, HeartbeatMessage(seqNum: 41).wireBytes)
        #expect(try answer?.decodeBody(HeartbeatMessage.self).seqNum == 42)
        #expect(r.raw.answers.withLock { $0.contains { $0.0 >= 900 } } == false)
    }

    @Test func malformedNegotiationGetsLinuxsRefusal() throws {
        let r = try Rig(.shutdown, ShutdownResponder { _, _ in })
        defer { r.stop() }
        // Counts that claim more versions than the packet holds.
        var bad = ICNegotiation.request(frameworkVersions: [.utilFWVersion], serviceVersions: [.sdVersion])
        bad[ICMessage.headerSize] = 90
        let answer = try #require(try r.raw.exchange(bad, id: 7))
        #expect(try ICNegotiation.parseAnswer(answer.wireBytes) == nil)
        // Only the header: answered with the flags and nothing else.
        let bare = Array(bad.prefix(ICMessage.headerSize))
        let flagsOnly = try #require(try r.raw.exchange(bare, id: 8))
        #expect(flagsOnly.header.icflags == .guestResponse)
    }

    @Test func shortBodiesFailEveryService() throws {
        let cases: [(ICService, any ICResponder, [UInt8])] = [
            (.heartbeat, HeartbeatResponder(), [1, 2, 3]),
            (.shutdown, ShutdownResponder { _, _ in Issue.record("a short shutdown message must not act") },
             [UInt8](repeating: 0, count: 100)),
            (.timeSync, TimeSyncResponder(adjustClock: false), [UInt8](repeating: 0, count: 10)),
            (.kvp, KVPResponder(), [0, 0, 0, 0] + [UInt8](repeating: 0, count: 100)),
            (.vss, VSSResponder(), [5, 0, 0]),
            (.fcopy, FileCopyResponder(), [0, 0, 0, 0, 1]),
        ]
        for (service, responder, body) in cases {
            let r = try Rig(service, responder)
            defer { r.stop() }
            #expect(try r.status(service.messageType, body) == .fail, "\(service)")
            // An unknown message type on the service's channel fails too.
            #expect(try r.status(ICMessageType(rawValue: 77), body) == .fail, "\(service)")
        }
    }

    @Test func hostileKVPRequestsFail() throws {
        let r = try Rig(.kvp, KVPResponder())
        defer { r.stop() }
        func body(_ op: KVPOperation, pool: UInt8, _ member: some WireEncodable) -> [UInt8] {
            KVPMessage(operation: op, pool: KVPPool(rawValue: pool), member: member).wireBytes
        }
        let good = try KVPExchangeValue(key: "k", value: "v", encoding: .utf16LE)
        #expect(try r.status(.kvpExchange, body(.set, pool: 0, good)) == .ok)
        // Pool 5 and 255 do not exist.
        #expect(try r.status(.kvpExchange, body(.set, pool: 5, good)) == .fail)
        #expect(try r.status(.kvpExchange, body(.get, pool: 255, good)) == .fail)
        // key_size past the key array.
        var long = good
        long.keySize = 600
        #expect(try r.status(.kvpExchange, body(.set, pool: 0, long)) == .fail)
        // A key with no NUL in its bytes.
        var open = good
        open.key = [UInt8](repeating: 0x41, count: KVPExchangeValue.maxKeySize)
        open.keySize = UInt32(KVPExchangeValue.maxKeySize)
        #expect(try r.status(.kvpExchange, body(.get, pool: 0, open)) == .fail)
        // An odd UTF-16 size.
        var odd = good
        odd.keySize = 3
        #expect(try r.status(.kvpExchange, body(.delete, pool: 0, odd)) == .fail)
        // Unknown operation, and IP settings with no daemon that can apply them.
        #expect(try r.status(.kvpExchange, body(KVPOperation(rawValue: 9), pool: 0, good)) == .fail)
        #expect(try r.status(.kvpExchange, KVPIPMessage(operation: .getIPInfo, pool: .external,
                                                        kvpIPVal: KVPIPAddressValue()).wireBytes) == .fail)
        // The good key is still there.
        let get = try #require(try r.ask(.kvpExchange, body(.get, pool: 0, good)))
        #expect(get.header.status == .ok)
        #expect(try KVPMessage(wireBytes: get.body).kvpGet().stringValue(encoding: .utf16LE) == "v")
    }

    @Test func hostileFileCopyRequestsFail() throws {
        let dir = try TemporaryDirectory()
        let r = try Rig(.fcopy, FileCopyResponder())
        defer { r.stop() }
        let fragment = try FCopyData(offset: 0, data: [1, 2, 3]).wireBytes
        // Data before any start.
        #expect(try r.status(.fcopy, fragment) == .fail)
        // Names without their NUL, a name with a slash, a relative directory.
        var unterminated = try FCopyStart(fileName: "f", pathName: dir.path, encoding: .utf16LE, copyFlags: [], fileSize: 3)
        unterminated.fileName = [UInt8](repeating: 0x41, count: FCopyStart.maxPath * 2)
        #expect(try r.status(.fcopy, unterminated.wireBytes) == .fail)
        let slash = try FCopyStart(fileName: "a/b", pathName: dir.path, encoding: .utf16LE, copyFlags: [], fileSize: 3)
        #expect(try r.status(.fcopy, slash.wireBytes) == .fail)
        let relative = try FCopyStart(fileName: "f", pathName: "tmp", encoding: .utf16LE, copyFlags: [], fileSize: 3)
        #expect(try r.status(.fcopy, relative.wireBytes) == .fail)
        // A good start, then a fragment past the size it announced, and one with size > DATA_FRAGMENT.
        let start = try FCopyStart(fileName: "f", pathName: dir.path, encoding: .utf16LE, copyFlags: [], fileSize: 3)
        #expect(try r.status(.fcopy, start.wireBytes) == .ok)
        #expect(try r.status(.fcopy, try FCopyData(offset: 1, data: [1, 2, 3]).wireBytes) == .fail)
        #expect(try r.status(.fcopy, try FCopyData(offset: 1 << 40, data: [1]).wireBytes) == .fail)
        var huge = fragment
        huge[FCopyData.fixedSize - 4] = 0xFF
        huge[FCopyData.fixedSize - 3] = 0xFF
        #expect(try r.status(.fcopy, huge) == .fail)
        #expect(try r.status(.fcopy, fragment) == .ok)
        // Cancel removes the partial file.
        #expect(try r.status(.fcopy, FCopyHeader(operation: .cancelFCopy).wireBytes) == .ok)
        #expect(access(dir.path + "/f", F_OK) != 0)
        #expect(try r.status(.fcopy, FCopyHeader(operation: .completeFCopy).wireBytes) == .fail)
    }

    @Test func timeSamplesBeforeTheWindowsEpochFail() throws {
        let ts = TimeSyncResponder(adjustClock: true)
        let r = try Rig(.timeSync, ts)
        defer { r.stop() }
        let early = TimeSyncReferenceData(parenttime: 5, vmreferencetime: 0, flags: .sync).wireBytes
        #expect(try r.status(.timeSync, early) == .fail)
        // A reference time from the far future is not corrected for (and the clock is not stepped by a probe).
        let future = TimeSyncReferenceData(parenttime: HostTimeSync.hostTime(), vmreferencetime: .max, flags: .sample)
        #expect(try r.status(.timeSync, future.wireBytes) == .ok)
        #expect(abs(ts.lastSample?.offsetNanoseconds ?? .max) < 1_000_000_000)
    }

    @Test func aFloodOfRequestsIsAnsweredNotQueuedWithoutBound() throws {
        let r = try Rig(.kvp, KVPResponder())
        defer { r.stop() }
        let body = KVPMessage(operation: .enumerate, pool: .auto, member: KVPEnumerate(index: 0)).wireBytes
        let request = RawICHost.request(.kvpExchange, body, service: ICService.kvp.serviceVersions[0])
        for i in 0..<64 { try r.raw.send(request, id: 2000 + UInt64(i)) }
        #expect(eventually(10) { r.raw.answers.withLock { a in a.filter { $0.0 >= 2000 }.count } == 64 })
        let statuses = r.raw.answers.withLock { a in a.filter { $0.0 >= 2000 }.compactMap { try? ICMessage(packet: $0.1).header.status } }
        #expect(statuses.allSatisfy { $0 == .ok || $0 == .fail })
        #expect(statuses.contains(.ok))
        let refused = r.guestChannel?.requestsRefusedBusy.load(ordering: .relaxed) ?? 0
        #expect(UInt64(statuses.filter { $0 == .fail }.count) == refused)
    }
}
