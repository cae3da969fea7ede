#if canImport(Glibc)
import Glibc
#endif
import Testing
import VMBusTestSupport
import VMBusTransport

extension HostGuestProcessTests {
    // MARK: - Storage: `vmbus disk` through the control socket, hot add and remove seen by a FUSE guest

    @Test func disksAreListedAttachedAndDetachedThroughTheControlSocket() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let a = f.directory.path + "/a.raw", b = f.directory.path + "/b.raw"
        let host = try f.host("host", ["--echo", "0", "--disk", a + ",size=4M"])
        defer { host.kill9() }
        func disk(_ words: [String], expect status: Int32 = 0) throws -> ChildProcess {
            let p = try f.vmbus("disk-" + words[0], ["disk"] + words + ["--socket", f.socket])
            #expect(p.wait(seconds: 30) == .exited(status), "vmbus disk \(words): \(p.stdout) \(p.stderr)")
            return p
        }
        #expect(try disk(["list"]).stdout == "scsi LUN 0\t4.0 MiB\trw\traw \(a)\n")

        // With root and /dev/fuse (CI), a guest shows each disk as a file and follows hot add and remove. Not under
        // ThreadSanitizer: libfuse cancels its worker threads inside blocking reads at unmount, which TSan reports
        // as "thread finished with ignores enabled" (its bookkeeping of an uninstrumented library, not a race).
        let fuse = getuid() == 0 && access("/dev/fuse", F_OK) == 0 && Sanitizer.active != .thread
        let dir = f.directory.path + "/disks"
        var guest: ChildProcess?
        if fuse {
            mkdir(dir, 0o755)
            guest = try f.guest("guest", ["--fuse", dir])
            try guest?.waitForOutput("disks exposed as files")
        }
        defer { guest?.kill9() }
        func size(_ name: String) -> Int? {
            var st = stat()
            return stat(dir + "/" + name, &st) == 0 ? Int(st.st_size) : nil
        }
        if fuse { #expect(size("sda") == 4 << 20) }

        #expect(try disk(["attach", b + ",size=2M"]).stdout.contains("attached \(b) as LUN 1, 2.0 MiB"))
        #expect(try disk(["list"]).stdout.contains("scsi LUN 1\t2.0 MiB\trw\traw \(b)"))
        if fuse { #expect(eventually { size("sdb") == 2 << 20 }, "the guest rescanned after ENUMERATE_BUS") }

        #expect(try disk(["detach", "1"]).stdout.contains("detached LUN 1"))
        if fuse { #expect(eventually { size("sdb") == nil }, "the file went with the LUN") }
        #expect(try disk(["detach", "7"], expect: 1).stderr.contains("no disk at LUN 7"))
        #expect(try disk(["attach", f.directory.path + "/missing.raw"], expect: 1).stderr.contains("does not exist"))
        #expect(try disk(["list"]).stdout == "scsi LUN 0\t4.0 MiB\trw\traw \(a)\n")

        if let guest {
            guest.signal(SIGTERM)
            #expect(guest.wait(seconds: 30) == .exited(0), "\(guest.stdout) \(guest.stderr)")
            #expect(guest.stdout.contains("unloaded cleanly"))
        }
    }
}

