import Foundation
import Glibc
import Testing
import VMBusTestSupport
import VMBusDiskBackend

let qemuImg: Bool = runTool(["qemu-img", "--version"]) == 0

extension BlockBackend {
    func write(_ bytes: [UInt8], at offset: UInt64, fua: Bool = false) throws {
        let s = try Segments([bytes.count])
        s.fill(bytes)
        try write(at: offset, length: bytes.count, from: s.vector, fua: fua)
    }
    func read(_ count: Int, at offset: UInt64) throws -> [UInt8] {
        let s = try Segments([count])
        try read(at: offset, length: count, into: s.vector)
        return s.bytes
    }
}

@Suite struct VHDBackendTests {
    @Test(arguments: [VHDBackend.CreateType.fixed, .dynamic])
    func createWriteReopenRead(_ type: VHDBackend.CreateType) throws {
        let dir = TempDir()
        let path = dir.file("d.vhd")
        try VHDBackend.create(path: path, size: 9 << 20, type: type, blockSize: 1 << 20)
        do {
            let d = try VHDBackend(path: path)
            #expect(d.info.capacity == 9 << 20)
            // Across a block boundary, and in the last block.
            try d.write(pattern(8192, seed: 1), at: (1 << 20) - 4096)
            try d.write(pattern(512, seed: 2), at: (9 << 20) - 512)
            try d.flush()
        }
        let d = try VHDBackend(path: path)
        #expect(try d.read(8192, at: (1 << 20) - 4096) == pattern(8192, seed: 1))
        #expect(try d.read(512, at: (9 << 20) - 512) == pattern(512, seed: 2))
        #expect(try d.read(4096, at: 5 << 20) == [UInt8](repeating: 0, count: 4096), "an unallocated block reads zeros")
        if type == .dynamic {
            #expect(allocatedBytes(path) < 4 << 20, "only the written blocks take space")
        }
    }

    @Test func concurrentFirstWritesToOneBlockAllocateItOnce() throws {
        let dir = TempDir()
        let path = dir.file("c.vhd")
        try VHDBackend.create(path: path, size: 4 << 20, type: .dynamic, blockSize: 1 << 20)
        let d = try VHDBackend(path: path)
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            try? d.write(pattern(4096, seed: UInt8(i)), at: UInt64(i) * 4096)
        }
        for i in 0..<8 { #expect(try d.read(4096, at: UInt64(i) * 4096) == pattern(4096, seed: UInt8(i))) }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        #expect(size == 512 + 1024 + 512 + (512 + (1 << 20)) + 512, "one block, not eight")
    }

    /// Every structure corrupted in turn: a typed error naming it, never a crash.
    @Test func corruptImagesAreRefusedByStructure() throws {
        let dir = TempDir()
        let path = dir.file("x.vhd")
        try VHDBackend.create(path: path, size: 4 << 20, type: .dynamic, blockSize: 1 << 20)
        let d = try VHDBackend(path: path)
        try d.write([1, 2, 3], at: 0)
        let good = fileBytes(path)
        let end = good.count - 512
        func expectCorrupt(_ name: String, _ structure: String, _ edit: (inout [UInt8]) -> Void) {
            var bytes = good
            edit(&bytes)
            let p = dir.file(name)
            FileManager.default.createFile(atPath: p, contents: Data(bytes))
            #expect {
                _ = try VHDBackend(path: p)
            } throws: { e in
                guard case .corrupt(let s, _, _) = e as? BackendError else { return false }
                return s == structure
            }
        }
        expectCorrupt("cookie", "VHD footer") { $0[end] = 0x43 }
        expectCorrupt("checksum", "VHD footer") { $0[end + 48] ^= 1 }
        expectCorrupt("short", "VHD footer") { $0 = Array($0.prefix(100)) }
        expectCorrupt("header", "VHD dynamic header") { $0[512 + 3] ^= 0xFF }
        expectCorrupt("header-sum", "VHD dynamic header") { $0[512 + 33] ^= 0x01 }
        // A table entry past the end of the file (and one overlapping the table itself).
        expectCorrupt("bat-past", "VHD block table") { $0[1536..<1540] = [0x00, 0xFF, 0x00, 0x00] }
        expectCorrupt("bat-low", "VHD block table") { $0[1536..<1540] = [0, 0, 0, 1] }
        #expect(throws: BackendError.self) { _ = try VHDBackend(path: dir.file("missing.vhd")) }
        // Well-formed, checksummed structures with values that would overflow arithmetic (found by fuzz-vhd).
        let huge = VHDFooter(size: 1 << 60, type: .dynamic, dataOffset: 512, uniqueID: [], timestamp: 0)
        #expect(throws: BackendError.self) { _ = try VHDFooter(decoding: huge.encoded, at: 0) }
        var far = good
        let header = VHDDynamicHeader(tableOffset: UInt64.max / 512 * 512, maxTableEntries: 4, blockSize: 1 << 20).encoded
        far.replaceSubrange(512..<1536, with: header)
        FileManager.default.createFile(atPath: dir.file("far"), contents: Data(far))
        #expect { _ = try VHDBackend(path: dir.file("far")) } throws: { e in
            guard case .corrupt(let s, _, _) = e as? BackendError else { return false }
            return s == "VHD block table"
        }
    }

    // MARK: qemu-img, a foreign peer (Debian qemu-utils)

    @Test(.enabled(if: qemuImg), arguments: ["dynamic", "fixed"])
    func imagesQemuWritesReadBackByteIdentical(_ subformat: String) throws {
        let dir = TempDir()
        let path = dir.file("q.vhd"), raw = dir.file("q.raw")
        #expect(runTool(["qemu-img", "create", "-q", "-f", "vpc", "-o", "subformat=\(subformat),force_size=on", path, "12M"]) == 0)
        #expect(runTool(["qemu-io", "-f", "vpc", "-c", "write -P 0xAB 1M 64k", "-c", "write -P 0x5C 9437184 8192",
                     "-c", "write -P 0x01 0 512", path]) == 0)
        #expect(runTool(["qemu-img", "convert", "-f", "vpc", "-O", "raw", path, raw]) == 0)
        let expected = fileBytes(raw)
        let d = try VHDBackend(path: path, readOnly: true)
        #expect(d.info.capacity == 12 << 20)
        #expect(expected.count == 12 << 20)
        #expect(try d.read(12 << 20, at: 0) == expected)
    }

    @Test(.enabled(if: qemuImg), arguments: [VHDBackend.CreateType.dynamic, .fixed])
    func imagesWeWriteAreReadByQemuImg(_ type: VHDBackend.CreateType) throws {
        let dir = TempDir()
        let path = dir.file("o.vhd"), raw = dir.file("o.raw")
        try VHDBackend.create(path: path, size: 10 << 20, type: type)
        var expected = [UInt8](repeating: 0, count: 10 << 20)
        do {
            let d = try VHDBackend(path: path)
            for (offset, seed) in [(0, 3), (2 << 20, 4), ((2 << 20) - 1024, 5), ((10 << 20) - 4096, 6)] {
                let p = pattern(4096, seed: UInt8(seed))
                try d.write(p, at: UInt64(offset))
                expected.replaceSubrange(offset..<(offset + 4096), with: p)
            }
            try d.flush()
        }
        #expect(runTool(["qemu-img", "convert", "-f", "vpc", "-O", "raw", path, raw]) == 0)
        #expect(fileBytes(raw) == expected, "qemu-img reads what we wrote")
        let check = runTool(["qemu-img", "compare", "-q", "-f", "vpc", "-F", "raw", path, raw])
        #expect(check == 0)
    }
}
