import Testing
import VMBusNetProtocol
import VMBusNetVSC
import VMBusNetVSP
import VMBusTestSupport

/// Segmentation and 802.1Q tags the guest leaves to the host, checked on what reaches the backend.
@Suite(.serialized)
struct NetOffloadTests {
    /// The one's-complement sum of `bytes` plus `initial`, folded (0xFFFF over data that includes a correct
    /// checksum).
    static func onesSum(_ bytes: ArraySlice<UInt8>, _ initial: UInt32 = 0) -> UInt16 {
        var s = initial
        var a = Array(bytes)
        if a.count % 2 == 1 { a.append(0) }
        for k in stride(from: 0, to: a.count, by: 2) { s += UInt32(a[k]) << 8 | UInt32(a[k + 1]) }
        while s > 0xFFFF { s = (s & 0xFFFF) + (s >> 16) }
        return UInt16(s)
    }

    static func be16(_ f: [UInt8], _ i: Int) -> Int { Int(f[i]) << 8 | Int(f[i + 1]) }
    static func be32(_ f: [UInt8], _ i: Int) -> UInt32 { UInt32(be16(f, i)) << 16 | UInt32(be16(f, i + 2)) }

    @Test func largeTCPSendsAreSegmentedWithValidHeaders() throws {
        let rig = try NetRig(mtu: 1500, guest: { $0.largeSendOffload = true })
        defer { rig.stop() }
        try rig.start()
        #expect(rig.nic.largeSendMaxSize > 60_000)
        let payload = 20_000
        var big = ipv4Frame(tcp: true, payload: payload)
        big[47] = 0x18  // ACK | PSH
        let mss = 1448
        #expect(Self.sendRetrying(rig.nic, big, .tcpSegmentation(mss: mss, l4Offset: 34, ipv6: false)) == .sent)
        let segments = (payload + mss - 1) / mss
        let got = rig.backend.take(segments)
        #expect(got.count == segments)
        Self.expectSegments(got, of: big, payload: payload)
        #expect(rig.vsp.counterSnapshot.protocolErrors == 0, "\(rig.vsp.counterSnapshot.lastError ?? "")")
    }

    @Test func theVLANTagOfAPPIIsInsertedIntoTheFrame() throws {
        let rig = try NetRig()
        defer { rig.stop() }
        try rig.start()
        var seed = SplitMix64(seed: 12)
        let frame = testFrame(length: 200, sequence: 0, seed: &seed)
        let tag = NDISPacket8021QInfo(priority: 5, vlanID: 42)
        #expect(Self.sendRetrying(rig.nic, frame, NetVSC.TransmitOffload(vlan: tag)) == .sent)
        let got = try #require(rig.backend.take(1).first)
        #expect(got.count == 204)
        #expect(Array(got[0..<12]) == Array(frame[0..<12]))
        #expect(Array(got[12..<16]) == [0x81, 0x00, 0xA0, 42])
        #expect(firstDifference(Array(got[16...]), Array(frame[12...])) == nil)
    }

    @Test func anLSOSendWithBrokenHeadersIsRefusedAndCounted() throws {
        let rig = try NetRig(mtu: 1500, guest: { $0.largeSendOffload = true })
        defer { rig.stop() }
        try rig.start()
        var big = ipv4Frame(tcp: true, payload: 5000)
        big[14] = 0x65  // not IPv4
        #expect(Self.sendRetrying(rig.nic, big, .tcpSegmentation(mss: 1448, l4Offset: 34, ipv6: false)) == .sent)
        #expect(eventually { rig.vsp.counterSnapshot.protocolErrors == 1 })
        #expect(rig.backend.queuedFrames == 0)
        // An MSS of 1 would make one request cost 5000 frames: refused too.
        #expect(Self.sendRetrying(rig.nic, ipv4Frame(tcp: true, payload: 5000), .tcpSegmentation(mss: 1, l4Offset: 34, ipv6: false)) == .sent)
        #expect(eventually { rig.vsp.counterSnapshot.protocolErrors == 2 })
        #expect(rig.backend.queuedFrames == 0)
    }

    /// Each of `got` a valid IPv4/TCP segment of `big` (whose payload starts at 54), in order, together
    /// carrying its whole payload, PSH only on the last.
    static func expectSegments(_ got: [[UInt8]], of big: [UInt8], payload: Int) {
        var data: [UInt8] = []
        let firstSeq = be32(big, 38)
        for (i, f) in got.enumerated() {
            #expect(f.count <= 1514)
            #expect(onesSum(f[14..<34]) == 0xFFFF, "IPv4 header checksum of segment \(i)")
            let tcpLength = be16(f, 16) - 20
            #expect(tcpLength + 34 == f.count)
            let pseudo = UInt32(onesSum(f[26..<34])) + 6 + UInt32(tcpLength)
            #expect(onesSum(f[34...], pseudo) == 0xFFFF, "TCP checksum of segment \(i)")
            #expect(be32(f, 38) == firstSeq &+ UInt32(data.count))
            #expect((f[47] & 0x08 != 0) == (i == got.count - 1), "PSH only on the last")
            data += f[54...]
        }
        #expect(data.count == payload)
        #expect(firstDifference(data, Array(big[54...])) == nil)
    }

    static func sendRetrying(_ nic: NetVSC, _ frame: [UInt8], _ offload: NetVSC.TransmitOffload) -> NetVSCSendResult {
        NetDataPathTests.sendRetrying(nic, frame, offload: offload)
    }
}
