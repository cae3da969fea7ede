#if canImport(Glibc)
import Glibc
#endif
import Testing
import VMBusTestSupport
import VMBusTransport

/// `vmbus ic …` against a host and a guest in their own processes.
@Suite(.serialized)
struct ICProcessTests {
    typealias Fixture = HostGuestProcessTests.Fixture

    /// Runs `vmbus ic ARGS --socket S` to its end: exit status and output.
    static func ic(_ f: Fixture, _ args: [String]) throws -> (ChildProcess.Termination?, String) {
        let p = try f.vmbus("ic-\(args.first ?? "")", ["ic"] + args + ["--socket", f.socket])
        let t = p.wait(seconds: 60)
        return (t, p.stdout + p.stderr)
    }

    @Test func heartbeatTurnsUnresponsiveUnderSIGSTOPAndAliveAfterSIGCONT() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let host = try f.host("host", ["--heartbeat-timeout", "1", "--echo", "0"], integrationServices: true)
        defer { host.kill9() }
        let guest = try f.guest("guest", ["--kvp", "Role=ci-guest"])
        defer { guest.kill9() }
        try guest.waitForOutput("channels: 0 open")
        try eventually("the heartbeat is alive", seconds: 10) { (try? Self.ic(f, ["heartbeat"]))?.0 == .exited(0) }
        let (_, alive) = try Self.ic(f, ["heartbeat"])
        #expect(alive.contains("alive") && alive.contains("sequence: "), "\(alive)")
        guest.signal(SIGSTOP)
        let stopped = monotonicNanoseconds()
        try eventually("unresponsive once the guest is stopped", seconds: 10) { (try? Self.ic(f, ["heartbeat"]))?.0 == .exited(1) }
        // Bound: the timeout (1 s) plus a beat (1 s) plus the command's own start.
        #expect(monotonicNanoseconds() - stopped < 6_000_000_000)
        #expect(try Self.ic(f, ["heartbeat"]).1.contains("unresponsive"))
        guest.signal(SIGCONT)
        try eventually("alive again after SIGCONT", seconds: 10) { (try? Self.ic(f, ["heartbeat"]))?.0 == .exited(0) }

        // The other services between the two processes.
        let (t1, time) = try Self.ic(f, ["time"])
        #expect(t1 == .exited(0) && time.contains("HV_S_OK"), "\(time)")
        #expect(try Self.ic(f, ["kvp", "set", "Owner", "ci"]).0 == .exited(0))
        let (t2, value) = try Self.ic(f, ["kvp", "get", "Owner"])
        #expect(t2 == .exited(0) && value.hasPrefix("ci"), "\(value)")
        let (t3, role) = try Self.ic(f, ["kvp", "get", "--pool", "1", "Role"])
        #expect(t3 == .exited(0) && role.hasPrefix("ci-guest"), "\(role)")
        let (t4, missing) = try Self.ic(f, ["kvp", "get", "Nope"])
        #expect(t4 == .exited(1) && missing.contains("no key"), "\(missing)")
        let (t5, list) = try Self.ic(f, ["kvp", "list", "--pool", "2"])
        #expect(t5 == .exited(0) && list.contains("OSName="), "\(list)")
        let source = f.directory.path + "/src.txt"
        #expect(writeFileBytes(source, Array("from the host\n".utf8)))
        let target = f.directory.path + "/guest-side/copied.txt"
        let (t6, copied) = try Self.ic(f, ["copy", source, target, "--create-path"])
        #expect(t6 == .exited(0), "\(copied)")
        #expect(readTextFile(target) == "from the host\n")
        let (t7, again) = try Self.ic(f, ["copy", source, target])
        #expect(t7 == .exited(1) && again.contains("HV_ERROR_ALREADY_EXISTS"), "\(again)")
        // No hooks, no daemon: a freeze fails as it does in Linux without hv_vss_daemon.
        #expect(try Self.ic(f, ["vss", "freeze"]).0 == .exited(1))

        // Shutdown: the guest answers, then unloads cleanly by itself.
        let (t8, down) = try Self.ic(f, ["shutdown", "--reason", "ci"])
        #expect(t8 == .exited(0) && down.contains("shutting down"), "\(down)")
        #expect(guest.wait(seconds: 15) == .exited(0))
        #expect(guest.stdout.contains("unloaded cleanly"))
        try eventually("the host sees the guest gone", seconds: 10) { (try? Self.ic(f, ["heartbeat"]))?.1.contains("no guest") == true }
    }

    @Test func heartbeatLossIsReportedWhenTheGuestIsKilled() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let host = try f.host("host", ["--heartbeat-timeout", "1", "--echo", "0"], integrationServices: true)
        defer { host.kill9() }
        let guest = try f.guest("guest", [])
        defer { guest.kill9() }
        try eventually("the heartbeat is alive", seconds: 10) { (try? Self.ic(f, ["heartbeat"]))?.0 == .exited(0) }
        guest.kill9()
        // Unresponsive first, or at once gone when the host already released the partition: exit 1 either way.
        try eventually("the killed guest is not alive", seconds: 10) {
            guard let (t, out) = try? Self.ic(f, ["heartbeat"]) else { return false }
            return t == .exited(1) && (out.contains("unresponsive") || out.contains("no guest"))
        }
        #expect(host.isRunning)
    }

    /// Not under ThreadSanitizer: the guest process's runtime dies (exit 66) when libfuse cancels the workers of
    /// its /dev/vmbus mount as it stops (docs/CONFORMANCE.md "Sanitizers").
    @Test(.enabled(if: Sanitizer.active != .thread))
    func aGuestWithDevVMBusServesTheDaemonsFilesAndForwardsToAnAttachedDaemon() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let dir = f.directory.path + "/dev-vmbus"
        mkdir(dir, 0o755)
        let host = try f.host("host", ["--echo", "0"], integrationServices: true)
        defer { host.kill9() }
        let guest = try f.guest("guest", ["--dev-vmbus", dir, "--kvp", "Role=ours"])
        defer { guest.kill9() }
        try guest.waitForOutput("channels: 0 open")
        #expect(listDirectory(dir).sorted() == ["hv_fcopy", "hv_kvp", "hv_vss"])
        // No daemon yet: the guest answers from its own pools.
        try eventually("KVP answers", seconds: 10) { (try? Self.ic(f, ["kvp", "get", "--pool", "1", "Role"]))?.0 == .exited(0) }
        guard DaemonNamespace.available else { return }
        let daemon = try DaemonNamespace("hv_kvp_daemon", devices: dir, scratch: f.directory.path)
        // Attached, hv_kvp_daemon answers instead: its guest pool does not have our key.
        try eventually("hv_kvp_daemon answers", seconds: 10) {
            (try? Self.ic(f, ["kvp", "get", "--pool", "1", "Role"]))?.0 == .exited(1) || !daemon.process.isRunning
        }
        #expect(daemon.process.isRunning, "\(daemon.process.stderr)")
        #expect(try Self.ic(f, ["kvp", "set", "Owner", "daemon"]).0 == .exited(0))
        #expect(try Self.ic(f, ["kvp", "get", "Owner"]).1.hasPrefix("daemon"))
        daemon.process.kill9()
        guest.signal(SIGTERM)
        #expect(guest.wait(seconds: 15) == .exited(0))
        // The FUSE files went with the guest.
        #expect(listDirectory(dir).isEmpty)
    }
}
