#if canImport(Glibc)
import Glibc
#endif
import Logging
import Testing
import VMBusGuest
import VMBusStorVSC
import VMBusTestSupport
import VMBusTransport

extension HostGuestProcessTests {
    // MARK: - Storage across two processes: this test is the guest, `vmbus host` a child process

    /// A guest in this process attached to `f`'s host, with StorVSC bound.
    struct StorageGuest {
        let bus: GuestBus
        let driver: StorVSCDriver
        init(_ f: Fixture) throws {
            let synic = try SocketGuestSynIC(path: f.socket, memoryPages: 16384)
            var logger = Logger(label: "test.guest")
            logger.logLevel = .critical
            bus = GuestBus(synic: synic, logger: logger)
            try bus.connect()
            var configuration = StorVSCController.Configuration()
            configuration.subchannels = 2
            configuration.requestTimeoutNanoseconds = 20_000_000_000
            driver = StorVSCDriver(configuration: configuration, logger: logger)
            bus.register(driver)
            bus.flushWork()
            driver.controllers.first?.waitForSubchannels()
        }
        func disk() throws -> StorVSCDisk { try #require(driver.disks.first) }
    }

    @Test(arguments: [1, 16, 64])
    func randomIOAcrossTwoProcessesAtQueueDepth(_ depth: Int) throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let host = try f.host("host", ["--echo", "0", "--disk", f.directory.path + "/d.raw,size=64M"])
        defer { host.kill9() }
        let guest = try StorageGuest(f)
        defer { guest.bus.disconnect() }
        let disk = try guest.disk()
        #expect(guest.driver.controllers.first?.channelCount == 3, "the primary and two sub-channels")
        let region = (64 << 20) / depth
        let failures = Condition<[String]>([])
        let finished = Condition(0)
        for t in 0..<depth {
            _ = startThread(name: "io") {
                var rng = SplitMix64(seed: UInt64(t) &* 0x9E37_79B9 &+ UInt64(depth))
                var shadow = [UInt8](repeating: 0, count: region)
                let base = UInt64(t * region)
                do {
                    for _ in 0..<Sanitizer.scaled(depth == 1 ? 300 : max(10, 600 / depth), minimum: 4) {
                        let length = 1 + Int(rng.next() % UInt64(min(region, Sanitizer.active == nil ? 200_000 : 20_000)))
                        let offset = Int(rng.next() % UInt64(region - length + 1))
                        if rng.next() % 3 == 0 {
                            var got = [UInt8](repeating: 0, count: length)
                            try got.withUnsafeMutableBytes { (b: UnsafeMutableRawBufferPointer) in
                                try disk.read(at: base + UInt64(offset), into: b)
                            }
                            if got[...] != shadow[offset..<(offset + length)] {
                                failures.update { $0.append("thread \(t): mismatch at \(offset)+\(length)") }
                            }
                        } else {
                            let bytes = (0..<length).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
                            try bytes.withUnsafeBytes { (b: UnsafeRawBufferPointer) in
                                try disk.write(at: base + UInt64(offset), from: b)
                            }
                            shadow.replaceSubrange(offset..<(offset + length), with: bytes)
                        }
                    }
                } catch {
                    failures.update { $0.append("thread \(t): \(error)") }
                }
                finished.update { $0 += 1 }
            }
        }
        #expect(finished.wait(timeoutNanoseconds: 300_000_000_000) { $0 == depth ? true : nil } == true)
        #expect(failures.withLock { $0 } == [])
    }

    /// Write + flush in a loop, the host killed with SIGKILL in the middle: every block whose flush was
    /// acknowledged is in the file. (A SIGKILL keeps the page cache, so this proves the ordering of
    /// acknowledgement after the write reached the backend; fdatasync before the completion is what carries it to
    /// the medium, see RawFileBackendTests.)
    @Test func everyAcknowledgedFlushSurvivesAKill9OfTheHost() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let path = f.directory.path + "/d.raw"
        let host = try f.host("host", ["--echo", "0", "--disk", path + ",size=16M"])
        defer { host.kill9() }
        let guest = try StorageGuest(f)
        defer { guest.bus.disconnect() }
        let disk = try guest.disk()
        let acknowledged = Condition(0)
        let stopped = Condition<String?>(nil)
        @Sendable func block(_ i: Int) -> [UInt8] { (0..<4096).map { UInt8(truncatingIfNeeded: i &* 31 &+ $0) } }
        _ = startThread(name: "writer") {
            var i = 0
            while i < 4096 {
                do {
                    let b = block(i)
                    try b.withUnsafeBytes { (p: UnsafeRawBufferPointer) in try disk.write(at: UInt64(i) * 4096, from: p) }
                    try disk.flush()
                } catch {
                    stopped.update { $0 = "\(error)" }
                    return
                }
                i += 1
                acknowledged.update { $0 = i }
            }
            stopped.update { $0 = "finished" }
        }
        #expect(acknowledged.wait(timeoutNanoseconds: 30_000_000_000) { $0 >= 50 ? true : nil } == true)
        host.kill9()
        let why = stopped.wait(timeoutNanoseconds: 60_000_000_000) { $0 }
        #expect(why != nil && why != "finished", "the writer saw the host go: \(why ?? "still running")")
        let count = acknowledged.withLock { $0 }
        let fd = open(path, O_RDONLY)
        defer { close(fd) }
        var bad: [Int] = []
        for i in 0..<count {
            var got = [UInt8](repeating: 0, count: 4096)
            let n = got.withUnsafeMutableBytes { pread(fd, $0.baseAddress, 4096, off_t(i) * 4096) }
            if n != 4096 || got != block(i) { bad.append(i) }
        }
        #expect(count >= 50)
        #expect(bad.isEmpty, "acknowledged blocks missing after the kill: \(bad.prefix(10))")
    }
}

