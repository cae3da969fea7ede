import Testing
import VMBusICProtocol
import VMBusLayoutTesting
import VMBusWire

/// Every KVP structure, and every arm of the `hv_kvp_msg` unions, against hv_utils.ko's layouts.
@Suite struct KVPGoldenLayoutTests {
    static func sampleExchange() -> KVPExchangeValue {
        KVPExchangeValue(valueType: KVPValueType(rawValue: 0x0102_0304), keySize: 0x1112_1314,
                         valueSize: 0x2122_2324, key: pattern(512, seed: 3), value: pattern(2048, seed: 5))
    }

    static func checkExchange(_ c: inout LayoutCheck, prefix p: String) {
        let v = pattern(2048, seed: 5)
        c.value(p + "value_type", 0x0102_0304)
        c.value(p + "key_size", 0x1112_1314)
        c.value(p + "value_size", 0x2122_2324)
        c.bytes(p + "key", pattern(512, seed: 3))
        c.bytes(p + "value", v)
        c.value(p + "value_u32", UInt64(v[0]) | UInt64(v[1]) << 8 | UInt64(v[2]) << 16 | UInt64(v[3]) << 24)
        c.value(p + "value_u64", (0..<8).reduce(UInt64(0)) { $0 | UInt64(v[$1]) << (8 * UInt64($1)) })
    }

    static func sampleIPValue() -> KVPIPAddressValue {
        var ip = KVPIPAddressValue(addrFamily: 0x61, dhcpEnabled: 0x62)
        ip.adapterID = pattern(256, seed: 11)
        ip.ipAddr = pattern(2048, seed: 13)
        ip.subNet = pattern(2048, seed: 17)
        ip.gateWay = pattern(1024, seed: 19)
        ip.dnsAddr = pattern(2048, seed: 23)
        return ip
    }

    static func checkIPValue(_ c: inout LayoutCheck, prefix p: String) {
        c.bytes(p + "adapter_id", pattern(256, seed: 11))
        c.value(p + "addr_family", 0x61)
        c.value(p + "dhcp_enabled", 0x62)
        c.bytes(p + "ip_addr", pattern(2048, seed: 13))
        c.bytes(p + "sub_net", pattern(2048, seed: 17))
        c.bytes(p + "gate_way", pattern(1024, seed: 19))
        c.bytes(p + "dns_addr", pattern(2048, seed: 23))
    }

    @Test func kvpHeaderMatchesLinux() throws {
        let h = KVPHeader(operation: KVPOperation(rawValue: 0x81), pool: KVPPool(rawValue: 0x92), pad: 0xA1A2)
        var c = LayoutCheck(try icLayout(KVPHeader.cName), encoded(h))
        c.size()
        c.value("operation", 0x81)
        c.value("pool", 0x92)
        c.value("pad", 0xA1A2)
        c.complete()
        #expect(try KVPHeader(wireBytes: c.bytes) == h)
    }

    @Test func exchangeValueAndItsGetAndSetWrappersMatchLinux() throws {
        let v = Self.sampleExchange()
        var c = LayoutCheck(try icLayout(KVPExchangeValue.cName), encoded(v))
        c.size()
        Self.checkExchange(&c, prefix: "")
        c.complete()
        #expect(try KVPExchangeValue(wireBytes: c.bytes) == v)
        for wrapper in ["hv_kvp_msg_get", "hv_kvp_msg_set"] {
            var w = LayoutCheck(try icLayout(wrapper), encoded(v))
            w.size()
            Self.checkExchange(&w, prefix: "data.")
            w.complete()
        }
    }

    @Test func deleteMatchesLinux() throws {
        let d = KVPDelete(keySize: 0x3132_3334, key: pattern(512, seed: 29))
        var c = LayoutCheck(try icLayout(KVPDelete.cName), encoded(d))
        c.size()
        c.value("key_size", 0x3132_3334)
        c.bytes("key", pattern(512, seed: 29))
        c.complete()
        #expect(try KVPDelete(wireBytes: c.bytes) == d)
    }

    @Test func enumerateMatchesLinux() throws {
        let e = KVPEnumerate(index: 0x4142_4344, data: Self.sampleExchange())
        var c = LayoutCheck(try icLayout(KVPEnumerate.cName), encoded(e))
        c.size()
        c.value("index", 0x4142_4344)
        Self.checkExchange(&c, prefix: "data.")
        c.complete()
        #expect(try KVPEnumerate(wireBytes: c.bytes) == e)
    }

    @Test func registerMatchesLinux() throws {
        let r = KVPRegister(version: pattern(512, seed: 31))
        var c = LayoutCheck(try icLayout(KVPRegister.cName), encoded(r))
        c.size()
        c.bytes("version", pattern(512, seed: 31))
        c.complete()
    }

    @Test func ipAddressValueMatchesLinux() throws {
        let ip = Self.sampleIPValue()
        var c = LayoutCheck(try icLayout(KVPIPAddressValue.cName), encoded(ip))
        c.size()
        Self.checkIPValue(&c, prefix: "")
        c.complete()
        #expect(try KVPIPAddressValue(wireBytes: c.bytes) == ip)
    }

    @Test func ipMessageMatchesLinuxWithTheSettingsAtByteTwo() throws {
        let m = KVPIPMessage(operation: KVPOperation(rawValue: 0x51), pool: KVPPool(rawValue: 0x52),
                             kvpIPVal: Self.sampleIPValue())
        var c = LayoutCheck(try icLayout(KVPIPMessage.cName), encoded(m))
        c.size()
        c.value("operation", 0x51)
        c.value("pool", 0x52)
        Self.checkIPValue(&c, prefix: "kvp_ip_val.")
        c.complete()
        #expect(c.layout.field("kvp_ip_val")?.offset == 2)
        #expect(try KVPIPMessage(wireBytes: c.bytes) == m)
    }

    // hv_kvp_msg: one check per arm of the body union; the arms not written overlay the one that is.
    static let bodyArms: Set<String> = ["body.kvp_get", "body.kvp_set", "body.kvp_delete", "body.kvp_enum_data",
                                        "body.kvp_ip_val", "body.kvp_register"]

    func kvpMessageCheck(_ body: some WireEncodable, arm: String) throws -> LayoutCheck {
        let m = KVPMessage(operation: KVPOperation(rawValue: 0x81), pool: KVPPool(rawValue: 0x92), member: body)
        var c = LayoutCheck(try icLayout(KVPMessage.cName), m.wireBytes)
        c.size()
        c.value("kvp_hdr.operation", 0x81)
        c.value("kvp_hdr.pool", 0x92)
        c.value("kvp_hdr.pad", 0)
        c.value("error", 0x9281)
        #expect(KVPMessage.bodySize == c.layout.field("body")?.size)
        return c
    }

    @Test func kvpMessageGetAndSetArmsMatchLinux() throws {
        for arm in ["body.kvp_get", "body.kvp_set"] {
            var c = try kvpMessageCheck(Self.sampleExchange(), arm: arm)
            Self.checkExchange(&c, prefix: arm + ".data.")
            c.complete(ignoring: Self.bodyArms.subtracting([arm]))
        }
    }

    @Test func kvpMessageDeleteArmMatchesLinux() throws {
        var c = try kvpMessageCheck(KVPDelete(keySize: 0x3132_3334, key: pattern(512, seed: 29)), arm: "body.kvp_delete")
        c.value("body.kvp_delete.key_size", 0x3132_3334)
        c.bytes("body.kvp_delete.key", pattern(512, seed: 29))
        c.complete(ignoring: Self.bodyArms.subtracting(["body.kvp_delete"]))
    }

    @Test func kvpMessageEnumerateArmMatchesLinux() throws {
        var c = try kvpMessageCheck(KVPEnumerate(index: 0x4142_4344, data: Self.sampleExchange()),
                                    arm: "body.kvp_enum_data")
        c.value("body.kvp_enum_data.index", 0x4142_4344)
        Self.checkExchange(&c, prefix: "body.kvp_enum_data.data.")
        c.complete(ignoring: Self.bodyArms.subtracting(["body.kvp_enum_data"]))
        let back = try KVPMessage(wireBytes: c.bytes)
        #expect(try back.kvpEnumData() == KVPEnumerate(index: 0x4142_4344, data: Self.sampleExchange()))
    }

    @Test func kvpMessageIPArmMatchesLinux() throws {
        var c = try kvpMessageCheck(Self.sampleIPValue(), arm: "body.kvp_ip_val")
        Self.checkIPValue(&c, prefix: "body.kvp_ip_val.")
        c.complete(ignoring: Self.bodyArms.subtracting(["body.kvp_ip_val"]))
        #expect(try KVPMessage(wireBytes: c.bytes).kvpIPVal() == Self.sampleIPValue())
    }

    @Test func kvpMessageRegisterArmMatchesLinux() throws {
        var c = try kvpMessageCheck(KVPRegister(version: pattern(512, seed: 31)), arm: "body.kvp_register")
        c.bytes("body.kvp_register.version", pattern(512, seed: 31))
        c.complete(ignoring: Self.bodyArms.subtracting(["body.kvp_register"]))
    }

    @Test func kvpMessageErrorOverlaysTheHeader() throws {
        var m = KVPMessage(header: KVPHeader(operation: .set, pool: .guest))
        m.error = ICStatus(rawValue: 0xA1B2_C3D4)
        var c = LayoutCheck(try icLayout(KVPMessage.cName), m.wireBytes)
        c.size()
        c.value("error", 0xA1B2_C3D4)
        c.value("kvp_hdr.operation", 0xD4)
        c.value("kvp_hdr.pool", 0xC3)
        c.value("kvp_hdr.pad", 0xA1B2)
        c.zero("body")
        c.complete()
    }
}
