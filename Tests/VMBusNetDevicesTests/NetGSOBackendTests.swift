import Testing
import VMBusNetProtocol
import VMBusNetVSC
import VMBusNetVSP
import VMBusTestSupport

/// A backend that takes offloads (a TAP's GSO): NetVSP hands it LSO sends whole and checksums partial, in the
/// form a Linux stack takes them, and cutting or finishing them afterwards gives what NetVSP's own software
/// path gives.
@Suite(.serialized)
struct NetGSOBackendTests {
    typealias T = NetOffloadTests

    /// An LSOv2 send as Linux's netvsc makes it: IPv4 total length and header checksum 0, the TCP field the
    /// pseudo-header sum without the length.
    static func asNetvscSendsIt(_ frame: [UInt8]) -> [UInt8] {
        var f = frame
        f[16] = 0; f[17] = 0; f[24] = 0; f[25] = 0
        let pseudo = T.onesSum(f[26..<34], 6)
        f[50] = UInt8(pseudo >> 8); f[51] = UInt8(pseudo & 0xFF)
        return f
    }

    @Test func anLSOSendReachesTheBackendWholeAndCutsToValidSegments() throws {
        let rig = try NetRig(mtu: 1500, guest: { $0.largeSendOffload = true }, backendAcceptsOffloads: true)
        defer { rig.stop() }
        try rig.start()
        let payload = 20_000, mss = 1448
        var big = ipv4Frame(tcp: true, payload: payload)
        big[47] = 0x18 | 0x80  // ACK | PSH | CWR
        let sent = Self.asNetvscSendsIt(big)
        #expect(T.sendRetrying(rig.nic, sent, .tcpSegmentation(mss: mss, l4Offset: 34, ipv6: false)) == .sent)
        let got = rig.backend.takeWithOffloads(1)
        let (frame, offload) = try #require(got.first)
        #expect(offload == FrameOffload(checksumStart: 34, checksumOffset: 16, segmentation: .tcpIPv4, segmentSize: mss,
                                        headerLength: 54, explicitCongestion: true))
        #expect(frame.count == big.count)
        #expect(T.be16(frame, 16) == big.count - 14, "the IPv4 total length of the whole segment")
        #expect(T.onesSum(frame[14..<34]) == 0xFFFF, "IPv4 header checksum")
        let partial = UInt16(T.be16(frame, 50))
        #expect(partial == T.onesSum(frame[26..<34], 6 + UInt32(big.count - 34)), "the pseudo-header sum with the length")
        #expect(firstDifference(Array(frame[54...]), Array(big[54...])) == nil)
        #expect(rig.vsp.counterSnapshot.largeSendsPassed == 1)
        // What a receiving stack's GSO makes of it is a valid segmentation.
        var out = [UInt8](repeating: 0, count: 1514)
        var pieces: [[UInt8]] = []
        let cut = LargeSendOffload.segment(try #require(offload), source: frame, start: 0, length: frame.count, maxFrame: 1514,
                                           into: &out) { pieces.append([UInt8]($0)) }
        #expect(cut)
        #expect(pieces.count == (payload + mss - 1) / mss)
        T.expectSegments(pieces, of: big, payload: payload)
        #expect(pieces.dropFirst().allSatisfy { $0[47] & 0x80 == 0 }, "CWR only on the first")
    }

    @Test func aSegmentThatFitsOneFrameGoesWithItsChecksumPartialOnly() throws {
        let rig = try NetRig(mtu: 1500, guest: { $0.largeSendOffload = true }, backendAcceptsOffloads: true)
        defer { rig.stop() }
        try rig.start()
        let big = ipv4Frame(tcp: true, payload: 1000)
        #expect(T.sendRetrying(rig.nic, Self.asNetvscSendsIt(big), .tcpSegmentation(mss: 1448, l4Offset: 34, ipv6: false)) == .sent)
        let (frame, offload) = try #require(rig.backend.takeWithOffloads(1).first)
        #expect(offload == FrameOffload(checksumStart: 34, checksumOffset: 16))
        var finished = frame
        #expect(PartialChecksum.complete(&finished, frameStart: 0, frameEnd: finished.count, start: 34, offset: 16))
        #expect(firstDifference(finished, big) == nil, "finished, it is the frame with every checksum right")
    }

    @Test func checksumsTheGuestLeftStayPartialAndFinishToTheRightValue() throws {
        let rig = try NetRig(mtu: 1500, backendAcceptsOffloads: true)
        defer { rig.stop() }
        try rig.start()
        #expect(rig.nic.checksumOffload && rig.nic.checksumOffloadIPv6)
        for tcp in [true, false] {
            let whole = ipv4Frame(tcp: tcp, payload: 777)
            var sent = whole
            let field = tcp ? 50 : 40
            sent[field] = 0; sent[field + 1] = 0; sent[24] = 0; sent[25] = 0
            #expect(T.sendRetrying(rig.nic, sent, .ipv4(tcp: tcp, l4Offset: 34)) == .sent)
            let (frame, offload) = try #require(rig.backend.takeWithOffloads(1).first)
            #expect(offload == FrameOffload(checksumStart: 34, checksumOffset: tcp ? 16 : 6))
            #expect(T.onesSum(frame[14..<34]) == 0xFFFF, "the IPv4 header checksum is done at once")
            var finished = frame
            #expect(PartialChecksum.complete(&finished, frameStart: 0, frameEnd: finished.count, start: 34, offset: tcp ? 16 : 6))
            #expect(firstDifference(finished, whole) == nil)
        }
    }

    @Test func aVLANTagInsertedBeforeTheHeadersMovesTheOffloadWithIt() throws {
        let rig = try NetRig(mtu: 1500, guest: { $0.largeSendOffload = true }, backendAcceptsOffloads: true)
        defer { rig.stop() }
        try rig.start()
        let big = ipv4Frame(tcp: true, payload: 5000)
        var request = NetVSC.TransmitOffload.tcpSegmentation(mss: 1448, l4Offset: 34, ipv6: false)
        request.vlan = NDISPacket8021QInfo(priority: 0, vlanID: 7)
        #expect(T.sendRetrying(rig.nic, Self.asNetvscSendsIt(big), request) == .sent)
        let (frame, offload) = try #require(rig.backend.takeWithOffloads(1).first)
        #expect(Array(frame[12..<16]) == [0x81, 0x00, 0x00, 7])
        #expect(offload?.checksumStart == 38)
        #expect(offload?.headerLength == 58)
    }

    @Test func brokenLSOHeadersAreRefusedForAGSOBackendToo() throws {
        let rig = try NetRig(mtu: 1500, guest: { $0.largeSendOffload = true }, backendAcceptsOffloads: true)
        defer { rig.stop() }
        try rig.start()
        var notTCP = ipv4Frame(tcp: true, payload: 5000)
        notTCP[23] = 17
        var badIHL = ipv4Frame(tcp: true, payload: 5000)
        badIHL[14] = 0x43
        for frame in [notTCP, badIHL] {
            #expect(T.sendRetrying(rig.nic, frame, .tcpSegmentation(mss: 1448, l4Offset: 34, ipv6: false)) == .sent)
        }
        #expect(eventually { rig.vsp.counterSnapshot.protocolErrors == 2 })
        #expect(rig.backend.queuedFrames == 0)
    }
}
