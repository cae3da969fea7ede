import Testing
import VMBusICProtocol
import VMBusLayoutTesting
import VMBusWire

/// The framing and the heartbeat, shutdown and time-sync bodies, encoded by us, against Linux's layouts.
@Suite struct ICGoldenLayoutTests {
    @Test func pipeHeaderMatchesLinux() throws {
        var c = LayoutCheck(try icLayout(VMBusPipeHeader.cName),
                            encoded(VMBusPipeHeader(flags: 0x1112_1314, msgsize: 0x2122_2324)))
        c.size()
        c.value("flags", 0x1112_1314)
        c.value("msgsize", 0x2122_2324)
        c.complete()
        #expect(VMBusPipeHeader.wireSize == c.layout.size)
    }

    @Test func icVersionMatchesLinux() throws {
        var c = LayoutCheck(try linuxLayout(ICVersion.cName), encoded(ICVersion(0x0102, 0x0304)))
        c.size()
        c.value("major", 0x0102)
        c.value("minor", 0x0304)
        c.complete()
    }

    static let sampleHeader = ICMessageHeader(
        icverframe: ICVersion(0x0A01, 0x0A02), icmsgtype: ICMessageType(rawValue: 0x0B01),
        icvermsg: ICVersion(0x0C01, 0x0C02), icmsgsize: 0x0D01, status: ICStatus(rawValue: 0x0E01_0E02),
        ictransactionID: 0x3F, icflags: ICMessageFlags(rawValue: 0x6A), reserved: 0x7172)

    @Test func icMessageHeaderMatchesLinux() throws {
        var c = LayoutCheck(try linuxLayout(ICMessageHeader.cName), encoded(Self.sampleHeader))
        c.size()
        c.value("icverframe.major", 0x0A01)
        c.value("icverframe.minor", 0x0A02)
        c.value("icmsgtype", 0x0B01)
        c.value("icvermsg.major", 0x0C01)
        c.value("icvermsg.minor", 0x0C02)
        c.value("icmsgsize", 0x0D01)
        c.value("status", 0x0E01_0E02)
        c.value("ictransaction_id", 0x3F)
        c.value("icflags", 0x6A)
        c.value("reserved", 0x7172)
        c.complete()
        #expect(try ICMessageHeader(wireBytes: c.bytes) == Self.sampleHeader)
    }

    @Test func theFramingIsICMSG_HDRBytes() throws {
        let pipe = try icLayout(VMBusPipeHeader.cName)
        let header = try linuxLayout(ICMessageHeader.cName)
        #expect(try icConstant("ICMSG_HDR") == UInt64(pipe.size + header.size))
        #expect(ICMessage.headerSize == pipe.size + header.size)
        let m = ICMessage(header: Self.sampleHeader, body: [1, 2, 3])
        #expect(Array(m.wireBytes[8..<28]) == encoded(m.header))
        #expect(Array(m.wireBytes[28...]) == [1, 2, 3])
    }

    @Test func icNegotiateMatchesLinux() throws {
        let m = ICNegotiateMessage(frameworkVersions: [ICVersion(0x0101, 0x0102), ICVersion(0x0201, 0x0202)],
                                   serviceVersions: [ICVersion(0x0301, 0x0302)], reserved: 0x4142_4344)
        var c = LayoutCheck(try linuxLayout(ICNegotiateMessage.cName), encoded(m))
        #expect(c.bytes.count == c.layout.size + 3 * ICVersion.wireSize)
        #expect(ICNegotiateMessage.fixedSize == c.layout.size)
        c.value("icframe_vercnt", 2)
        c.value("icmsg_vercnt", 1)
        c.value("reserved", 0x4142_4344)
        c.bytes("icversion_data", [0x01, 0x01, 0x02, 0x01, 0x01, 0x02, 0x02, 0x02, 0x01, 0x03, 0x02, 0x03])
        c.value("icversion_data[].major", 0x0101)
        c.value("icversion_data[].minor", 0x0102)
        c.complete()
    }

    @Test func heartbeatMatchesLinux() throws {
        let h = HeartbeatMessage(seqNum: 0x0102_0304_0506_0708, reserved: (0..<8).map { 0x1000_0000 * UInt32($0 + 1) + 0x11 })
        var c = LayoutCheck(try icLayout(HeartbeatMessage.cName), encoded(h))
        c.size()
        c.value("seq_num", 0x0102_0304_0506_0708)
        c.bytes("reserved", h.reserved.flatMap { le($0) })
        c.complete()
        #expect(try HeartbeatMessage(wireBytes: c.bytes) == h)
    }

    @Test func shutdownMatchesLinux() throws {
        let s = ShutdownMessage(reasonCode: 0x0102_0304, timeoutSeconds: 0x1112_1314,
                                flags: ShutdownFlags(rawValue: 0x2122_2324), displayMessage: pattern(2048, seed: 9))
        var c = LayoutCheck(try icLayout(ShutdownMessage.cName), encoded(s))
        c.size()
        c.value("reason_code", 0x0102_0304)
        c.value("timeout_seconds", 0x1112_1314)
        c.value("flags", 0x2122_2324)
        c.bytes("display_message", pattern(2048, seed: 9))
        c.complete()
        #expect(try ShutdownMessage(wireBytes: c.bytes) == s)
    }

    @Test func timeSyncDataMatchesLinux() throws {
        let t = TimeSyncData(parenttime: 0x0102_0304_0506_0708, childtime: 0x1112_1314_1516_1718,
                             roundtriptime: 0x2122_2324_2526_2728, flags: TimeSyncFlags(rawValue: 0x39))
        var c = LayoutCheck(try icLayout(TimeSyncData.cName), encoded(t))
        c.size()
        c.value("parenttime", 0x0102_0304_0506_0708)
        c.value("childtime", 0x1112_1314_1516_1718)
        c.value("roundtriptime", 0x2122_2324_2526_2728)
        c.value("flags", 0x39)
        c.complete()
        #expect(c.layout.packed)
        #expect(try TimeSyncData(wireBytes: c.bytes) == t)
    }

    @Test func timeSyncReferenceDataMatchesLinux() throws {
        let t = TimeSyncReferenceData(parenttime: 0x0102_0304_0506_0708, vmreferencetime: 0x1112_1314_1516_1718,
                                      flags: TimeSyncFlags(rawValue: 0x29), leapflags: -3, stratum: 0x35,
                                      reserved: (0x41, 0x42, 0x43))
        var c = LayoutCheck(try icLayout(TimeSyncReferenceData.cName), encoded(t))
        c.size()
        c.value("parenttime", 0x0102_0304_0506_0708)
        c.value("vmreferencetime", 0x1112_1314_1516_1718)
        c.value("flags", 0x29)
        c.value("leapflags", 0xFD)
        c.value("stratum", 0x35)
        c.bytes("reserved", [0x41, 0x42, 0x43])
        c.complete()
        #expect(try TimeSyncReferenceData(wireBytes: c.bytes) == t)
    }
}
