#if canImport(Glibc)
import Glibc
#endif
import Testing
import VMBusGuest
import VMBusTestSupport
import VMBusTransport

extension HostGuestProcessTests {
    // MARK: - 4: connect and disconnect, again and again

    @Test func twoHundredConnectCyclesLeaveNoDescriptorsBehindInTheHost() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let host = try f.host("host", ["--log-level", "warning"])
        defer { host.kill9() }
        sleepNanoseconds(100_000_000)
        let baseline = host.descriptorCount

        // 190 guests in this process (SocketGuestSynIC + GuestBus: HELLO, handshake, offers, a channel, UNLOAD) …
        var unloaded = 0
        for _ in 0..<190 {
            let synic = try SocketGuestSynIC(path: f.socket, memoryPages: 64)
            let bus = GuestBus(synic: synic)
            try bus.connect()
            #expect(bus.devices.count == 1)
            // A channel too, so that doorbells and a ring GPADL come and go with the partition.
            let driver = EchoDriver(ringSize: 16 * 1024)
            bus.register(driver)
            #expect(driver.clients.first?.channels.count == 1)
            if bus.disconnect() { unloaded += 1 }
        }
        #expect(unloaded == 190)
        // … and 10 `vmbus list` processes.
        for i in 0..<10 {
            let list = try f.vmbus("list\(i)", ["list", "--socket", f.socket])
            defer { list.kill9() }
            #expect(list.wait(seconds: 20) == .exited(0), "\(list.stderr)")
            #expect(list.stdout == "VMBUS ID  1: swift-vmbus echo test device\n")
        }
        try eventually("host descriptors back to \(baseline) (now \(host.descriptorCount))") {
            host.descriptorCount == baseline
        }
        #expect(!host.mappings.contains("vmbus-guest-memory"))
        #expect(host.isRunning)
        let log = host.stderr
        #expect(!log.contains("refused"), "\(log)")
    }

    // MARK: - 5: another user

    static var canSwitchUser: Bool { getuid() == 0 && access("/usr/bin/setpriv", X_OK) == 0 }

    @Test(.enabled(if: canSwitchUser, "needs root and setpriv"))
    func aGuestRunningAsAnotherUIDIsRefusedWithPermissionDenied() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let host = try f.host()
        defer { host.kill9() }

        // The socket is created 0600: only its owner may connect at all.
        var st = stat()
        #expect(stat(f.socket, &st) == 0)
        #expect(st.st_mode & S_IFMT == S_IFSOCK)
        #expect(st.st_mode & 0o777 == 0o600)
        #expect(st.st_uid == getuid())

        func listAs65534(_ name: String) throws -> ChildProcess {
            try ChildProcess("/usr/bin/setpriv",
                             ["--reuid=65534", "--regid=65534", "--clear-groups", vmbusExecutable, "list", "--socket", f.socket],
                             directory: f.directory.path, name: name)
        }
        #expect(chmod(f.directory.path, 0o755) == 0)
        let blocked = try listAs65534("list-0600")
        defer { blocked.kill9() }
        #expect(blocked.wait(seconds: 20) == .exited(1))
        #expect(blocked.stderr == "vmbus: cannot attach to the host at \(f.socket): connect(\(f.socket)): Permission denied\n")

        // Let the filesystem allow it, so that the host's own credential check (SO_PEERCRED) is what refuses.
        #expect(chmod(f.socket, 0o666) == 0)
        let list = try listAs65534("list-0666")
        defer { list.kill9() }
        let status = list.wait(seconds: 20)
        #expect(status != nil && status != .exited(0), "\(status.map { "\($0)" } ?? "hung")")
        let errLines = list.stderr.lines
        #expect(errLines.count == 1, "\(list.stderr)")
        #expect(errLines.first?.hasPrefix("vmbus: ") == true)
        #expect(errLines.first?.contains("permission denied") == true, "\(list.stderr)")
        #expect(list.stdout.isEmpty)
        let log = try host.waitForOutput("refused a guest connection: peer uid 65534 is not allowed", stderr: true)
        #expect(!log.contains("partition 1:"))
        #expect(host.isRunning)
    }
}
