import Testing
import VMBusNetProtocol
import VMBusNetVSC
import VMBusNetVSP
import VMBusTestSupport
import VMBusTransport

/// Frames through NetVSC ↔ NetVSP over the real rings: contents, order, back-pressure, the packet filter,
/// link state and checksum offload.
@Suite(.serialized)
struct NetDataPathTests {
    static let frameCount = 3000

    /// Sends until the NIC takes it (busy means retry: the host returns sections as it completes).
    static func sendRetrying(_ nic: NetVSC, _ frame: [UInt8], offload: NetVSC.TransmitOffload? = nil, more: Bool = false) -> NetVSCSendResult {
        let deadline = monotonicNanoseconds() &+ 10_000_000_000
        while true {
            let r = nic.send(bytes: frame, offload: offload, more: more)
            if r != .busy || monotonicNanoseconds() > deadline { return r }
            sleepNanoseconds(10_000)
        }
    }

    static func deliverRetrying(_ port: any NetPort, _ backend: MemoryNetBackend, _ frame: [UInt8], more: Bool = false) -> NetDelivery {
        let deadline = monotonicNanoseconds() &+ 10_000_000_000
        while true {
            let generation = backend.spaceGeneration
            let r = frame.withUnsafeBytes { port.deliver($0, more: more) }
            if r != .busy || monotonicNanoseconds() > deadline { return r }
            _ = backend.waitForSpace(after: generation, timeoutNanoseconds: 1_000_000)
        }
    }

    static func check(_ got: [[UInt8]], _ sent: [[UInt8]]) {
        #expect(got.count == sent.count)
        for i in 0..<min(got.count, sent.count) {
            if let d = firstDifference(got[i], sent[i]) {
                Issue.record("frame \(i) (\(sent[i].count) bytes, got \(got[i].count)) differs at \(d)")
                return
            }
        }
    }

    @Test func guestToHostFramesOfRandomSizesArriveIntactAndInOrder() throws {
        let rig = try NetRig()
        defer { rig.stop() }
        try rig.start()
        var seed = SplitMix64(seed: 1)
        var sent: [[UInt8]] = []
        for i in 0..<Self.frameCount {
            let frame = testFrame(length: Int(seed.next() % (9018 - 60 + 1)) + 60, sequence: i, seed: &seed)
            #expect(Self.sendRetrying(rig.nic, frame) == .sent)
            sent.append(frame)
        }
        Self.check(rig.backend.take(Self.frameCount), sent)
        let c = rig.nic.counterSnapshot
        #expect(c.txPackets == Self.frameCount)
        #expect(c.txCopied > 0 && c.txGPADirect > 0, "both encodings used: \(c)")
        #expect(rig.vsp.counterSnapshot.txPackets == Self.frameCount)
        #expect(rig.vsp.counterSnapshot.protocolErrors == 0, "\(rig.vsp.counterSnapshot.lastError ?? "")")
    }

    @Test func hostToGuestFramesOfRandomSizesArriveIntactAndInOrder() throws {
        let rig = try NetRig()
        defer { rig.stop() }
        try rig.start()
        let port = try #require(rig.backend.waitForPort())
        var seed = SplitMix64(seed: 2)
        var sent: [[UInt8]] = []
        for i in 0..<Self.frameCount {
            let frame = testFrame(length: Int(seed.next() % (9018 - 60 + 1)) + 60, sequence: i, seed: &seed)
            #expect(Self.deliverRetrying(port, rig.backend, frame) == .accepted)
            sent.append(frame)
        }
        Self.check(rig.takeReceived(Self.frameCount), sent)
        #expect(rig.nic.counterSnapshot.rxPackets == Self.frameCount)
        #expect(rig.nic.counterSnapshot.malformed == 0)
        #expect(eventually { rig.vsp.outstandingReceiveSlots == 0 }, "every slot came back")
    }

    /// Small rings and buffers, both directions at once from two threads: every frame arrives, in order,
    /// and nobody is stuck (each side hits its full ring and waits or retries).
    /// Small receive buffer: the host runs out of slots first. Large one: it fills the ring first and waits
    /// on `pending_send_sz`, while the guest's completions meet its own full ring.
    @Test(arguments: [64 * 1024, 2 << 20])
    func backPressureBothWaysLosesNothingAndGetsStuckNowhere(receiveBufferBytes: Int) throws {
        let rig = try NetRig(mtu: 1500, guest: { c in
            c.ringSize = 4 * 4096
            c.receiveBufferBytes = receiveBufferBytes
            c.sendBufferBytes = 64 * 1024
            c.largeSendBuffers = 2
        })
        defer { rig.stop() }
        try rig.start()
        let port = try #require(rig.backend.waitForPort())
        let count = 4000
        func frames(_ seedValue: UInt64) -> [[UInt8]] {
            var seed = SplitMix64(seed: seedValue)
            return (0..<count).map { testFrame(length: Int(seed.next() % (1518 - 60 + 1)) + 60, sequence: $0, seed: &seed) }
        }
        let toHost = frames(3)
        let toGuest = frames(4)
        let backend = rig.backend
        let deliveredAll = Latch()
        let failures = Condition(0)
        #expect(startThread(name: "test-deliver") {
            for f in toGuest where Self.deliverRetrying(port, backend, f) != .accepted { failures.update { $0 += 1 } }
            deliveredAll.open()
        })
        for f in toHost where Self.sendRetrying(rig.nic, f) != .sent { failures.update { $0 += 1 } }
        #expect(deliveredAll.wait(timeoutNanoseconds: 60_000_000_000))
        #expect(failures.withLock { $0 } == 0)
        Self.check(rig.backend.take(count), toHost)
        Self.check(rig.takeReceived(count), toGuest)
        let g = rig.nic.counterSnapshot
        let h = rig.vsp.counterSnapshot
        #expect(g.txBusy + g.txSendFull > 0, "the guest met a full ring or no free section: \(g)")
        if receiveBufferBytes < 1 << 20 { #expect(h.rxBusy > 0, "the host ran out of receive slots: \(h)") }
    }

    @Test func packetFilterZeroStopsReceptionAtOnce() throws {
        let rig = try NetRig()
        defer { rig.stop() }
        try rig.start()
        let port = try #require(rig.backend.waitForPort())
        var seed = SplitMix64(seed: 5)
        let frame = testFrame(length: 100, sequence: 0, seed: &seed)
        #expect(port.deliver(bytes: frame) == .accepted)
        #expect(rig.takeReceived(1).count == 1)
        try rig.nic.setPacketFilter([])
        #expect(rig.vsp.packetFilter.isEmpty)
        for _ in 0..<10 { #expect(port.deliver(bytes: frame) == .dropped) }
        sleepNanoseconds(20_000_000)
        #expect(rig.receivedCount == 0)
        #expect(rig.vsp.counterSnapshot.rxDropped == 10)
        try rig.nic.setPacketFilter(.linuxDefault)
        #expect(port.deliver(bytes: frame) == .accepted)
        #expect(rig.takeReceived(1).count == 1)
    }

    @Test func linkDownAndUpReachTheGuestAndGateReception() throws {
        let rig = try NetRig()
        defer { rig.stop() }
        try rig.start()
        let port = try #require(rig.backend.waitForPort())
        rig.vsp.setLink(up: false)
        #expect(eventually { !rig.nic.linkUp })
        var seed = SplitMix64(seed: 6)
        #expect(port.deliver(bytes: testFrame(length: 64, sequence: 0, seed: &seed)) == .dropped)
        rig.vsp.setLink(up: true)
        #expect(eventually { rig.nic.linkUp })
        #expect(rig.links.withLock { $0 } == [false, true])
        #expect(port.deliver(bytes: testFrame(length: 64, sequence: 1, seed: &seed)) == .accepted)
        #expect(rig.takeReceived(1).count == 1)
    }

    /// What `vmbus nic link N down` and a later attach rely on: a NIC whose cable is out before its guest
    /// initializes starts down (OID_GEN_MEDIA_CONNECT_STATUS), and the state outlives the guest's restart.
    @Test func aLinkSetDownBeforeTheGuestInitializesStaysDownUntilSetUp() throws {
        let rig = try NetRig()
        defer { rig.stop() }
        rig.vsp.setLink(up: false)
        try rig.start()
        #expect(!rig.nic.linkUp)
        let port = try #require(rig.backend.waitForPort())
        var seed = SplitMix64(seed: 9)
        #expect(port.deliver(bytes: testFrame(length: 64, sequence: 0, seed: &seed)) == .dropped)
        rig.nic.stop()
        #expect(!rig.vsp.linkUp, "a guest that stops does not plug the cable back in")
        rig.vsp.setLink(up: true)
        #expect(rig.vsp.linkUp)
        #expect(rig.links.withLock { $0 }.isEmpty, "no indication reaches a guest that is not initialized")
    }

    @Test func theGuestChangesItsMACAddress() throws {
        let rig = try NetRig()
        defer { rig.stop() }
        try rig.start()
        let mac: [UInt8] = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55]
        try rig.nic.setMACAddress(mac)
        #expect(rig.vsp.macAddress == mac)
        #expect(rig.nic.macAddress == mac)
    }

    @Test func checksumsLeftToTheHostAreFilledInBeforeTheBackend() throws {
        let rig = try NetRig()
        defer { rig.stop() }
        try rig.start()
        for tcp in [true, false] {
            let frame = ipv4Frame(tcp: tcp, payload: 333)
            var blank = frame
            blank[24] = 0; blank[25] = 0  // IP header checksum
            let field = tcp ? 34 + 16 : 34 + 6
            blank[field] = 0; blank[field + 1] = 0
            #expect(Self.sendRetrying(rig.nic, blank, offload: .ipv4(tcp: tcp, l4Offset: 34)) == .sent)
            let got = try #require(rig.backend.take(1).first)
            #expect(firstDifference(got, frame) == nil, "checksums as computed independently")
        }
        #expect(rig.vsp.counterSnapshot.checksumErrors == 0)
    }
}

/// An Ethernet + IPv4 + TCP or UDP frame with correct checksums, computed here independently of NetVSP.
func ipv4Frame(tcp: Bool, payload: Int) -> [UInt8] {
    let l4Header = tcp ? 20 : 8
    var f = [UInt8](repeating: 0, count: 14 + 20 + l4Header + payload)
    for i in 0..<6 { f[i] = 0x02; f[6 + i] = NetRig.mac[i] }
    f[12] = 0x08; f[13] = 0x00
    let ipLength = 20 + l4Header + payload
    f[14] = 0x45; f[16] = UInt8(ipLength >> 8); f[17] = UInt8(ipLength & 0xFF)
    f[22] = 64; f[23] = tcp ? 6 : 17
    f[26...29] = [10, 0, 0, 1]; f[30...33] = [10, 0, 0, 2]
    f[34] = 0x30; f[35] = 0x39; f[36] = 0x00; f[37] = 0x50
    if tcp { f[46] = 0x50; f[47] = 0x18 } else { f[38] = UInt8((8 + payload) >> 8); f[39] = UInt8((8 + payload) & 0xFF) }
    for i in 0..<payload { f[34 + l4Header + i] = UInt8(truncatingIfNeeded: i &* 7 &+ 3) }
    func sum(_ bytes: ArraySlice<UInt8>, _ initial: UInt32) -> UInt16 {
        var s = initial
        var it = Array(bytes)
        if it.count % 2 == 1 { it.append(0) }
        for k in stride(from: 0, to: it.count, by: 2) { s += UInt32(it[k]) << 8 | UInt32(it[k + 1]) }
        while s > 0xFFFF { s = (s & 0xFFFF) + (s >> 16) }
        return ~UInt16(s)
    }
    let ipSum = sum(f[14..<34], 0)
    f[24] = UInt8(ipSum >> 8); f[25] = UInt8(ipSum & 0xFF)
    var pseudo: UInt32 = 0x0A00 + 0x0001 + 0x0A00 + 0x0002 + UInt32(tcp ? 6 : 17) + UInt32(l4Header + payload)
    pseudo += 0
    var l4 = sum(f[34...], pseudo)
    if !tcp && l4 == 0 { l4 = 0xFFFF }
    let field = tcp ? 34 + 16 : 34 + 6
    f[field] = UInt8(l4 >> 8); f[field + 1] = UInt8(l4 & 0xFF)
    return f
}
