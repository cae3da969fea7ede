import Testing
import VMBusICProtocol
import VMBusWire

/// Linux's `vmbus_prep_negotiate_resp` rule and its answer bytes; the host's request and its reading of the
/// answer; malformed requests.
@Suite struct ICNegotiationTests {
    /// Framework versions a Hyper-V-like host lists (oldest first, as OpenVMM's host does).
    static let hostFramework = [ICVersion(1, 0), ICVersion(3, 0)]

    func answer(_ service: ICService, framework: [ICVersion] = hostFramework,
                offering: [ICVersion]) throws -> ICNegotiation.GuestAnswer {
        try service.linuxAnswer(to: service.negotiateRequest(frameworkVersions: framework, serviceVersions: offering))
    }

    @Test(arguments: [
        (ICService.heartbeat, [ICVersion(1, 0), ICVersion(3, 0)], ICVersion(3, 0)),
        (ICService.shutdown, [ICVersion(1, 0), ICVersion(3, 0), ICVersion(3, 1), ICVersion(3, 2)], ICVersion(3, 2)),
        (ICService.timeSync, [ICVersion(1, 0), ICVersion(3, 0), ICVersion(4, 0)], ICVersion(4, 0)),
        (ICService.kvp, [ICVersion(1, 0), ICVersion(3, 0), ICVersion(4, 0), ICVersion(5, 0)], ICVersion(4, 0)),
        (ICService.vss, [ICVersion(5, 0), ICVersion(6, 0), ICVersion(7, 0)], ICVersion(5, 0)),
        (ICService.fcopy, [ICVersion(1, 1)], ICVersion(1, 1)),
    ])
    func linuxTakesItsNewestVersionTheHostLists(service: ICService, host: [ICVersion], expected: ICVersion) throws {
        let a = try answer(service, offering: host)
        #expect(a.versions == ICNegotiatedVersions(framework: .utilFWVersion, service: expected))
        // The same choice whatever order the host lists its versions in.
        let reversed = try answer(service, framework: Self.hostFramework.reversed(), offering: host.reversed())
        #expect(reversed.versions == a.versions)
    }

    @Test func everyVersionOfEveryServiceIsAcceptedAlone() throws {
        for service in ICService.all {
            for v in service.serviceVersions {
                for fw in service.frameworkVersions {
                    let a = try answer(service, framework: [fw], offering: [v])
                    #expect(a.versions == ICNegotiatedVersions(framework: fw, service: v), "\(service) \(v)")
                }
            }
        }
    }

    @Test func aWindowsServer2008HostGetsTheOldVersions() throws {
        let old = [ICVersion(1, 0)]
        #expect(try answer(.heartbeat, framework: old, offering: old).versions
                    == ICNegotiatedVersions(framework: .utilWS2K8FWVersion, service: .hbVersion1))
        #expect(try answer(.kvp, framework: old, offering: old).versions
                    == ICNegotiatedVersions(framework: .utilWS2K8FWVersion, service: .kvpWS2008SrvVersion))
        // hv_snapshot.c has no framework 1.0.
        #expect(try answer(.vss, framework: old, offering: [ICVersion(5, 0)]).versions == nil)
    }

    @Test func theAnswerIsTheRequestPatchedAtLinuxsOffsets() throws {
        let request = ICService.timeSync.negotiateRequest(
            frameworkVersions: Self.hostFramework, serviceVersions: [ICVersion(3, 0), ICVersion(4, 0)],
            transactionID: 0x42)
        #expect(request.count == 28 + 8 + 4 * 4)
        let a = try ICService.timeSync.linuxAnswer(to: request)
        #expect(a.response.count == request.count)
        var expected = request
        expected[18] = 0x10; expected[19] = 0          // icmsgsize
        expected[25] = 0x05                            // icflags: TRANSACTION | RESPONSE
        expected[28] = 1; expected[29] = 0             // icframe_vercnt
        expected[30] = 1; expected[31] = 0             // icmsg_vercnt
        expected.replaceSubrange(36..<44, with: [3, 0, 0, 0, 4, 0, 0, 0])
        #expect(a.response == expected)
        #expect(a.response[24] == 0x42, "transaction id echoed")
        // Entries past the two Linux writes keep the host's bytes.
        #expect(Array(a.response[44...]) == Array(request[44...]))
    }

    @Test func noCommonFrameworkIsARefusalCarryingTheHostsCounts() throws {
        let request = ICNegotiation.request(frameworkVersions: [ICVersion(9, 9), ICVersion(8, 8)],
                                            serviceVersions: [ICVersion(3, 0), ICVersion(1, 0), ICVersion(7, 7)])
        let a = try ICService.heartbeat.linuxAnswer(to: request)
        #expect(a.versions == nil)
        #expect(Array(a.response[28..<32]) == [0, 0, 0, 0])
        #expect(Array(a.response[36..<44]) == [2, 0, 0, 0, 3, 0, 0, 0])
        #expect(try ICNegotiation.parseAnswer(a.response) == nil)
    }

    @Test func aRefusalLeavesTheHostsStatusAndSetsOnlyTheResponseFlags() throws {
        var request = ICNegotiation.request(frameworkVersions: [ICVersion(9, 0)], serviceVersions: [ICVersion(9, 0)])
        request.replaceSubrange(20..<24, with: [0x11, 0x22, 0x33, 0x44])  // icmsg_hdr.status
        request[25] = 0xFF
        let a = try ICService.shutdown.linuxAnswer(to: request)
        #expect(a.versions == nil)
        let m = try ICMessage(packet: a.response)
        #expect(m.header.status == ICStatus(rawValue: 0x4433_2211))
        #expect(m.header.icflags == [.transaction, .response])
        #expect(m.header.icmsgsize == ICNegotiation.linuxResponseSize)
    }

    @Test func aCommonFrameworkWithoutACommonServiceVersionKeepsTheFramework() throws {
        let request = ICNegotiation.request(frameworkVersions: [ICVersion(3, 0)], serviceVersions: [ICVersion(2, 0)])
        let a = try ICService.shutdown.linuxAnswer(to: request)
        #expect(a.versions == nil)
        #expect(Array(a.response[28..<32]) == [0, 0, 0, 0])
        #expect(Array(a.response[36..<44]) == [3, 0, 0, 0, 1, 0, 0, 0])
    }

    @Test func anAnswerEntryPastTheRequestIsNotSent() throws {
        // One framework version and no service version: 40 bytes, the second entry would be at 40.
        let request = ICNegotiation.request(frameworkVersions: [ICVersion(3, 0)], serviceVersions: [])
        #expect(request.count == 40)
        let a = try ICService.heartbeat.linuxAnswer(to: request)
        #expect(a.response.count == 40)
        #expect(a.versions == nil)
        #expect(Array(a.response[36..<40]) == [3, 0, 0, 0])
    }

    @Test func theHostReadsTheAgreedVersions() throws {
        for service in ICService.all {
            let request = service.negotiateRequest(frameworkVersions: Self.hostFramework,
                                                   serviceVersions: service.serviceVersions.reversed())
            let a = try service.linuxAnswer(to: request)
            let parsed = try ICNegotiation.parseAnswer(a.response)
            #expect(parsed == a.versions, "\(service)")
            #expect(parsed?.service == service.serviceVersions.first, "\(service)")
        }
    }

    @Test func theHostRequestIsWellFormed() throws {
        let bytes = ICService.kvp.negotiateRequest(frameworkVersions: Self.hostFramework,
                                                   serviceVersions: ICService.kvpVersions, transactionID: 7)
        let m = try ICMessage(packet: bytes)
        #expect(m.pipe == VMBusPipeHeader(flags: 1, msgsize: UInt32(bytes.count - 8)))
        #expect(m.header.icmsgtype == .negotiate)
        #expect(m.header.icflags == [.transaction, .request])
        #expect(m.header.ictransactionID == 7)
        #expect(Int(m.header.icmsgsize) == m.body.count)
        let n = try m.decodeBody(ICNegotiateMessage.self)
        #expect(n.frameworkVersions == Self.hostFramework)
        #expect(n.serviceVersions == ICService.kvpVersions)
    }

    // MARK: Malformed requests

    func hostile(frameworkCount: UInt16, serviceCount: UInt16, versions: Int) -> [UInt8] {
        var bytes = ICNegotiation.request(frameworkVersions: Array(repeating: ICVersion(3, 0), count: versions),
                                          serviceVersions: [])
        bytes[28] = UInt8(truncatingIfNeeded: frameworkCount); bytes[29] = UInt8(frameworkCount >> 8)
        bytes[30] = UInt8(truncatingIfNeeded: serviceCount); bytes[31] = UInt8(serviceCount >> 8)
        return bytes
    }

    @Test func countsLargerThanTheMessageAreRefusedNotTrusted() throws {
        let bytes = hostile(frameworkCount: 5, serviceCount: 5, versions: 2)
        #expect(throws: WireError.countTooLarge(field: "icversion_data", count: 10, limit: 2)) {
            try ICService.heartbeat.linuxAnswer(to: bytes)
        }
        let refusal = try #require(ICNegotiation.linuxRefusal(of: bytes))
        #expect(refusal.count == bytes.count)
        #expect(Array(refusal[28..<32]) == [0, 0, 0, 0])
        #expect(Array(refusal[36..<44]) == [5, 0, 0, 0, 5, 0, 0, 0])
        #expect(refusal[25] == 0x05 && refusal[18] == 0x10)
        #expect(try ICNegotiation.parseAnswer(refusal) == nil)
    }

    @Test func countsOverLinuxsMaximumAreRefused() throws {
        let bytes = hostile(frameworkCount: 101, serviceCount: 0, versions: 101)
        #expect(throws: WireError.countTooLarge(field: "icframe_vercnt", count: 101, limit: 100)) {
            try ICService.heartbeat.linuxAnswer(to: bytes)
        }
        let huge = hostile(frameworkCount: 0xFFFF, serviceCount: 0xFFFF, versions: 1)
        #expect(throws: WireError.self) { try ICService.heartbeat.linuxAnswer(to: huge) }
        // At the limit it is fine.
        #expect(try ICService.heartbeat.linuxAnswer(to: hostile(frameworkCount: 100, serviceCount: 0, versions: 100)).versions == nil)
    }

    @Test func everyTruncatedRequestThrowsAndGetsLinuxsAnswer() throws {
        let full = ICService.heartbeat.negotiateRequest(frameworkVersions: Self.hostFramework,
                                                        serviceVersions: [ICVersion(3, 0)])
        for n in 0..<36 {
            let prefix = Array(full.prefix(n))
            #expect(throws: WireError.self, "\(n) bytes") { try ICService.heartbeat.linuxAnswer(to: prefix) }
            let refusal = ICNegotiation.linuxRefusal(of: prefix)
            if n < 28 {
                #expect(refusal == nil, "Linux drops \(n) bytes")
            } else if n < 32 {
                var flagsOnly = prefix
                flagsOnly[25] = 0x05
                #expect(refusal == flagsOnly, "\(n) bytes: only the flags change")
            } else {
                #expect(refusal?.count == n)
                #expect(refusal.map { Array($0[28..<32]) } == [0, 0, 0, 0])
            }
        }
        // Cut inside the versions: more versions counted than present.
        #expect(throws: WireError.self) { try ICService.heartbeat.linuxAnswer(to: Array(full.dropLast(1))) }
    }

    @Test func theHostRefusesMalformedAnswers() throws {
        let request = ICService.heartbeat.negotiateRequest(frameworkVersions: Self.hostFramework,
                                                           serviceVersions: ICService.hbVersions)
        #expect(throws: WireError.self) { try ICNegotiation.parseAnswer(request) }  // not a response
        var answer = try ICService.heartbeat.linuxAnswer(to: request).response
        answer[28] = 2
        #expect(throws: WireError.self) { try ICNegotiation.parseAnswer(answer) }
        answer[28] = 1
        answer[12] = UInt8(ICMessageType.heartbeat.rawValue)
        #expect(throws: WireError.invalidValue(field: "icmsgtype", value: 1)) { try ICNegotiation.parseAnswer(answer) }
        answer[12] = 0
        #expect(throws: WireError.self) { try ICNegotiation.parseAnswer(Array(answer.prefix(40))) }
        #expect(try ICNegotiation.parseAnswer(answer) != nil)
    }
}
