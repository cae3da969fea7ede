import Testing
import VMBusNetTAP
import VMBusNetVSC
import VMBusNetVSP
import VMBusProtocol
import VMBusTestSupport
import VMBusTransport
#if canImport(Glibc)
import Glibc
#endif

/// The guest NIC as a TAP in a namespace of the test's, with the host side in memory: the Linux stack in the
/// namespace answers an ARP request the host delivers, through the guest's TAP and back through NetVSC; the
/// TAP has the NIC's MAC and MTU and its carrier follows the host's link state.
@Suite(.serialized)
struct GuestTAPInterfaceTests {
    @Test func theStackBehindTheGuestTAPAnswersARPAndSeesTheLinkGoDownAndUp() throws {
        if let why = NetworkNamespace.unavailable { print("skipped: \(why)"); return }
        let ns = try NetworkNamespace("gtap")
        defer { ns.remove() }
        let system = try InProcessSystem(memoryPages: 16384)
        let backend = MemoryNetBackend()
        var c = NetVSP.Configuration(macAddress: EdgeRig.mac(5))
        c.mtu = 9000
        let vsp = NetVSP(instanceID: InProcessSystem.instanceID(0x45), configuration: c, backend: backend)
        system.host.addDevice(vsp)
        try system.start()
        defer { system.stop() }
        let device = try #require(system.guest.devices.first { $0.classID == DeviceClass.nic.classID })
        var gc = NetVSC.Configuration()
        gc.mtu = 9000
        let tapName = "vmgt\(getpid() % 100_000)"
        let edge = try GuestTAPInterface(device: device, tapName: tapName, configuration: gc)
        defer { edge.stop() }
        try ns.adopt(tapName)
        try ns.ip("link set \(tapName) up")
        try ns.ip("addr add 10.79.0.1/24 dev \(tapName)")

        let link = ns.output(["ip", "-o", "link", "show", tapName]) ?? ""
        #expect(link.contains("link/ether 00:15:5d:e0:00:06"), "the NIC's MAC: \(link)")
        #expect(link.contains("mtu 9000"), "the NIC's MTU: \(link)")

        // A peer on the host side asks who has 10.79.0.1: the namespace's stack answers to it through the TAP.
        let peer: [UInt8] = [0x02, 0, 0, 0, 0, 0x99]
        let port = try #require(backend.waitForPort())
        let request = EdgeFrames.arpRequest(from: peer, ip: [10, 79, 0, 2], target: [10, 79, 0, 1])
        #expect(port.deliver(bytes: request) == .accepted)
        // The stack sends its own frames too (IPv6 MLD, router solicitations): look for the reply among them.
        var reply: [UInt8]?
        let deadline = monotonicNanoseconds() + 5_000_000_000
        while reply == nil, monotonicNanoseconds() < deadline {
            reply = backend.take(1, timeoutNanoseconds: 100_000_000).first { EdgeFrames.arpReplyMAC($0, for: [10, 79, 0, 1]) != nil }
        }
        #expect(reply.flatMap { EdgeFrames.arpReplyMAC($0, for: [10, 79, 0, 1]) } == EdgeRig.mac(5))
        #expect(reply.map { Array($0[0..<6]) } == peer, "answered to the asker")

        func carrier() -> String? { ns.output(["cat", "/sys/class/net/\(tapName)/carrier"])?.lines.first }
        #expect(carrier() == "1")
        vsp.setLink(up: false)
        #expect(eventually { carrier() == "0" }, "the host's MEDIA_DISCONNECT drops the carrier")
        vsp.setLink(up: true)
        #expect(eventually { carrier() == "1" })
        #expect(edge.stackDrops.load(ordering: .relaxed) == 0 && edge.sendDrops.load(ordering: .relaxed) == 0)
    }
}
