import Testing
import VMBusTestSupport
import VMBusTransport

/// Malformed `--nic` and `--tap` flags are usage errors (exit 64, one message naming the flag), never
/// crashes, and nothing is opened.
@Suite(.serialized)
struct NICFlagProcessTests {
    @Test(arguments: ["tap:", "tap:sixteen-bytes-xx", "switch:", "switch,mtu=9001", "switch,mtu=67", "switch,mtu=",
                      "switch,mac=01:02", "switch,mac=zz:00:00:00:00:00", "bogus", "switch,speed=10", "tap:a,tap:a"])
    func malformedNICFlagsAreRefusedWithAUsageError(_ flag: String) throws {
        let directory = try TemporaryDirectory("vmbus-nicflag")
        defer { directory.remove() }
        let p = try ChildProcess(vmbusExecutable, ["host", "--socket", directory.path + "/h.sock", "--nic", flag],
                                 directory: directory.path, name: "host")
        defer { p.kill9() }
        #expect(p.wait(seconds: 20) == .exited(64), "--nic \(flag): \(p.stderr)")
        #expect(p.stderr.contains("--nic"), "\(p.stderr)")
        #expect(!p.stderr.contains("Fatal error"), "\(p.stderr)")
    }

    @Test(arguments: [["--nic", "tap:vmdup0", "--nic", "tap:vmdup0"], ["--nic", "switch", "--tap", "sixteen-bytes-xx"]])
    func aTAPNamedTwiceOrTooLongIsRefused(_ flags: [String]) throws {
        let directory = try TemporaryDirectory("vmbus-nicflag")
        defer { directory.remove() }
        let p = try ChildProcess(vmbusExecutable, ["up", "--data-dir", directory.path + "/data", "--duration", "1"] + flags,
                                 directory: directory.path, name: "up")
        defer { p.kill9() }
        #expect(p.wait(seconds: 20) == .exited(64), "\(flags): \(p.stderr)")
        #expect(p.stderr.contains(flags[flags.count - 2]), "\(p.stderr)")
    }
}
