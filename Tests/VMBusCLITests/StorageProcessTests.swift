#if canImport(Glibc)
import Glibc
#endif
import Logging
import Testing
import VMBusDiskBackend
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

    /// A host that stops (SIGTERM) leaves its VHDX clean: no log to replay, so qemu opens it read-only.
    @Test func aHostThatStopsLeavesItsVHDXCleanForOtherTools() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let path = f.directory.path + "/d.vhdx"
        let host = try f.host("host", ["--echo", "0", "--disk", path + ",size=64M"])
        defer { host.kill9() }
        do {
            let guest = try StorageGuest(f)
            let disk = try guest.disk()
            for i in 0..<8 {
                let b = [UInt8](repeating: UInt8(i + 1), count: 4096)
                try b.withUnsafeBytes { (p: UnsafeRawBufferPointer) in try disk.write(at: UInt64(i) << 20, from: p) }
            }
            try disk.flush()
            #expect(try f.image(["check", path]).stdout.contains("log holds"), "a live log while the host runs")
            guest.bus.disconnect()
        }
        host.signal(SIGTERM)
        #expect(host.wait(seconds: 30) == .exited(0))
        let check = try f.image(["check", path])
        #expect(!check.stdout.contains("log holds"), "closed cleanly: \(check.stdout)")
        if access("/usr/bin/qemu-img", X_OK) == 0 {
            let q = try ChildProcess("/usr/bin/qemu-img", ["check", "-f", "vhdx", path], directory: f.directory.path, name: "qemu-check")
            #expect(q.wait(seconds: 60) == .exited(0), "qemu opens it read-only: \(q.stdout) \(q.stderr)")
        }
    }

    /// Write + flush in a loop, the host killed with SIGKILL in the middle: every block whose flush was
    /// acknowledged is in the image. (A SIGKILL keeps the page cache, so this proves the ordering of
    /// acknowledgement after the write reached the backend; fdatasync before the completion is what carries it to
    /// the medium, see RawFileBackendTests.) The writes stride across 1 MiB blocks, so a dynamic VHDX is killed
    /// while it allocates: its log must leave it consistent, replayed by us and, on a copy, by qemu.
    @Test(arguments: ["raw", "vhdx"])
    func everyAcknowledgedFlushSurvivesAKill9OfTheHost(_ format: String) throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let path = f.directory.path + "/d." + format
        let size = 256 << 20
        if format == "vhdx" {
            _ = try f.image(["create", path, "--size", "256M", "--block-size", "1M"])
        }
        let host = try f.host("host", ["--echo", "0", "--disk", format == "raw" ? path + ",size=256M" : path])
        defer { host.kill9() }
        let guest = try StorageGuest(f)
        defer { guest.bus.disconnect() }
        let disk = try guest.disk()
        let acknowledged = Condition(0)
        let stopped = Condition<String?>(nil)
        @Sendable func block(_ i: Int) -> [UInt8] { (0..<4096).map { UInt8(truncatingIfNeeded: i &* 31 &+ $0 &+ 1) } }
        /// Block i goes to 1 MiB block i % 256, so the first 256 writes each allocate one.
        @Sendable func offset(_ i: Int) -> Int { (i % 256) << 20 + (i / 256) * 4096 }
        _ = startThread(name: "writer") {
            var i = 0
            while i < 4096 {
                do {
                    let b = block(i)
                    try b.withUnsafeBytes { (p: UnsafeRawBufferPointer) in try disk.write(at: UInt64(offset(i)), from: p) }
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
        #expect(count >= 50)
        /// The acknowledged blocks missing from `contents`.
        func missing(_ contents: [UInt8]) -> [Int] {
            guard contents.count == size else { return [-1] }
            return (0..<count).filter { i in Array(contents[offset(i)..<(offset(i) + 4096)]) != block(i) }
        }
        if format == "raw" {
            #expect(missing(readFile(path, count: size)) == [], "acknowledged blocks missing after the kill")
            return
        }
        // The image as the kill left it: consistent as it stands, with a log to replay.
        let qemu = access("/usr/bin/qemu-img", X_OK) == 0
        let copy = f.directory.path + "/copy.vhdx"
        #expect(try f.vmbus("check-dirty", ["image", "check", path]).wait(seconds: 60) == .exited(0))
        _ = try ChildProcess("/bin/cp", [path, copy], directory: f.directory.path, name: "cp").wait(seconds: 60)
        // Ours replays it (a writable open), then every acknowledged block reads back.
        do {
            let d = try VHDXBackend(path: path)
            #expect(d.replayedLogEntries > 0)
        }
        let check = try f.image(["check", path])
        #expect(!check.stdout.contains("log holds"), "replayed: \(check.stdout)")
        let raw = f.directory.path + "/ours.raw"
        _ = try f.image(["convert", path, raw])
        #expect(missing(readFile(raw, count: size)) == [], "acknowledged blocks missing after our replay")
        guard qemu else { return }
        // qemu replays the copy's log by itself (check -r all opens it writable), finds it clean, and reads
        // every acknowledged block: a foreign reader of our log.
        let q = try ChildProcess("/usr/bin/qemu-img", ["check", "-r", "all", "-f", "vhdx", copy], directory: f.directory.path, name: "qemu-check")
        #expect(q.wait(seconds: 60) == .exited(0), "qemu-img check: \(q.stdout) \(q.stderr)")
        let q2 = try ChildProcess("/usr/bin/qemu-img", ["check", "-f", "vhdx", path], directory: f.directory.path, name: "qemu-check2")
        #expect(q2.wait(seconds: 60) == .exited(0), "qemu-img check of our replayed image: \(q2.stdout) \(q2.stderr)")
        let qraw = f.directory.path + "/qemu.raw"
        let c = try ChildProcess("/usr/bin/qemu-img", ["convert", "-f", "vhdx", "-O", "raw", copy, qraw], directory: f.directory.path, name: "qemu-convert")
        #expect(c.wait(seconds: 60) == .exited(0))
        #expect(missing(readFile(qraw, count: size)) == [], "acknowledged blocks missing after qemu's replay")
    }
}
