import Testing
import VMBusICProtocol
import VMBusLayoutTesting
import VMBusWire

/// The VSS and file-copy structures against hv_utils.ko's layouts (fcopy: the rebuilt supplement).
@Suite struct VSSAndFCopyGoldenLayoutTests {
    @Test func vssHeaderMatchesLinux() throws {
        let h = VSSHeader(operation: VSSOperation(rawValue: 0x81), reserved: 0x0011_2233_4455_6677)
        var c = LayoutCheck(try icLayout(VSSHeader.cName), encoded(h))
        c.size()
        c.value("operation", 0x81)
        c.bytes("reserved", [0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        c.complete()
        #expect(try VSSHeader(wireBytes: c.bytes) == h)
    }

    @Test func vssCheckFeatureAndDMInfoMatchLinux() throws {
        var f = LayoutCheck(try icLayout(VSSCheckFeature.cName), encoded(VSSCheckFeature(flags: 0x1122_3344)))
        f.size()
        f.value("flags", 0x1122_3344)
        f.complete()
        var d = LayoutCheck(try icLayout(VSSCheckDMInfo.cName), encoded(VSSCheckDMInfo(flags: 0x5566_7788)))
        d.size()
        d.value("flags", 0x5566_7788)
        d.complete()
    }

    @Test func vssMessageMatchesLinuxInBothViewsOfEachUnion() throws {
        var m = VSSMessage(operation: VSSOperation(rawValue: 0x85), flags: 0x1122_3344)
        m.vssHeader = VSSHeader(operation: VSSOperation(rawValue: 0x85), reserved: 0x0011_2233_4455_6677)
        var c = LayoutCheck(try icLayout(VSSMessage.cName), encoded(m))
        c.size()
        c.value("vss_hdr.operation", 0x85)
        c.bytes("vss_hdr.reserved", [0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11])
        c.value("error", 0x5566_7785)
        c.value("vss_cf.flags", 0x1122_3344)
        c.value("dm_info.flags", 0x1122_3344)
        c.complete()
        #expect(m.error == ICStatus(rawValue: 0x5566_7785))
        #expect(try VSSMessage(wireBytes: c.bytes) == m)
    }

    static let id0 = GUID("01020304-0506-0708-090a-0b0c0d0e0f10")!
    static let id1 = GUID("11121314-1516-1718-191a-1b1c1d1e1f20")!

    static func checkHeader(_ c: inout LayoutCheck, prefix p: String, operation: UInt64) {
        c.value(p + "operation", operation)
        c.guid(p + "service_id0", id0)
        c.guid(p + "service_id1", id1)
    }

    @Test func fcopyHeaderMatchesLinux() throws {
        let h = FCopyHeader(operation: FCopyOperation(rawValue: 0xA1A2_A3A4), serviceID0: Self.id0, serviceID1: Self.id1)
        var c = LayoutCheck(try icLayout(FCopyHeader.cName), encoded(h))
        c.size()
        Self.checkHeader(&c, prefix: "", operation: 0xA1A2_A3A4)
        c.complete()
        #expect(try FCopyHeader(wireBytes: c.bytes) == h)
    }

    @Test func startFCopyMatchesLinux() throws {
        let s = FCopyStart(hdr: FCopyHeader(operation: .startFileCopy, serviceID0: Self.id0, serviceID1: Self.id1),
                           fileName: pattern(520, seed: 41), pathName: pattern(520, seed: 43),
                           copyFlags: FCopyFlags(rawValue: 0x5152_5354), fileSize: 0x6162_6364_6566_6768)
        var c = LayoutCheck(try icLayout(FCopyStart.cName), encoded(s))
        c.size()
        Self.checkHeader(&c, prefix: "hdr.", operation: 0)
        c.bytes("file_name", pattern(520, seed: 41))
        c.bytes("path_name", pattern(520, seed: 43))
        c.value("copy_flags", 0x5152_5354)
        c.value("file_size", 0x6162_6364_6566_6768)
        c.complete()
        #expect(try FCopyStart(wireBytes: c.bytes) == s)
    }

    @Test func doFCopyMatchesLinux() throws {
        let d = try FCopyData(hdr: FCopyHeader(operation: .writeToFile, serviceID0: Self.id0, serviceID1: Self.id1),
                              pad: 0x7172_7374, offset: 0x7182_8384_8586_8788, data: pattern(6144, seed: 47))
        var c = LayoutCheck(try icLayout(FCopyData.cName), encoded(d))
        c.size()
        Self.checkHeader(&c, prefix: "hdr.", operation: 1)
        c.value("pad", 0x7172_7374)
        c.value("offset", 0x7182_8384_8586_8788)
        c.value("size", 6144)
        c.bytes("data", pattern(6144, seed: 47))
        c.complete()
        #expect(c.layout.packed)
        #expect(try FCopyData(wireBytes: c.bytes) == d)
    }
}
