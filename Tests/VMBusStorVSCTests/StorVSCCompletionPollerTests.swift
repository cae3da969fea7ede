import Testing
import VMBusStorVSC
import VMBusTestSupport
import VMBusTransport
#if canImport(Glibc)
import Glibc
#endif

/// Records on which thread each submitted request finished.
final class ThreadRecordingCollector: StorVSCRequestHandler, @unchecked Sendable {
    let finished = Condition<[(tag: UInt64, ok: Bool, thread: pthread_t)]>([])
    func requestFinished(tag: UInt64, result: Result<Int, StorVSCError>) {
        let ok = (try? result.get()) != nil
        finished.update { $0.append((tag, ok, pthread_self())) }
    }
    var count: Int { finished.withLock { $0.count } }
}

@Suite(.serialized)
struct StorVSCCompletionPollerTests {
    @Test func aPollingSubmitterReapsItsCompletionsOnItsOwnThread() throws {
        let rig = try StorageRig()
        defer { rig.stop() }
        let d = try rig.disk()
        let controller = try #require(rig.controller)
        controller.waitForSubchannels()
        let pattern = (0..<(16 * 4096)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ $0 >> 12) }
        try d.write(at: 0, pattern)
        let poller = controller.beginPolling()
        defer { poller.end() }
        // The first poll masks the host's interrupts; from then on the interrupt thread is not involved.
        poller.poll()
        let into = UnsafeMutableRawBufferPointer.allocate(byteCount: 16 * 4096, alignment: 4096)
        defer { into.deallocate() }
        let collector = ThreadRecordingCollector()
        for i in 0..<16 {
            try d.submitRead(at: UInt64(i) * 4096, into: UnsafeMutableRawBufferPointer(rebasing: into[(i * 4096)..<((i + 1) * 4096)]),
                             tag: UInt64(i), handler: collector)
        }
        let deadline = monotonicNanoseconds() + 10_000_000_000
        while collector.count < 16 && monotonicNanoseconds() < deadline {
            if poller.poll() == 0 { sched_yield() }
        }
        let finished = collector.finished.withLock { $0 }
        #expect(finished.count == 16)
        #expect(finished.allSatisfy { $0.ok })
        let me = pthread_self()
        #expect(finished.allSatisfy { pthread_equal($0.thread, me) != 0 }, "every completion was reaped by the poller")
        #expect(UnsafeRawBufferPointer(into).elementsEqual(pattern))
    }

    @Test func endingPollingDeliversWhatCameWhileInterruptsWereMasked() throws {
        let rig = try StorageRig()
        defer { rig.stop() }
        let d = try rig.disk()
        let controller = try #require(rig.controller)
        controller.waitForSubchannels()
        let poller = controller.beginPolling()
        poller.poll()
        let into = UnsafeMutableRawBufferPointer.allocate(byteCount: 4096, alignment: 4096)
        defer { into.deallocate() }
        let collector = ThreadRecordingCollector()
        try d.submitRead(at: 0, into: into, tag: 1, handler: collector)
        // Masked: the host completes without a signal, and nobody polls.
        sleepNanoseconds(200_000_000)
        #expect(collector.count == 0, "no interrupt while a poller owns the completions")
        poller.end()
        #expect(eventually { collector.count == 1 }, "the end of polling unmasks and delivers the completion")
        // Interrupt delivery is back: a request that nobody polls for completes.
        try d.submitRead(at: 4096, into: into, tag: 2, handler: collector)
        #expect(eventually { collector.count == 2 })
    }
}
