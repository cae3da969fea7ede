import Testing
import VMBusICProtocol
import VMBusLayoutTesting
import VMBusWire

/// The per-service rules Linux 6.12 applies once a message has decoded: answers in place, shutdown flags,
/// the time-sync layout per version, the VSS and KVP `error` overlays.
@Suite struct ICServiceMessageTests {
    static func request(_ type: ICMessageType, body: [UInt8], transactionID: UInt8 = 0x33) -> ICMessage {
        ICMessage(header: ICMessageHeader(icverframe: .utilFWVersion, icmsgtype: type, icvermsg: ICVersion(3, 0),
                                          icmsgsize: 0, ictransactionID: transactionID), body: body)
    }

    @Test func aPacketShorterThanICMSG_HDRIsTruncated() throws {
        let bytes = Self.request(.heartbeat, body: HeartbeatMessage(seqNum: 1).wireBytes).wireBytes
        for n in 0..<ICMessage.headerSize {
            #expect(throws: WireError.self, "\(n)") { try ICMessage(packet: Array(bytes.prefix(n))) }
        }
        let empty = try ICMessage(packet: Array(bytes.prefix(ICMessage.headerSize)))
        #expect(empty.body.isEmpty)
        #expect(throws: WireError.self) { try empty.decodeBody(HeartbeatMessage.self) }
    }

    @Test func anUnknownTypeGetsHV_E_FAILAtTheRequestsLength() throws {
        let m = Self.request(ICMessageType(rawValue: 6), body: [1, 2, 3, 4])
        let answer = m.linuxResponse(status: .fail)
        #expect(answer.header.icflags == [.transaction, .response])
        #expect(answer.header.status == .fail)
        #expect(answer.header.ictransactionID == 0x33)
        #expect(answer.wireBytes.count == m.wireBytes.count)
        #expect(answer.body == m.body)
        #expect(ICMessageType(rawValue: 6).description == "IC message type 6")
    }

    @Test func aNewBodyIsCutOrPaddedToTheRequestsLength() throws {
        let m = Self.request(.heartbeat, body: Array(le(UInt64(5))))
        let h = try m.decodeBody(HeartbeatMessage.self)
        let answer = m.linuxResponse(status: .ok, body: h.linuxResponse.wireBytes)
        #expect(answer.body == le(UInt64(6)))
        let longer = Self.request(.heartbeat, body: Array(repeating: 0xAA, count: 48))
        #expect(longer.linuxResponse(status: .ok, body: [1]).body == [1] + Array(repeating: 0, count: 47))
    }

    @Test(arguments: [
        (UInt32(0), ShutdownMessage.LinuxAction.shutdown), (1, .shutdown), (2, .restart), (3, .restart),
        (4, .hibernate), (5, .hibernate), (6, .invalid), (8, .invalid), (0x8000_0000, .invalid),
    ])
    func shutdownFlagsAsLinuxReadsThem(flags: UInt32, action: ShutdownMessage.LinuxAction) throws {
        let s = ShutdownMessage(flags: ShutdownFlags(rawValue: flags))
        #expect(s.linuxAction == action)
        let status = s.linuxStatus(hibernationSupported: false)
        #expect(status == (action == .shutdown || action == .restart ? ICStatus.ok : .fail))
        #expect(s.linuxStatus(hibernationSupported: true) == (action == .invalid ? ICStatus.fail : .ok))
    }

    @Test func timeSyncUsesTheReferenceLayoutFromVersionFour() throws {
        #expect(TimeSyncLayout(serviceVersion: .tsVersion) == .reference)
        #expect(TimeSyncLayout(serviceVersion: ICVersion(3, 1)) == .reference)
        #expect(TimeSyncLayout(serviceVersion: .tsVersion3) == .data)
        #expect(TimeSyncLayout(serviceVersion: .tsVersion1) == .data)
        #expect(TimeSyncLayout.data.wireSize == 25 && TimeSyncLayout.reference.wireSize == 22)
        // 1970-01-01 in the hosts' units.
        #expect(TimeSyncLayout.windowsEpochDelta == 11_644_473_600 * 10_000_000)
    }

    @Test func theDaemonsErrorOverlaysTheHeaderBytes() throws {
        var v = VSSMessage(operation: .freeze)
        v.error = .fail
        #expect(Array(v.wireBytes.prefix(4)) == le(ICStatus.fail.rawValue))
        #expect(v.operation == VSSOperation(rawValue: 0x05))
        var k = KVPMessage(header: KVPHeader(operation: .enumerate, pool: .auto))
        k.error = .cont
        #expect(Array(k.wireBytes.prefix(4)) == le(ICStatus.cont.rawValue))
        #expect(k.kvpHeader.operation == KVPOperation(rawValue: 0x03))
    }

    @Test func operationNamesAreTheCNames() {
        #expect(VSSOperation.register1.description == "VSS_OP_REGISTER1")
        #expect(KVPOperation.register.description == "KVP_OP_GET_IP_INFO", "KVP_OP_REGISTER is the same number")
        #expect(KVPPool(rawValue: 7).description == "KVP pool 7")
        #expect(FCopyOperation.writeToFile.description == "WRITE_TO_FILE")
        #expect(ICStatus(rawValue: 0x1234).description == "IC status 0x1234")
    }
}
