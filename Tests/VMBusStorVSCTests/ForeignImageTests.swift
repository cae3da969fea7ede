#if canImport(Glibc)
import Glibc
#endif
import Testing
import VMBusDiskBackend
import VMBusStorVSC
import VMBusTestSupport

/// Disk images through the whole stack (StorVSC → VMBus → StorVSP → the image backend), checked against code we
/// did not write: images qemu made read back byte-identical to `qemu-img convert -O raw`; images we made and wrote
/// through the stack pass `qemu-img check` and `qemu-img compare`, and read the same through libvhdi.
@Suite struct ForeignImageTests {
    static let qemu = toolInstalled("qemu-img") && toolInstalled("qemu-io")
    static let libvhdi = toolInstalled("vhdimount")
    static let size = 24 << 20

    /// A scratch directory removed at the end.
    final class Scratch {
        let path: String
        init() throws {
            var template = Array("/tmp/vmbus-images-XXXXXX".utf8CString)
            let made = template.withUnsafeMutableBufferPointer { p in p.baseAddress.flatMap { mkdtemp($0) } }
            path = String(cString: try #require(made))
        }
        deinit { _ = runTool(["rm", "-rf", path]) }
        func file(_ name: String) -> String { path + "/" + name }
    }

    /// The whole disk read through the stack, in 1 MiB requests.
    static func readAll(_ disk: StorVSCDisk) throws -> [UInt8] {
        var all: [UInt8] = []
        var at: UInt64 = 0
        while at < disk.capacityBytes {
            let n = Int(min(1 << 20, disk.capacityBytes - at))
            all += try disk.read(at: at, count: n)
            at += UInt64(n)
        }
        return all
    }

    /// Writes through the stack that cross block boundaries, land in the last block and unmap part of one;
    /// applied to `expected` as well.
    static func writeThrough(_ disk: StorVSCDisk, _ expected: inout [UInt8]) throws {
        let block = disk.blockSize
        for (i, offset) in [0, (1 << 20) - block, (9 << 20) + 3 * block, size - 2 * block].enumerated() {
            let bytes = (0..<(64 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 13 &+ i &+ 1) }
            let n = min(bytes.count, size - offset)
            try disk.write(at: UInt64(offset), Array(bytes[0..<n]))
            expected.replaceSubrange(offset..<(offset + n), with: bytes[0..<n])
        }
        if disk.supportsUnmap {
            try disk.unmap(at: 16 << 20, length: 2 << 20)
            expected.replaceSubrange((16 << 20)..<(18 << 20), with: [UInt8](repeating: 0, count: 2 << 20))
        }
        try disk.flush()
    }

    // MARK: Theirs through our stack

    @Test(.enabled(if: qemu), arguments: [
        ("vhdx", "subformat=dynamic,block_size=1M"), ("vhdx", "subformat=dynamic,block_size=32M"),
        ("vhdx", "subformat=fixed,block_size=8M"), ("vpc", "subformat=dynamic"), ("vpc", "subformat=fixed"),
    ])
    func imagesQemuMadeReadBackThroughTheStackAndStayValidAfterOurWrites(_ format: String, _ options: String) throws {
        let dir = try Scratch()
        let image = dir.file(format == "vpc" ? "q.vhd" : "q.vhdx"), raw = dir.file("q.raw")
        let force = format == "vpc" ? ",force_size=on" : ""
        #expect(runTool(["qemu-img", "create", "-q", "-f", format, "-o", options + force, image, "\(Self.size)"]) == 0)
        #expect(runTool(["qemu-io", "-f", format, "-c", "write -P 0xAB 1M 64k", "-c", "write -P 0x5C 9437184 8192",
                         "-c", "write -P 0x01 0 512", "-c", "write -P 0x77 \(Self.size - 512) 512", image]) == 0)
        #expect(runTool(["qemu-img", "convert", "-f", format, "-O", "raw", image, raw]) == 0)
        var expected = fileBytes(raw)
        do {
            let backend = try #require(DiskImageFormat.detect(path: image)).open(path: image, readOnly: false)
            let rig = try StorageRig(luns: [:], images: [0: backend])
            defer { rig.stop() }
            let disk = try rig.disk()
            #expect(disk.capacityBytes == UInt64(Self.size))
            #expect(byteDifference(try Self.readAll(disk), expected) == "", "qemu's image reads back through the stack")
            try Self.writeThrough(disk, &expected)
            #expect(byteDifference(try Self.readAll(disk), expected) == "")
        }
        // qemu checks VHDX; it has no check for VHD (the comparison below is the test there).
        if format == "vhdx" { #expect(runTool(["qemu-img", "check", "-q", "-f", format, image]) == 0, "qemu-img check after our writes") }
        #expect(runTool(["qemu-img", "convert", "-f", format, "-O", "raw", image, raw]) == 0)
        #expect(byteDifference(fileBytes(raw), expected) == "", "qemu reads what we wrote through the stack")
    }

    // MARK: Ours checked by them

    @Test(.enabled(if: qemu || libvhdi), arguments: [
        (VHDXBackend.CreateType.dynamic, UInt32(512)), (.dynamic, 4096), (.fixed, 512), (.fixed, 4096),
    ])
    func vhdxWeMadeAndWroteThroughTheStackIsReadTheSameByQemuAndLibvhdi(_ type: VHDXBackend.CreateType, _ sector: UInt32) throws {
        let dir = try Scratch()
        let image = dir.file("o.vhdx"), raw = dir.file("o.raw")
        try VHDXBackend.create(path: image, size: UInt64(Self.size), type: type, blockSize: 1 << 20, logicalSectorSize: sector)
        var expected = [UInt8](repeating: 0, count: Self.size)
        do {
            let backend = try VHDXBackend(path: image)
            let rig = try StorageRig(luns: [:], images: [0: backend])
            let disk = try rig.disk()
            #expect(disk.blockSize == Int(sector))
            try Self.writeThrough(disk, &expected)
            rig.stop()
            // As a host that stops does (HostDiskSet.close): the log closed before another tool opens the image.
            // Leaving it to the backend's deinit raced with qemu-img: the stopped system lets go of it a moment later.
            try backend.closeCleanly()
        }
        // qemu reads VHDX with 512-byte logical sectors only.
        if Self.qemu && sector == 512 {
            #expect(runTool(["qemu-img", "check", "-q", "-f", "vhdx", image]) == 0)
            #expect(runTool(["qemu-img", "convert", "-f", "vhdx", "-O", "raw", image, raw]) == 0)
            #expect(byteDifference(fileBytes(raw), expected) == "", "qemu reads what we wrote through the stack")
            #expect(runTool(["qemu-img", "compare", "-q", "-f", "vhdx", "-F", "raw", image, raw]) == 0)
        }
        if Self.libvhdi {
            #expect(byteDifference(libvhdiContents(image) ?? [], expected) == "", "libvhdi reads what we wrote through the stack")
        }
    }

    @Test(.enabled(if: libvhdi)) func aDifferencingVHDXWrittenThroughTheStackIsReadTheSameByLibvhdi() throws {
        let dir = try Scratch()
        let base = dir.file("base.vhdx"), child = dir.file("child.vhdx")
        try VHDXBackend.create(path: base, size: UInt64(Self.size), blockSize: 2 << 20)
        var expected = [UInt8](repeating: 0, count: Self.size)
        for image in [base, child] {
            if image == child { try VHDXBackend.create(path: child, size: 0, type: .differencing, blockSize: 1 << 20, parent: base) }
            let backend = try VHDXBackend(path: image)
            let rig = try StorageRig(luns: [:], images: [0: backend])
            // As a host that stops does: the base must be clean before its child opens it read-only.
            defer { rig.stop(); #expect(throws: Never.self) { try backend.closeCleanly() } }
            let disk = try rig.disk()
            #expect(byteDifference(try Self.readAll(disk), expected) == "")
            // The child's writes land over the base's, shifted so that both layers show.
            var shifted = expected
            try Self.writeThrough(disk, &shifted)
            expected = shifted
        }
        #expect(byteDifference(libvhdiContents(child) ?? [], expected) == "", "libvhdi reads the chain as the stack wrote it")
    }

    @Test(.enabled(if: qemu), arguments: [VHDBackend.CreateType.dynamic, .fixed])
    func vhdWeMadeAndWroteThroughTheStackIsReadTheSameByQemuAndLibvhdi(_ type: VHDBackend.CreateType) throws {
        let dir = try Scratch()
        let image = dir.file("o.vhd"), raw = dir.file("o.raw")
        try VHDBackend.create(path: image, size: UInt64(Self.size), type: type)
        var expected = [UInt8](repeating: 0, count: Self.size)
        do {
            let backend = try VHDBackend(path: image)
            let rig = try StorageRig(luns: [:], images: [0: backend])
            try Self.writeThrough(try rig.disk(), &expected)
            rig.stop()
            try backend.closeCleanly()
        }
        #expect(runTool(["qemu-img", "convert", "-f", "vpc", "-O", "raw", image, raw]) == 0)
        #expect(byteDifference(fileBytes(raw), expected) == "", "qemu reads what we wrote through the stack")
        #expect(runTool(["qemu-img", "compare", "-q", "-f", "vpc", "-F", "raw", image, raw]) == 0)
        if Self.libvhdi {
            #expect(byteDifference(libvhdiContents(image) ?? [], expected) == "", "libvhdi reads what we wrote through the stack")
        }
    }
}

