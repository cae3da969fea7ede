#if canImport(Glibc)
import Glibc
#endif
import Testing
import VMBusTestSupport
import VMBusTransport

extension HostGuestProcessTests {
    // MARK: - malformed device flags are usage errors, never crashes

    /// Empty options between commas, a key without a value, an empty path: each is refused by the
    /// argument parser with a usage error (exit 64) and one line on stderr, before anything is built.
    @Test(arguments: ["a,,ro", "a,", ",ro", "a,=", "a,size=", "a,size=K", "a,format=", "a,,,,"])
    func malformedDiskFlagsAreRefusedWithAUsageError(_ flag: String) throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let p = try f.vmbus("host", ["host", "--socket", f.socket, "--disk", flag])
        defer { p.kill9() }
        #expect(p.wait(seconds: 20) == .exited(64), "--disk \(flag): \(p.stderr)")
        #expect(p.stderr.contains("--disk"), "\(p.stderr)")
        #expect(!p.stderr.contains("Fatal error"), "\(p.stderr)")
    }
}
