import CVMBusShims
import Testing
import VMBusMemory
import VMBusProtocol
@testable import VMBusRing

#if canImport(Glibc)
import Glibc
#endif

/// Interop with a ring implementation we did not write: Linux 6.12's userspace VMBus ring
/// (tools/hv/vmbus_bufring.c, the code DPDK's netvsc ring descends from), running in a child process over the
/// same memfd pages. The packet streams are the deterministic functions of Scripts/foreign-ring/harness.c.
@Suite(.serialized) struct ForeignRingInteropTests {
    static let ringBytes = 16 * 4096   // control page + 60 KiB of data, for each ring
    static let packets = 100_000

    // "linux to swift" stream (harness.c `l2s`): payloads are multiples of 8, because vmbus_bufring.c rounds
    // its padding down and would write a negative amount otherwise.
    static func linuxPacket(_ seed: UInt64, _ i: Int) -> (type: VMBusPacketType, flags: UInt16, count: Int, start: Int) {
        let r1 = streamRandom(seed, UInt64(i), 1)
        return (r1 & 1 == 1 ? .dataInband : .completion, UInt16((r1 >> 1) & 1),
                8 * Int(streamRandom(seed, UInt64(i), 0) % 257), Int(streamRandom(seed, UInt64(i), 2) % 8192))
    }

    // "swift to linux" stream (harness.c `s2l`): any payload length, sometimes a GPA-direct style header.
    static func swiftPacket(_ seed: UInt64, _ i: Int) -> (
        type: VMBusPacketType, flags: UInt16, header: Int, headerStart: Int, count: Int, start: Int, transactionID: UInt64
    ) {
        let i = UInt64(i)
        let r1 = streamRandom(seed, i, 1)
        let header = streamRandom(seed, i, 3) % 4 == 0 ? 8 * Int(1 + streamRandom(seed, i, 4) % 3) : 0
        let type: VMBusPacketType = header > 0 ? .dataUsingGPADirect : (r1 & 1 == 1 ? .dataInband : .completion)
        return (type, UInt16((r1 >> 1) & 1), header, Int(streamRandom(seed, i, 5) % 8192),
                Int(streamRandom(seed, i, 0) % 2049), Int(streamRandom(seed, i, 2) % 8192), streamRandom(seed, i, 6))
    }

    /// `rte_vmbus_chan_send` always sends this transaction id (`VMBUS_RQST_ERROR`).
    static let linuxTransactionID = UInt64.max

    func harness() throws -> String {
        switch ForeignRingHarness.executable {
        case .success(let path): return path
        case .failure(let e): throw e
        }
    }

    @Test func linuxWritesToOurIncomingRingAndReadsFromOurOutgoingRing() throws {
        let exe = try harness()
        let seed: UInt64 = 0x1234_5678
        let guest = try GuestMemory(pages: 2 * Self.ringBytes / 4096)
        let fromLinux = try RingMemory(contiguous: guest.base, totalSize: Self.ringBytes, owner: guest)
        let toLinux = try RingMemory(contiguous: guest.base + Self.ringBytes, totalSize: Self.ringBytes, owner: guest)
        OutgoingRing.initializeControl(fromLinux)
        OutgoingRing.initializeControl(toLinux)
        let incoming = IncomingRing(memory: fromLinux)
        let outgoing = OutgoingRing(memory: toLinux)
        let pattern = Pattern(seed: seed)

        let log = "/tmp/swift-vmbus-foreign-ring-\(getuid())-stream-\(getpid()).log"
        defer { unlink(log) }
        let child = try #require(Subprocess.spawn(exe, [
            "stream", "/proc/\(getpid())/fd/\(guest.fd)", "\(2 * Self.ringBytes)",
            "0", "\(Self.ringBytes)", "\(Self.ringBytes)", "\(Self.ringBytes)", "\(Self.packets)", "\(seed)",
        ], output: log))

        var sent = 0, received = 0, readWraps = 0, writeWraps = 0
        var lastRead = 0, lastWrite = 0
        let buffer = PacketBuffer(capacity: 16 + 2048)
        let deadline = vmbus_shim_monotonic_ns() + 120_000_000_000
        var backoff = Backoff()
        var childStatus: Int32? = nil
        loop: while sent < Self.packets || received < Self.packets {
            var progress = false
            if sent < Self.packets {
                var batch = try outgoing.beginWrite()
                while sent < Self.packets && batch.packetCount < 32 {
                    let p = Self.swiftPacket(seed, sent)
                    do throws(RingError) {
                        try outgoing.append(&batch, type: p.type, flags: p.flags, transactionID: p.transactionID,
                                            header: pattern.slice(p.headerStart, p.header),
                                            payload: pattern.slice(p.start, p.count))
                    } catch {
                        guard case .full = error else { throw error }
                        break
                    }
                    sent += 1
                }
                if !batch.isEmpty {
                    _ = outgoing.commit(batch)
                    if batch.nextOffset < lastWrite { writeWraps += 1 }
                    lastWrite = batch.nextOffset
                    progress = true
                }
            }
            if received < Self.packets {
                var batch = try incoming.beginRead()
                while let p = try incoming.next(&batch, into: buffer) {
                    let want = Self.linuxPacket(seed, received)
                    let d = p.descriptor
                    let ok = d.type == want.type && d.flags == want.flags && d.offset8 == 2
                        && Int(d.len8) == (16 + want.count) / 8 && d.transactionID == Self.linuxTransactionID
                        && buffer.withUnsafeBytes(of: p) { pattern.matches($0.baseAddress! + 16, start: want.start, count: want.count) }
                    guard ok else {
                        Issue.record("packet \(received) from Linux differs: \(d), want \(want)")
                        break loop
                    }
                    received += 1
                }
                if !batch.isEmpty {
                    _ = incoming.commit(batch)
                    if batch.nextOffset < lastRead { readWraps += 1 }
                    lastRead = batch.nextOffset
                    progress = true
                }
            }
            if progress { backoff.reset(); continue }
            if let s = child.poll() { childStatus = s; break }
            if vmbus_shim_monotonic_ns() > deadline {
                Issue.record("timeout: sent \(sent), received \(received)")
                break
            }
            backoff.pause()
        }
        let status = childStatus ?? child.wait(timeoutNanoseconds: 60_000_000_000)
        let output = Subprocess.read(log)
        #expect(status == 0, "harness: \(output)")
        #expect(sent == Self.packets)
        #expect(received == Self.packets)
        #expect(readWraps > 100)
        #expect(writeWraps > 100)
        #expect(try incoming.isEmpty())
    }

    /// The same packets written by Linux's writer and by ours leave byte-identical rings, wrap included, and
    /// both refuse the same next packet (the never-full rule agrees).
    @Test func linuxAndOurWriterProduceIdenticalRingBytes() throws {
        let exe = try harness()
        let seed: UInt64 = 77
        let guest = try GuestMemory(pages: 2 * Self.ringBytes / 4096)
        let linuxRing = try RingMemory(contiguous: guest.base, totalSize: Self.ringBytes, owner: guest)
        let ourRing = try RingMemory(contiguous: guest.base + Self.ringBytes, totalSize: Self.ringBytes, owner: guest)
        let start = UInt32(linuxRing.dataSize - 1000) & ~7   // start near the end so the fill wraps
        for m in [linuxRing, ourRing] {
            OutgoingRing.initializeControl(m)
            m.control.writeIndex.store(start, ordering: .relaxed)
            m.control.readIndex.store(start, ordering: .relaxed)
        }

        let log = "/tmp/swift-vmbus-foreign-ring-\(getuid())-fill-\(getpid()).log"
        defer { unlink(log) }
        let child = try #require(Subprocess.spawn(exe, [
            "fill", "/proc/\(getpid())/fd/\(guest.fd)", "\(2 * Self.ringBytes)", "0", "\(Self.ringBytes)", "\(seed)",
        ], output: log))
        let status = child.wait(timeoutNanoseconds: 60_000_000_000)
        let output = Subprocess.read(log)
        try #require(status == 0, "harness: \(output)")
        let count = try #require(Int(output.split(separator: "\n").last ?? ""), "harness printed: \(output)")
        #expect(count > 20)

        let pattern = Pattern(seed: seed)
        let writer = OutgoingRing(memory: ourRing)
        var batch = try writer.beginWrite()
        for i in 0..<count {
            let p = Self.linuxPacket(seed, i)
            try writer.append(&batch, type: p.type, flags: p.flags, transactionID: Self.linuxTransactionID,
                              payload: pattern.slice(p.start, p.count))
        }
        let next = Self.linuxPacket(seed, count)
        #expect(throws: RingError.self) {
            try writer.append(&batch, type: next.type, flags: next.flags, transactionID: Self.linuxTransactionID,
                              payload: pattern.slice(next.start, next.count))
        }
        _ = writer.commit(batch)

        let linuxWrite = linuxRing.control.writeIndex.load(ordering: .relaxed)
        #expect(linuxWrite == ourRing.control.writeIndex.load(ordering: .relaxed))
        #expect(linuxWrite < start, "the fill wrapped")
        let a = UnsafeRawBufferPointer(start: guest.base, count: Self.ringBytes)
        let b = UnsafeRawBufferPointer(start: guest.base + Self.ringBytes, count: Self.ringBytes)
        #expect(memcmp(a.baseAddress!, b.baseAddress!, Self.ringBytes) == 0, "control pages and data areas match")
        if memcmp(a.baseAddress!, b.baseAddress!, Self.ringBytes) != 0 {
            let first = (0..<Self.ringBytes).first { a[$0] != b[$0] }!
            Issue.record("first difference at ring byte \(first): linux \(a[first]) ours \(b[first])")
        }
    }
}
