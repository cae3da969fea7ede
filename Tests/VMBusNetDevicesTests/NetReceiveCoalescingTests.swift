import Testing
import VMBusNetProtocol
import VMBusNetVSC
import VMBusNetVSP
import VMBusTestSupport
import VMBusTransport

/// Frames a backend hands over unfinished (a TAP's GSO): one RSC packet to a guest that turned RSC on, cut
/// and finished by the host for one that did not; partial checksums finished either way.
@Suite(.serialized)
struct NetReceiveCoalescingTests {
    typealias T = NetOffloadTests

    /// A TCP/IPv4 frame of `payload` bytes as Linux's stack hands a GSO frame to a TAP: lengths of the whole
    /// frame, a valid IPv4 header checksum, the TCP field the pseudo-header sum with the length.
    static func gsoFrame(payload: Int) -> (frame: [UInt8], offload: FrameOffload) {
        var f = complete(payload: payload)
        let pseudo = T.onesSum(f[26..<34], 6 + UInt32(f.count - 34))
        f[50] = UInt8(pseudo >> 8); f[51] = UInt8(pseudo & 0xFF)
        return (f, FrameOffload(checksumStart: 34, checksumOffset: 16, segmentation: .tcpIPv4, segmentSize: 1448, headerLength: 54))
    }

    /// The same frame with its checksums complete.
    static func complete(payload: Int) -> [UInt8] {
        var f = ipv4Frame(tcp: true, payload: payload)
        for i in 0..<6 { f[i] = NetRig.mac[i]; f[6 + i] = 0x02 }
        return f
    }

    static func deliverRetrying(_ vsp: NetVSP, _ frame: [UInt8], _ offload: FrameOffload) -> NetDelivery {
        for _ in 0..<2000 {
            let r = frame.withUnsafeBytes { vsp.deliver($0, offload: offload) }
            if r != .busy { return r }
            sleepNanoseconds(1_000_000)
        }
        return .busy
    }

    @Test func aGSOFrameReachesAnRSCGuestAsOneVerifiedFrame() throws {
        let rig = try NetRig(mtu: 1500, recordsReceiveInfo: true)
        defer { rig.stop() }
        try rig.start()
        #expect(rig.nic.receiveCoalescing)
        let (frame, offload) = Self.gsoFrame(payload: 40_000)
        #expect(Self.deliverRetrying(rig.vsp, frame, offload) == .accepted)
        let got = rig.takeReceivedWithInfo(1)
        let (joined, info) = try #require(got.first)
        #expect(info.checksumVerified)
        #expect(info.fragments == (frame.count + rig.vsp.receiveSlotSize - 1) / (rig.vsp.receiveSlotSize - 76) || info.fragments > 20)
        #expect(firstDifference(joined, Self.complete(payload: 40_000)) == nil, "the frame, its TCP checksum finished")
        #expect(rig.vsp.counterSnapshot.rxCoalesced == 1)
        #expect(rig.nic.counterSnapshot.rxCoalesced == 1)
        #expect(rig.nic.counterSnapshot.malformed == 0)
    }

    @Test func aGuestWithoutRSCGetsValidSegments() throws {
        let rig = try NetRig(mtu: 1500, guest: { $0.receiveCoalescing = false }, recordsReceiveInfo: true)
        defer { rig.stop() }
        try rig.start()
        #expect(!rig.nic.receiveCoalescing)
        let payload = 20_000
        let (frame, offload) = Self.gsoFrame(payload: payload)
        #expect(Self.deliverRetrying(rig.vsp, frame, offload) == .accepted)
        let segments = (payload + 1447) / 1448
        let got = rig.takeReceivedWithInfo(segments)
        #expect(got.count == segments)
        #expect(got.allSatisfy { !$0.1.checksumVerified && $0.1.fragments == 1 })
        T.expectSegments(got.map(\.0), of: Self.complete(payload: payload), payload: payload)
    }

    @Test func aPartialChecksumIsFinishedBeforeTheGuestSeesIt() throws {
        let rig = try NetRig(mtu: 1500)
        defer { rig.stop() }
        try rig.start()
        var whole = ipv4Frame(tcp: true, payload: 900)
        for i in 0..<6 { whole[i] = NetRig.mac[i]; whole[6 + i] = 0x02 }
        var partial = whole
        let pseudo = T.onesSum(partial[26..<34], 6 + UInt32(partial.count - 34))
        partial[50] = UInt8(pseudo >> 8); partial[51] = UInt8(pseudo & 0xFF)
        #expect(Self.deliverRetrying(rig.vsp, partial, FrameOffload(checksumStart: 34, checksumOffset: 16)) == .accepted)
        let got = try #require(rig.takeReceived(1).first)
        #expect(firstDifference(got, whole) == nil)
    }
}
