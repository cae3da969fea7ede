import Testing
import VMBusNetProtocol
import VMBusNetVSC
@testable import VMBusNetVSP
import VMBusTestSupport
import VMBusWire

/// RSS: sub-channels requested and opened as Linux does, frames spread over them by flow, each flow's order
/// kept; bad RSS parameters refused.
@Suite(.serialized)
struct NetReceiveScalingTests {
    /// A TCP/IPv4 frame of flow `flow` carrying `sequence` in its payload.
    static func flowFrame(flow: Int, sequence: Int) -> [UInt8] {
        var f = ipv4Frame(tcp: true, payload: 64)
        f[34] = UInt8(truncatingIfNeeded: (1000 + flow) >> 8)
        f[35] = UInt8(truncatingIfNeeded: 1000 + flow)
        // Addresses and destination port vary per flow (a hash is linear in its input bits: a few varying bits
        // could all land in the same bucket pair).
        var seed = SplitMix64(seed: UInt64(flow) &* 0x9E37_79B9)
        let r = seed.next()
        for i in 0..<6 { f[28 + i] = UInt8(truncatingIfNeeded: r >> (8 * UInt64(i))) }
        f[36] = UInt8(truncatingIfNeeded: r >> 48)
        f[37] = UInt8(truncatingIfNeeded: r >> 56)
        for i in 0..<4 { f[54 + i] = UInt8(truncatingIfNeeded: sequence >> (8 * i)) }
        return f
    }

    /// Every frame of `got` belongs to one of `flows` (``flowFrame(flow:sequence:)``), and each flow's arrive in
    /// sequence.
    static func expectEachFlowInOrder(_ got: [[UInt8]], flows: Int) {
        var next = [Int](repeating: 0, count: flows)
        for f in got {
            let flow = (Int(f[34]) << 8 | Int(f[35])) - 1000
            let sequence = Int(f[54]) | Int(f[55]) << 8 | Int(f[56]) << 16 | Int(f[57]) << 24
            guard flow >= 0, flow < flows else { Issue.record("flow \(flow)"); return }
            #expect(sequence == next[flow], "flow \(flow) out of order")
            next[flow] = sequence + 1
        }
    }

    @Test func framesSpreadOverTheQueuesAndEachFlowKeepsItsOrder() throws {
        let rig = try NetRig(mtu: 1500, guest: { $0.queues = 4 }, host: { $0.receiveQueues = 4 })
        defer { rig.stop() }
        try rig.start()
        #expect(rig.nic.queueCount == 4)
        let port = try #require(rig.backend.waitForPort())
        let flows = 32, perFlow = 50
        for s in 0..<perFlow {
            for flow in 0..<flows {
                #expect(NetDataPathTests.deliverRetrying(port, rig.backend, Self.flowFrame(flow: flow, sequence: s)) == .accepted)
            }
        }
        let got = rig.takeReceived(flows * perFlow)
        #expect(got.count == flows * perFlow)
        Self.expectEachFlowInOrder(got, flows: flows)
        let perChannel = rig.vsp.receivePacketsPerChannel
        #expect(perChannel.filter { $0 > 0 }.count >= 3, "spread: \(perChannel)")
        #expect(rig.nic.receivePacketsPerQueue == perChannel)
    }

    /// The host's send indirection table spreads the guest's sends over the queues by flow, and each flow
    /// stays on one queue, so it reaches the backend in order.
    @Test func sendsSpreadOverTheQueuesByTheHostsTableAndEachFlowKeepsItsOrder() throws {
        let rig = try NetRig(mtu: 1500, guest: { $0.queues = 4 }, host: { $0.receiveQueues = 4 })
        defer { rig.stop() }
        try rig.start()
        #expect(rig.nic.queueCount == 4)
        let flows = 32, perFlow = 40
        for s in 0..<perFlow {
            for flow in 0..<flows {
                #expect(NetDataPathTests.sendRetrying(rig.nic, Self.flowFrame(flow: flow, sequence: s)) == .sent)
            }
        }
        let got = rig.backend.take(flows * perFlow)
        #expect(got.count == flows * perFlow)
        Self.expectEachFlowInOrder(got, flows: flows)
        let perQueue = rig.vsp.transmitPacketsPerQueue
        #expect(perQueue.filter { $0 > 0 }.count >= 3, "spread: \(perQueue)")
        #expect(perQueue.reduce(0, +) == flows * perFlow)
    }

    @Test func aGuestAskingForOneQueueGetsNoSubchannels() throws {
        let rig = try NetRig(guest: { $0.queues = 1 }, host: { $0.receiveQueues = 4 })
        defer { rig.stop() }
        try rig.start()
        #expect(rig.nic.queueCount == 1)
    }

    @Test func rssParametersThatCannotWorkAreRefusedAndCounted() {
        var config = RNDISDevice.Configuration(macAddress: NetRig.mac)
        config.receiveQueues = 4
        var d = RNDISDevice(configuration: config)
        func set(_ p: NDISReceiveScaleParameters) -> (RNDISMessage?, RNDISDevice.Effect) {
            var w = WireWriter()
            p.encode(into: &w)
            return d.handle(.setRequest(RNDISSetRequest(requestID: 1, oid: .genReceiveScaleParameters, infoBuffer: w.bytes)),
                            nvspVersion: .v61)
        }
        let (emptyReply, empty) = set(NDISReceiveScaleParameters(indirectionTable: []))
        #expect(emptyReply == .setComplete(RNDISSetComplete(requestID: 1, status: .invalidData)))
        if case .receiveScalingRejected = empty {} else { Issue.record("an empty table was taken: \(empty)") }
        let (_, outOfRange) = set(NDISReceiveScaleParameters(indirectionTable: [0, 1, 7]))
        if case .receiveScalingRejected = outOfRange {} else { Issue.record("entry 7 of 4 queues was taken: \(outOfRange)") }
        let (_, good) = set(NDISReceiveScaleParameters(indirectionTable: [0, 1, 2, 3]))
        #expect(good == .receiveScalingChanged(ReceiveScaling(indirectionTable: [0, 1, 2, 3],
                                                              hashKey: NDISReceiveScaleParameters.linuxHashKey)))
        let (_, off) = set(NDISReceiveScaleParameters(flags: NDISReceiveScaleParameters.flagDisableRSS, indirectionTable: []))
        #expect(off == .receiveScalingChanged(nil))
    }

    /// The Toeplitz hash of Microsoft's RSS verification suite: 66.9.149.187:2794 → 161.142.100.80:1766
    /// with the standard key hashes to 0x51ccc178 (TCP) and 0x323e8fc2 (addresses only).
    @Test func toeplitzMatchesTheRSSVerificationSuite() {
        let key: [UInt8] = [0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
                            0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
                            0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa]
        var f = ipv4Frame(tcp: true, payload: 0)
        f[26...29] = [66, 9, 149, 187]; f[30...33] = [161, 142, 100, 80]
        f[34] = 0x0A; f[35] = 0xEA; f[36] = 0x06; f[37] = 0xE6  // 2794, 1766
        let tcp = f.withUnsafeBytes { ReceiveScaling.hash($0, key: key) }
        #expect(tcp == 0x51cc_c178)
        f[23] = 17  // UDP: addresses only
        let ip = f.withUnsafeBytes { ReceiveScaling.hash($0, key: key) }
        #expect(ip == 0x323e_8fc2)
    }
}
