import Testing
import VMBusNetTAP
import VMBusTestSupport
import VMBusTransport
#if canImport(Glibc)
import Glibc
#endif

/// The reader against the kernel: a TAP that lets the kernel leave UDP checksums partial (TUN_F_CSUM) gets
/// frames marked VIRTIO_NET_HDR_F_NEEDS_CSUM, and the handler sees them finished.
@Suite(.serialized)
struct TAPFrameReaderTests {
    @Test func partialChecksumsTheKernelLeavesAreFinishedBeforeTheHandler() throws {
        if let why = NetworkNamespace.unavailable { print("skipped: \(why)"); return }
        let ns = try NetworkNamespace("tapr")
        defer { ns.remove() }
        let tap = try TAPDevice(name: "vmtr\(getpid() % 100_000)", offloads: .checksum)
        defer { tap.close() }
        let frames = Condition<[[UInt8]]>([])
        let reader = try TAPFrameReader(device: tap) { frame, _, _ in frames.update { $0.append([UInt8](frame)) } }
        reader.start()
        defer { reader.stop() }
        try ns.adopt(tap.name)
        try ns.ip("link set \(tap.name) up")
        try ns.ip("addr add 10.76.0.1/24 dev \(tap.name)")
        try ns.ip("neigh add 10.76.0.2 lladdr 02:00:00:00:00:02 dev \(tap.name)")
        // A UDP datagram from the namespace's stack (bash's /dev/udp), its checksum left to the "NIC".
        #expect(ns.run(["bash", "-c", "echo checksum-me > /dev/udp/10.76.0.2/9"]) == 0)
        var udp: [UInt8]?
        try eventually("the datagram arrives") {
            udp = frames.withLock { $0.first { $0.count > 42 && $0[12] == 0x08 && $0[13] == 0 && $0[23] == 17 } }
            return udp != nil
        }
        guard let udp else { return }
        let segment = Array(udp[34...])
        let pseudo: [UInt8] = Array(udp[26..<34]) + [0, 17, UInt8(segment.count >> 8), UInt8(segment.count & 0xFF)]
        #expect(EdgeFrames.checksum(pseudo + segment) == 0, "the UDP checksum verifies")
        #expect(reader.checksumsFinished.load(ordering: .relaxed) >= 1, "the kernel did leave it partial")
        #expect(reader.framesRefused.load(ordering: .relaxed) == 0)
    }
}
