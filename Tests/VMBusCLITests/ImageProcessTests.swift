#if canImport(Glibc)
import Glibc
#endif
import Testing
import VMBusTestSupport
import VMBusTransport

extension HostGuestProcessTests.Fixture {
    /// Runs `vmbus image ARGS` and expects `status`.
    func image(_ args: [String], expect status: Int32 = 0) throws -> ChildProcess {
        let p = try vmbus("image-" + args[0], ["image"] + args)
        #expect(p.wait(seconds: 60) == .exited(status), "vmbus image \(args): \(p.stdout) \(p.stderr)")
        return p
    }
}

/// A 6 MiB raw image with 70,000 bytes of data at 3 MiB; returns its bytes.
private func writeSampleRaw(_ path: String) -> [UInt8] {
    let fd = open(path, O_RDWR | O_CREAT, 0o644)
    var data = [UInt8](repeating: 0, count: 6 << 20)
    for i in stride(from: 3 << 20, to: (3 << 20) + 70_000, by: 1) { data[i] = UInt8(truncatingIfNeeded: i &* 7) }
    _ = data.withUnsafeBytes { pwrite(fd, $0.baseAddress, $0.count, 0) }
    close(fd)
    return data
}

/// The bytes of the file at `path` (up to `count`).
func readFile(_ path: String, count: Int) -> [UInt8] {
    let fd = open(path, O_RDONLY)
    var got = [UInt8](repeating: 1, count: count)
    _ = got.withUnsafeMutableBytes { pread(fd, $0.baseAddress, $0.count, 0) }
    close(fd)
    return got
}

extension HostGuestProcessTests {
    // MARK: - `vmbus image`, checked against qemu-img where it is installed (CI installs qemu-utils)

    @Test func imagesAreCreatedInspectedCheckedAndConverted() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let d = f.directory.path
        func vmbus(_ args: [String], expect status: Int32 = 0) throws -> ChildProcess { try f.image(args, expect: status) }
        #expect(try vmbus(["create", d + "/a.vhd", "--size", "8M"]).stdout.contains("vhd dynamic, 8.0 MiB"))
        let info = try vmbus(["info", "--json", d + "/a.vhd"]).stdout
        #expect(info.contains("\"format\":\"vhd\"") && info.contains("\"virtual_size\":8388608"), "\(info)")
        #expect(try vmbus(["check", d + "/a.vhd"]).stdout.contains("no errors found"))
        _ = try vmbus(["create", d + "/a.vhd", "--size", "8M"], expect: 1)

        // A raw image with data, converted to a dynamic VHD and back.
        let raw = d + "/r.raw"
        let data = writeSampleRaw(raw)
        #expect(try vmbus(["convert", raw, d + "/r.vhd"]).stdout.contains("converted"))
        _ = try vmbus(["convert", d + "/r.vhd", d + "/back.raw", "--format", "raw"])
        let got = readFile(d + "/back.raw", count: data.count)
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

    @Test func vhdxImagesWithParentsSectorSizesAndALogAreHandledByTheCommand() throws {
        let f = try Fixture()
        defer { f.directory.remove() }
        let d = f.directory.path
        func vmbus(_ args: [String], expect status: Int32 = 0) throws -> ChildProcess { try f.image(args, expect: status) }
        #expect(try vmbus(["create", d + "/base.vhdx", "--size", "16M", "--block-size", "1M"]).stdout.contains("vhdx dynamic, 16.0 MiB"))
        #expect(try vmbus(["create", d + "/s4k.vhdx", "--size", "16M", "--sector-size", "4096"]).stdout.contains("vhdx dynamic"))
        let info4k = try vmbus(["info", "--json", d + "/s4k.vhdx"]).stdout
        #expect(info4k.contains("\"logical_sector_size\":4096") && info4k.contains("\"log\":\"clean\""), "\(info4k)")
        _ = try vmbus(["create", d + "/x.vhd", "--size", "16M", "--sector-size", "4096"], expect: 64)
        #expect(try vmbus(["create", d + "/child.vhdx", "--parent", d + "/base.vhdx"]).stdout.contains("vhdx differencing, 16.0 MiB"))
        let info = try vmbus(["info", "--json", d + "/child.vhdx"]).stdout
        #expect(info.contains("\"type\":\"differencing\"") && info.contains("\"parents\":[\"\(d)/base.vhdx\"]"), "\(info)")
        #expect(try vmbus(["check", d + "/child.vhdx"]).stdout.contains("parents: \(d)/base.vhdx"))

        // raw → vhdx, compared by qemu-img; vhdx → raw is the identity.
        let raw = d + "/r.raw"
        let data = writeSampleRaw(raw)
        #expect(try vmbus(["convert", raw, d + "/r.vhdx", "--block-size", "1M"]).stdout.contains("converted"))
        _ = try vmbus(["convert", d + "/r.vhdx", d + "/back.raw"])
        let got = readFile(d + "/back.raw", count: data.count)
        #expect(got == data, "raw → vhdx → raw is the identity")
        if access("/usr/bin/qemu-img", X_OK) == 0 {
            for args in [["compare", "-q", "-f", "raw", "-F", "vhdx", raw, d + "/r.vhdx"], ["check", "-q", "-f", "vhdx", d + "/r.vhdx"]] {
                let q = try ChildProcess("/usr/bin/qemu-img", args, directory: d, name: "qemu-img")
                #expect(q.wait(seconds: 60) == .exited(0), "qemu-img \(args[0])")
            }
        }

        // Both headers damaged: check exits 1 and names the structure.
        let v = open(d + "/r.vhdx", O_RDWR)
        _ = pwrite(v, "XXXX", 4, 64 << 10)
        _ = pwrite(v, "XXXX", 4, 128 << 10)
        close(v)
        #expect(try vmbus(["check", d + "/r.vhdx"], expect: 1).stderr.contains("VHDX header"))
    }
}
