import Testing
import VMBusNetTAP
import VMBusNetVSP
import VMBusTestSupport
import VMBusTransport
#if canImport(Glibc)
import Glibc
#endif

/// A guest NIC whose host backend is a TAP in a namespace of the test's: the Linux stack there answers ARP and
/// ICMP echo, so both directions of the backend, its vnet header and the checksums are checked by a real peer.
@Suite(.serialized)
struct TAPNetBackendTests {
    static let guestIP: [UInt8] = [10, 77, 0, 2]
    static let kernelIP: [UInt8] = [10, 77, 0, 1]

    /// A TAP moved into a fresh namespace with 10.77.0.1/24 and `mtu`, up; its backend.
    static func kernelPeer(_ ns: NetworkNamespace, mtu: Int) throws -> TAPNetBackend {
        let tap = try TAPDevice(name: "vmbt\(getpid() % 100_000)")
        let backend = try TAPNetBackend(device: tap)
        try ns.adopt(tap.name)
        try ns.ip("link set \(tap.name) mtu \(mtu) up")
        try ns.ip("addr add 10.77.0.1/24 dev \(tap.name)")
        return backend
    }

    @Test func theKernelBehindTheTAPAnswersTheGuestsARPAndPings() throws {
        if let why = NetworkNamespace.unavailable { print("skipped: \(why)"); return }
        let ns = try NetworkNamespace("tapb")
        defer { ns.remove() }
        let backend = try Self.kernelPeer(ns, mtu: 9000)
        defer { backend.stop() }
        let rig = try EdgeRig(backends: [backend], mtu: 9000)
        defer { rig.stop() }
        let mac = EdgeRig.mac(0)

        #expect(rig.send(0, EdgeFrames.arpRequest(from: mac, ip: Self.guestIP, target: Self.kernelIP)) == .sent)
        let kernelMAC = rig.first(0) { EdgeFrames.arpReplyMAC($0, for: Self.kernelIP) }
        guard let kernelMAC else {
            Issue.record("no ARP reply; backend wrote \(backend.framesWritten.load(ordering: .relaxed)), read \(backend.reader.framesRead.load(ordering: .relaxed))")
            return
        }
        // Small and jumbo echoes (a 9000-byte MTU: 8972 bytes of ICMP payload fill it exactly).
        for (sequence, size) in [(1, 56), (2, 1472), (3, 8972)] {
            let echo = EdgeFrames.icmpEcho(to: kernelMAC, from: mac, source: Self.guestIP, destination: Self.kernelIP,
                                           id: 0x4242, sequence: UInt16(sequence), payload: size)
            #expect(rig.send(0, echo) == .sent)
            let reply = rig.first(0) { EdgeFrames.isEchoReply($0, id: 0x4242, sequence: UInt16(sequence)) ? $0 : nil }
            #expect(reply?.count == echo.count, "echo of \(size) bytes")
        }
        #expect(backend.writesDropped.load(ordering: .relaxed) == 0)
        #expect(backend.reader.framesRefused.load(ordering: .relaxed) == 0)
    }

    @Test func framesFromTheKernelWithoutAnAttachedNICAreDroppedAndCounted() throws {
        if let why = NetworkNamespace.unavailable { print("skipped: \(why)"); return }
        let ns = try NetworkNamespace("tapd")
        defer { ns.remove() }
        let backend = try Self.kernelPeer(ns, mtu: 1500)
        defer { backend.stop() }
        // Pings to a neighbour nobody answers make the kernel send ARP requests through the TAP.
        ns.run(["ping", "-c", "2", "-i", "0.2", "-W", "1", "10.77.0.9"])
        #expect(backend.deliveriesDropped.load(ordering: .relaxed) > 0)
    }

    /// Two NICs on one TAP (two partitions): the newest gets the kernel's frames, and when it detaches the
    /// other gets them again.
    @Test func whenTheNewestNICDetachesTheOneBeforeGetsTheFramesAgain() throws {
        if let why = NetworkNamespace.unavailable { print("skipped: \(why)"); return }
        let ns = try NetworkNamespace("tapf")
        defer { ns.remove() }
        let backend = try Self.kernelPeer(ns, mtu: 1500)
        defer { backend.stop() }
        let first = FakeNetPort(1), second = FakeNetPort(2)
        backend.attached(first)
        backend.attached(second)
        // Pings to a neighbour nobody answers make the kernel send ARP requests (broadcasts) through the TAP.
        ns.run(["ping", "-c", "2", "-i", "0.2", "-W", "1", "10.77.0.9"])
        #expect(!second.take(1, seconds: 2).isEmpty, "the newest NIC gets the frames")
        #expect(first.take(1, seconds: 0.1).isEmpty)
        backend.detached(second)
        _ = second.take(100, seconds: 0.1)
        ns.run(["ping", "-c", "2", "-i", "0.2", "-W", "1", "10.77.0.9"])
        #expect(!first.take(1, seconds: 2).isEmpty, "the one before takes over again")
        #expect(second.take(1, seconds: 0.1).isEmpty)
    }

    @Test func stoppingTheBackendEndsItsReaderAtOnce() throws {
        if let why = NetworkNamespace.unavailable { print("skipped: \(why)"); return }
        let tap = try TAPDevice(name: "vmbs\(getpid() % 100_000)")
        let backend = try TAPNetBackend(device: tap)
        let start = monotonicNanoseconds()
        backend.stop()
        #expect(monotonicNanoseconds() - start < 1_000_000_000)
    }
}
