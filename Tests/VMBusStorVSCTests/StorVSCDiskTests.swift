import Testing
import VMBusSCSITarget
import VMBusStorVSC
import VMBusTestSupport
import VMBusTransport
#if canImport(Glibc)
import Glibc
#endif

@Suite(.serialized)
struct StorVSCDiskTests {
    @Test func unalignedWritesAndReadsRoundTrip() throws {
        let rig = try StorageRig()
        defer { rig.stop() }
        let d = try rig.disk()
        var p = SplitMix64(seed: 7)
        var shadow = [UInt8](repeating: 0, count: 1 << 20)
        for _ in 0..<200 {
            let offset = Int(p.below(UInt64(shadow.count - 5000)))
            let bytes = p.bytes(1 + Int(p.below(4999)))
            try d.write(at: UInt64(offset), bytes)
            shadow.replaceSubrange(offset..<(offset + bytes.count), with: bytes)
        }
        #expect(try d.read(at: 0, count: shadow.count) == shadow)
        #expect(try d.read(at: 12345, count: 777) == Array(shadow[12345..<(12345 + 777)]))
    }

    @Test func transfersLargerThanTheMaximumAreSplit() throws {
        let rig = try StorageRig(hostMaxTransfer: 64 * 1024)
        defer { rig.stop() }
        let d = try rig.disk()
        var p = SplitMix64(seed: 3)
        let bytes = p.bytes(3 << 20 + 1234)
        let sentBefore = try #require(rig.controller).requestsSent.load(ordering: .relaxed)
        try d.write(at: 4096 + 17, bytes)
        let sent = try #require(rig.controller).requestsSent.load(ordering: .relaxed) - sentBefore
        #expect(sent >= UInt64(bytes.count / (64 * 1024)), "split into requests of at most 64 KiB")
        #expect(try d.read(at: 4096 + 17, count: bytes.count) == bytes)
    }

    @Test(arguments: [1, 8, 64])
    func randomIOAtQueueDepth(_ depth: Int) throws {
        let rig = try StorageRig(luns: [0: 64 << 20]) { $0.queueDepthPerChannel = 32 }
        defer { rig.stop() }
        let d = try rig.disk()
        let region = (64 << 20) / depth
        let failures = Condition<[String]>([])
        let finished = Condition(0)
        for t in 0..<depth {
            _ = startThread(name: "qd") {
                var p = SplitMix64(seed: UInt64(t + 1) * 7919)
                var shadow = [UInt8](repeating: 0, count: region)
                let base = UInt64(t * region)
                do {
                    for _ in 0..<Sanitizer.scaled(depth == 1 ? 400 : 40, minimum: 4) {
                        let length = 1 + Int(p.below(UInt64(min(region, Sanitizer.active == nil ? 300_000 : 20_000))))
                        let offset = Int(p.below(UInt64(region - length + 1)))
                        if p.below(3) == 0 {
                            let got = try d.read(at: base + UInt64(offset), count: length)
                            if got != Array(shadow[offset..<(offset + length)]) {
                                failures.update { $0.append("thread \(t): mismatch at \(offset)+\(length)") }
                            }
                        } else {
                            let bytes = p.bytes(length)
                            try d.write(at: base + UInt64(offset), bytes, fua: p.below(8) == 0)
                            shadow.replaceSubrange(offset..<(offset + length), with: bytes)
                        }
                    }
                    if try d.read(at: base, count: region) != shadow { failures.update { $0.append("thread \(t): final contents") } }
                } catch {
                    failures.update { $0.append("thread \(t): \(error)") }
                }
                finished.update { $0 += 1 }
            }
        }
        #expect(finished.wait(timeoutNanoseconds: Sanitizer.nanoseconds(300_000_000_000)) { $0 == depth ? true : nil } == true)
        #expect(failures.withLock { $0 } == [])
        #expect(rig.controller?.malformedCompletions.load(ordering: .relaxed) == 0)
    }

    @Test func flushAndFUAReachTheBackend() throws {
        let rig = try StorageRig()
        defer { rig.stop() }
        let d = try rig.disk()
        let backend = try #require(rig.backends[0])
        let before = backend.flushCount
        try d.write(at: 0, [1, 2, 3])
        try d.flush()
        #expect(backend.flushCount == before + 1)
    }

    @Test func unmapDiscardsAndZeroesTheEdges() throws {
        let rig = try StorageRig()
        defer { rig.stop() }
        let d = try rig.disk()
        try d.write(at: 0, [UInt8](repeating: 0xAB, count: 64 * 1024))
        try d.unmap(at: 1000, length: 20_000)
        let after = try d.read(at: 0, count: 64 * 1024)
        #expect(after[0..<1000].allSatisfy { $0 == 0xAB })
        #expect(after[1000..<21_000].allSatisfy { $0 == 0 })
        #expect(after[21_000...].allSatisfy { $0 == 0xAB })
    }

    @Test func readOnlyAndOutOfRangeRequestsAreRefused() throws {
        let rig = try StorageRig(luns: [0: 1 << 20], readOnly: [0])
        defer { rig.stop() }
        let d = try rig.disk()
        #expect(throws: StorVSCError.writeProtected) { try d.write(at: 0, [1]) }
        #expect(throws: StorVSCError.self) { _ = try d.read(at: (1 << 20) - 1, count: 2) }
        #expect(try d.read(at: (1 << 20) - 1, count: 1) == [0])
    }

    @Test func theAsyncAPIRunsOnTheSameCore() async throws {
        let rig = try StorageRig()
        defer { rig.stop() }
        let d = try rig.disk()
        try await d.write(at: 333, [9, 8, 7], fua: true)
        try await d.flush()
        #expect(try await d.read(at: 332, count: 5) == [0, 9, 8, 7, 0])
        try await d.unmap(at: 0, length: 4096)
        #expect(try await d.read(at: 332, count: 5) == [0, 0, 0, 0, 0])
    }
}

/// Collects the results of submitted requests.
final class SubmitCollector: StorVSCRequestHandler, @unchecked Sendable {
    let results = Condition<[UInt64: Result<Int, StorVSCError>]>([:])
    func requestFinished(tag: UInt64, result: Result<Int, StorVSCError>) {
        results.update { $0[tag] = result }
    }
    func wait(for count: Int) -> [UInt64: Result<Int, StorVSCError>]? {
        results.wait(timeoutNanoseconds: 30_000_000_000) { $0.count >= count ? $0 : nil }
    }
}

@Suite(.serialized)
struct StorVSCSubmitTests {
    @Test func manyRequestsInFlightFromOneThread() throws {
        let rig = try StorageRig()
        defer { rig.stop() }
        let d = try rig.disk()
        let count = 64
        let buffers = UnsafeMutableRawBufferPointer.allocate(byteCount: count * 4096, alignment: 4096)
        defer { buffers.deallocate() }
        for i in 0..<(count * 4096) { buffers[i] = UInt8(truncatingIfNeeded: i &* 7 &+ i / 4096) }
        let writes = SubmitCollector()
        for i in 0..<count {
            try d.submitWrite(at: UInt64(i) * 8192, from: UnsafeRawBufferPointer(rebasing: buffers[(i * 4096)..<((i + 1) * 4096)]),
                              tag: UInt64(i), handler: writes)
        }
        let written = try #require(writes.wait(for: count))
        #expect(written.values.allSatisfy { (try? $0.get()) == 4096 })
        let reads = SubmitCollector()
        let into = UnsafeMutableRawBufferPointer.allocate(byteCount: count * 4096, alignment: 4096)
        defer { into.deallocate() }
        for i in 0..<count {
            try d.submitRead(at: UInt64(i) * 8192, into: UnsafeMutableRawBufferPointer(rebasing: into[(i * 4096)..<((i + 1) * 4096)]),
                             tag: UInt64(i), handler: reads)
        }
        let read = try #require(reads.wait(for: count))
        #expect(read.values.allSatisfy { (try? $0.get()) == 4096 })
        #expect(Array(UnsafeRawBufferPointer(into)) == Array(UnsafeRawBufferPointer(buffers)))
        // Whole blocks within one transfer only.
        #expect(throws: StorVSCError.self) { try d.submitRead(at: 100, into: into, tag: 0, handler: reads) }
        #expect(throws: StorVSCError.self) {
            try d.submitRead(at: 0, into: UnsafeMutableRawBufferPointer(rebasing: into[0..<100]), tag: 0, handler: reads)
        }
    }

    @Test func submittedRequestsOfARemovedLUNFail() throws {
        let rig = try StorageRig(luns: [0: 1 << 20, 1: 1 << 20])
        defer { rig.stop() }
        let d = try rig.disk(1)
        _ = rig.vsp.detach(lun: 1)
        let results = SubmitCollector()
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { buffer.deallocate() }
        do {
            try d.submitRead(at: 0, into: buffer, tag: 1, handler: results)
            let r = try #require(results.wait(for: 1))
            #expect(r[1].map { if case .failure(.lunRemoved(1)) = $0 { true } else { false } } == true)
        } catch {
            #expect(error as? StorVSCError == .lunRemoved(lun: 1), "or the rescan was quicker")
        }
    }
}
