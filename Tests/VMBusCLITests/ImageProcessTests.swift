#if canImport(Glibc)
import Glibc
#endif
import Testing
import VMBusTransport

extension HostGuestProcessTests {
    // MARK: - `vmbus image`, checked against qemu-img where it is installed (CI installs qemu-utils)

    @Test func imagesAreCreatedInspectedCheckedAndConverted() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let d = f.directory.path
        func vmbus(_ args: [String], expect status: Int32 = 0) throws -> ChildProcess {
            let p = try f.vmbus("image-" + args[0], ["image"] + args)
            #expect(p.wait(seconds: 60) == .exited(status), "vmbus image \(args): \(p.stdout) \(p.stderr)")
            return p
        }
        #expect(try vmbus(["create", d + "/a.vhd", "--size", "8M"]).stdout.contains("vhd dynamic, 8.0 MiB"))
        let info = try vmbus(["info", "--json", d + "/a.vhd"]).stdout
        #expect(info.contains("\"format\":\"vhd\"") && info.contains("\"virtual_size\":8388608"), "\(info)")
        #expect(try vmbus(["check", d + "/a.vhd"]).stdout.contains("no errors found"))
        _ = try vmbus(["create", d + "/a.vhd", "--size", "8M"], expect: 1)

        // A raw image with data, converted to a dynamic VHD and back.
        let raw = d + "/r.raw"
        let fd = open(raw, O_RDWR | O_CREAT, 0o644)
        var data = [UInt8](repeating: 0, count: 6 << 20)
        for i in stride(from: 3 << 20, to: (3 << 20) + 70_000, by: 1) { data[i] = UInt8(truncatingIfNeeded: i &* 7) }
        _ = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
        close(fd)
        #expect(try vmbus(["convert", raw, d + "/r.vhd"]).stdout.contains("converted"))
        _ = try vmbus(["convert", d + "/r.vhd", d + "/back.raw", "--format", "raw"])
        let back = open(d + "/back.raw", O_RDONLY)
        var got = [UInt8](repeating: 1, count: data.count)
        _ = got.withUnsafeMutableBytes { pread(back, $0.baseAddress, $0.count, 0) }
        close(back)
        #expect(got == data, "raw → vhd → raw is the identity")
        if access("/usr/bin/qemu-img", X_OK) == 0 {
            let compare = try ChildProcess("/usr/bin/qemu-img", ["compare", "-q", "-f", "raw", "-F", "vpc", raw, d + "/r.vhd"],
                                           directory: d, name: "qemu-img")
            #expect(compare.wait(seconds: 60) == .exited(0), "qemu-img compares our VHD equal to its source")
        }

        // A damaged footer: check exits 1 and says where.
        let vhd = open(d + "/r.vhd", O_RDWR)
        var st = stat()
        fstat(vhd, &st)
        _ = pwrite(vhd, "XXXXXXXX", 8, off_t(st.st_size) - 512)
        close(vhd)
        #expect(try vmbus(["check", d + "/r.vhd"], expect: 1).stderr.contains("VHD footer"))
    }
}
