import Foundation
import Glibc
import Testing
import VMBusTestSupport
@testable import VMBusDiskBackend
import VMBusWire

let vhdiinfo: Bool = runTool(["vhdiinfo", "-V"]) == 0

/// Writes `pattern`s at scattered offsets (across block boundaries, in the last block) to `disk` and to a
/// shadow copy; returns the shadow.
func scatterWrites(_ d: any BlockBackend, seedBase: UInt8 = 0) throws -> [UInt8] {
    let size = Int(d.info.capacity)
    var expected = [UInt8](repeating: 0, count: size)
    let offsets = [0, 1 << 20, (2 << 20) - 4096, (5 << 20) + 512 * 3, size - 8192].filter { $0 >= 0 && $0 + 8192 <= size }
    for (i, offset) in offsets.enumerated() {
        let aligned = offset / d.info.logicalBlockSize * d.info.logicalBlockSize
        let p = pattern(8192, seed: seedBase &+ UInt8(i))
        try d.write(p, at: UInt64(aligned))
        expected.replaceSubrange(aligned..<(aligned + 8192), with: p)
    }
    return expected
}

@Suite struct VHDXBackendTests {
    @Test func crc32cMatchesTheCastagnoliCheckValue() {
        let bytes = Array("123456789".utf8)
        #expect(bytes.withUnsafeBytes { ~CRC32C.update(~0, $0) } == 0xE306_9283)
    }

    @Test(arguments: [(VHDXBackend.CreateType.dynamic, UInt32(512)), (.dynamic, 4096), (.fixed, 512), (.fixed, 4096)])
    func createWriteReopenRead(_ type: VHDXBackend.CreateType, _ sector: UInt32) throws {
        let dir = TempDir()
        let path = dir.file("d.vhdx")
        try VHDXBackend.create(path: path, size: 9 << 20, type: type, blockSize: 1 << 20, logicalSectorSize: sector)
        let expected: [UInt8]
        do {
            let d = try VHDXBackend(path: path)
            #expect(d.info.capacity == 9 << 20)
            #expect(d.info.logicalBlockSize == Int(sector))
            expected = try scatterWrites(d)
            try d.flush()
        }
        let d = try VHDXBackend(path: path, readOnly: true)
        #expect(d.header.logGUID == .zero, "a clean close leaves nothing to replay")
        #expect(byteDifference(try d.read(9 << 20, at: 0), expected) == "")
        if type == .dynamic { #expect(allocatedBytes(path) < 12 << 20, "only written blocks take space") }
    }

    @Test func concurrentFirstWritesToOneBlockAllocateItOnce() throws {
        let dir = TempDir()
        let path = dir.file("c.vhdx")
        try VHDXBackend.create(path: path, size: 8 << 20, blockSize: 1 << 20)
        let d = try VHDXBackend(path: path)
        DispatchQueue.concurrentPerform(iterations: 16) { i in
            try? d.write(pattern(4096, seed: UInt8(i)), at: UInt64(i % 8) * (1 << 20) + UInt64(i / 8) * 4096)
        }
        for i in 0..<16 {
            #expect(try d.read(4096, at: UInt64(i % 8) * (1 << 20) + UInt64(i / 8) * 4096) == pattern(4096, seed: UInt8(i)))
        }
        #expect(d.presentBlocks == 8)
    }

    /// What a guest asks for through StorVSP arrives here unchecked: ranges past the end and short buffers are
    /// typed errors, and the disk keeps serving.
    @Test func outOfRangeRequestsAndShortBuffersAreRefused() throws {
        let dir = TempDir()
        let path = dir.file("r.vhdx")
        try VHDXBackend.create(path: path, size: 4 << 20, blockSize: 1 << 20)
        let d = try VHDXBackend(path: path)
        let s = try Segments([4096])
        for (offset, length) in [(UInt64(4 << 20), 512), ((4 << 20) - 512, 1024), (UInt64.max - 100, 512)] {
            #expect(throws: BackendError.self) { try d.read(at: offset, length: length, into: s.vector) }
            #expect(throws: BackendError.self) { try d.write(at: offset, length: length, from: s.vector, fua: false) }
        }
        #expect(throws: BackendError.self) { try d.read(at: 0, length: 8192, into: s.vector) }
        #expect(throws: BackendError.self) { try d.write(at: 0, length: 8192, from: s.vector, fua: true) }
        #expect(throws: BackendError.self) { try d.unmap(at: UInt64.max - 4096, length: 8192) }
        #expect(d.presentBlocks == 0, "nothing was allocated by a refused request")
        try d.write(pattern(4096, seed: 3), at: 0)
        #expect(try d.read(4096, at: 0) == pattern(4096, seed: 3))
        // Another reader while this writer runs sees its live log, so it opens without replaying it.
        let ro = try VHDXBackend(path: dir.file("r.vhdx"), readOnly: true, replayLog: false)
        #expect(throws: BackendError.readOnly) { try ro.write(at: 0, length: 512, from: s.vector, fua: false) }
        #expect(throws: BackendError.readOnly) { try ro.unmap(at: 0, length: 512) }
    }

    @Test func unmapFreesWholeBlocksAndZeroesParts() throws {
        let dir = TempDir()
        let path = dir.file("u.vhdx")
        try VHDXBackend.create(path: path, size: 8 << 20, blockSize: 1 << 20)
        let d = try VHDXBackend(path: path)
        try d.write(pattern(4 << 20, seed: 9), at: 0)
        let before = allocatedBytes(path)
        try d.unmap(at: 1 << 20, length: 2 << 20)
        try d.unmap(at: 4096, length: 4096)
        #expect(d.presentBlocks == 2)
        #expect(allocatedBytes(path) <= before - (2 << 20) + (64 << 10), "the two freed blocks no longer take space")
        var expected = pattern(4 << 20, seed: 9)
        expected.replaceSubrange((1 << 20)..<(3 << 20), with: [UInt8](repeating: 0, count: 2 << 20))
        expected.replaceSubrange(4096..<8192, with: [UInt8](repeating: 0, count: 4096))
        #expect(byteDifference(try d.read(4 << 20, at: 0), expected) == "")
        // A freed block is allocated again on the next write.
        try d.write(pattern(4096, seed: 1), at: 1 << 20)
        #expect(try d.read(4096, at: 1 << 20) == pattern(4096, seed: 1))
        #expect(try d.read(4096, at: (1 << 20) + 4096) == [UInt8](repeating: 0, count: 4096))
    }

    // MARK: The log

    /// An allocation stopped before each step of its metadata update, as a crash there would leave it: the
    /// image opens, replays what the log holds, and shows either the old or the new block, never a mix.
    @Test(arguments: VHDXLog.Step.allCases)
    func aCrashAtEachStepOfAnUpdateLeavesAConsistentImage(_ step: VHDXLog.Step) throws {
        let dir = TempDir()
        let path = dir.file("l.vhdx")
        try VHDXBackend.create(path: path, size: 8 << 20, blockSize: 1 << 20)
        do {
            let d = try VHDXBackend(path: path)
            try d.write(pattern(4096, seed: 1), at: 0)
            try d.flush()
            d.stopLogBefore = step
            // The allocation waits in memory for the flush, which logs it.
            try d.write(pattern(4096, seed: 2), at: 3 << 20)
            #expect(try d.read(4096, at: 3 << 20) == pattern(4096, seed: 2))
            #expect(throws: BackendError.self) { try d.flush() }
            // A crash: the file is left as it is, without the clean close.
            let copy = dir.file("crashed.vhdx")
            #expect(runTool(["cp", "--sparse=always", path, copy]) == 0)
        }
        let crashed = dir.file("crashed.vhdx")
        // Once its entry is in the log (flushed or not: the copy holds it), the allocation is replayed with the
        // previous one, whose apply was never flushed; before, the log holds the previous allocation's entry,
        // which replays to what the file already says.
        let newVisible = step != .writeEntry
        let entries = step == .writeEntry ? 1 : 2
        let ro = try VHDXBackend(path: crashed, readOnly: true, replayLog: false)
        #expect(ro.pendingLogEntries == entries)
        #expect(throws: BackendError.self, "read-only with replay refuses a dirty log") {
            _ = try VHDXBackend(path: crashed, readOnly: true)
        }
        let d = try VHDXBackend(path: crashed)
        #expect(d.replayedLogEntries == entries)
        #expect(try d.read(4096, at: 0) == pattern(4096, seed: 1))
        let block3 = try d.read(4096, at: 3 << 20)
        #expect(byteDifference(block3, newVisible ? pattern(4096, seed: 2) : [UInt8](repeating: 0, count: 4096)) == "")
        #expect(d.presentBlocks == (newVisible ? 2 : 1))
        if qemuImg { #expect(runTool(["qemu-img", "check", "-q", "-f", "vhdx", crashed]) == 0) }
    }

    /// Without a parent, an allocation is logged by the next flush or FUA write: a crash before loses only the
    /// block's writes the guest never saw durable, and the image stays consistent for us and for qemu.
    @Test func anUnflushedAllocationIsGoneAfterACrashAndAFUAWriteIsNot() throws {
        let dir = TempDir()
        let path = dir.file("u.vhdx")
        try VHDXBackend.create(path: path, size: 8 << 20, blockSize: 1 << 20)
        do {
            let d = try VHDXBackend(path: path)
            try d.write(pattern(4096, seed: 1), at: 0)
            try d.write(pattern(4096, seed: 2), at: 2 << 20, fua: true)
            try d.write(pattern(4096, seed: 3), at: 5 << 20)
            #expect(d.presentBlocks == 3)
            #expect(runTool(["cp", "--sparse=always", path, dir.file("crashed.vhdx")]) == 0)
        }
        let d = try VHDXBackend(path: dir.file("crashed.vhdx"))
        // The FUA write logged every allocation before it, as a flush does; the last one was not logged.
        #expect(d.presentBlocks == 2)
        #expect(byteDifference(try d.read(4096, at: 0), pattern(4096, seed: 1)) == "")
        #expect(byteDifference(try d.read(4096, at: 2 << 20), pattern(4096, seed: 2)) == "")
        #expect(byteDifference(try d.read(4096, at: 5 << 20), [UInt8](repeating: 0, count: 4096)) == "")
        try d.closeCleanly()
        if qemuImg { #expect(runTool(["qemu-img", "check", "-q", "-f", "vhdx", dir.file("crashed.vhdx")]) == 0) }
    }

    /// A differencing disk logs each allocation at once (its sector bitmap goes in the same entry).
    @Test(arguments: VHDXLog.Step.allCases)
    func aDifferencingAllocationIsLoggedAtOnce(_ step: VHDXLog.Step) throws {
        let dir = TempDir()
        let base = dir.file("base.vhdx"), child = dir.file("child.vhdx")
        try VHDXBackend.create(path: base, size: 8 << 20, blockSize: 1 << 20)
        do { try VHDXBackend(path: base).write(pattern(8 << 20, seed: 9), at: 0) }
        try VHDXBackend.create(path: child, size: 0, type: .differencing, blockSize: 1 << 20, parent: base)
        do {
            let d = try VHDXBackend(path: child)
            d.stopLogBefore = step
            #expect(throws: BackendError.self) { try d.write(pattern(4096, seed: 4), at: 3 << 20) }
            #expect(runTool(["cp", "--sparse=always", child, dir.file("crashed.vhdx")]) == 0)
        }
        let d = try VHDXBackend(path: dir.file("crashed.vhdx"))
        #expect(d.replayedLogEntries == (step == .writeEntry ? 0 : 1))
        var expected = Array(pattern(8 << 20, seed: 9)[(3 << 20)..<((3 << 20) + 4096)])
        if step != .writeEntry { expected = pattern(4096, seed: 4) }
        #expect(byteDifference(try d.read(4096, at: 3 << 20), expected) == "")
        #expect(byteDifference(try d.read(4096, at: (3 << 20) + 4096),
                               Array(pattern(8 << 20, seed: 9)[((3 << 20) + 4096)..<((3 << 20) + 8192)])) == "",
                "the rest of the block: the parent's")
    }

    /// An entry's apply is not flushed on its own: a crash may lose it from the page cache, and the next entry's
    /// sequence must then bring it back. The two allocations are in different BAT sectors (512 MiB apart), so only
    /// the tail reaching back to the first entry can restore the first.
    @Test func aLostApplyIsReplayedByTheNextEntrysSequence() throws {
        let dir = TempDir()
        let path = dir.file("lost.vhdx")
        try VHDXBackend.create(path: path, size: 1 << 30, blockSize: 1 << 20)
        let far: UInt64 = 600 << 20
        do {
            let d = try VHDXBackend(path: path)
            let original = open(path, O_RDONLY)
            defer { close(original) }
            let batBefore = try [UInt8].read(fd: original, at: d.batOffset, count: 4096, what: "test")
            try d.write(pattern(4096, seed: 1), at: 0)
            try d.flush()
            d.stopLogBefore = .apply
            try d.write(pattern(4096, seed: 2), at: far)
            #expect(throws: BackendError.self) { try d.flush() }
            #expect(runTool(["cp", "--sparse=always", path, dir.file("crashed.vhdx")]) == 0)
            // The crash lost the first entry's apply: its BAT sector is back to what it was before.
            let fd = open(dir.file("crashed.vhdx"), O_RDWR)
            defer { close(fd) }
            try batBefore.write(fd: fd, at: d.batOffset, what: "test")
        }
        let crashed = dir.file("crashed.vhdx")
        if qemuImg {
            // qemu replays the same two-entry sequence.
            let q = dir.file("qemu.vhdx"), raw = dir.file("qemu.raw")
            #expect(runTool(["cp", "--sparse=always", crashed, q]) == 0)
            #expect(runTool(["qemu-img", "check", "-q", "-r", "all", "-f", "vhdx", q]) == 0)
            #expect(runTool(["qemu-img", "convert", "-f", "vhdx", "-O", "raw", q, raw]) == 0)
            let fd = open(raw, O_RDONLY)
            defer { close(fd) }
            #expect(byteDifference(try [UInt8].read(fd: fd, at: 0, count: 4096, what: "test"), pattern(4096, seed: 1)) == "")
            #expect(byteDifference(try [UInt8].read(fd: fd, at: far, count: 4096, what: "test"), pattern(4096, seed: 2)) == "")
        }
        let ro = try VHDXBackend(path: crashed, readOnly: true, replayLog: false)
        #expect(ro.pendingLogEntries == 2)
        #expect(ro.presentBlocks == 0, "neither BAT change is in place before the replay")
        let d = try VHDXBackend(path: crashed)
        #expect(d.replayedLogEntries == 2)
        #expect(byteDifference(try d.read(4096, at: 0), pattern(4096, seed: 1)) == "")
        #expect(byteDifference(try d.read(4096, at: far), pattern(4096, seed: 2)) == "")
        #expect(d.presentBlocks == 2)
        try d.closeCleanly()
        if qemuImg { #expect(runTool(["qemu-img", "check", "-q", "-f", "vhdx", crashed]) == 0) }
    }

    @Test func logEntriesRoundTripAndTornEntriesAreIgnored() throws {
        let guid = GUID.random()
        var sector = pattern(4096, seed: 7)
        sector[0] = 0xAA
        let e = VHDXLogEntry(sequenceNumber: 0x1_0000_0005, tail: 0, logGUID: guid, flushedFileOffset: 8 << 20,
                             lastFileOffset: 9 << 20,
                             descriptors: [.data(fileOffset: 3 << 20, sector: sector), .zero(fileOffset: 4 << 20, length: 8192)])
        var log = [UInt8](repeating: 0, count: 1 << 20)
        // Written across the end of the circular log.
        let at = (1 << 20) - 4096
        for (i, b) in e.encoded.enumerated() { log[(at + i) % log.count] = b }
        var wrapped = e
        wrapped.tail = UInt32(at)
        let bytes = wrapped.encoded
        for (i, b) in bytes.enumerated() { log[(at + i) % log.count] = b }
        #expect(VHDXLogEntry.parse(log: log, at: at, logGUID: guid) == wrapped)
        #expect(VHDXLogEntry.activeSequence(log: log, logGUID: guid) == [wrapped])
        #expect(VHDXLogEntry.parse(log: log, at: at, logGUID: GUID.random()) == nil, "another log's entry")
        for flip in [0, 4, 70, 4096 + 100, 8191] {
            var torn = log
            torn[(at + flip) % log.count] ^= 0x10
            #expect(VHDXLogEntry.parse(log: torn, at: at, logGUID: guid) == nil)
        }
    }

    // MARK: Corrupt images

    @Test func corruptImagesAreRefusedNamingTheStructure() throws {
        let dir = TempDir()
        let path = dir.file("x.vhdx")
        try VHDXBackend.create(path: path, size: 8 << 20, blockSize: 1 << 20)
        do {
            let d = try VHDXBackend(path: path)
            try d.write([1, 2, 3], at: 0)
        }
        let good = fileBytes(path)
        func expectCorrupt(_ name: String, _ structure: String, _ edit: (inout [UInt8]) -> Void) {
            var bytes = good
            edit(&bytes)
            let p = dir.file(name)
            _ = FileManager.default.createFile(atPath: p, contents: Data(bytes))
            #expect {
                _ = try VHDXBackend(path: p, readOnly: true)
            } throws: { e in
                guard case .corrupt(let s, _, _) = e as? BackendError else { return false }
                return s.hasPrefix(structure)
            } 
        }
        func both(_ edit: @escaping (inout [UInt8], Int) -> Void) -> (inout [UInt8]) -> Void {
            { b in edit(&b, 64 << 10); edit(&b, 128 << 10) }
        }
        /// Re-checksums a structure after an edit, so the check behind the checksum is reached.
        func resum(_ b: inout [UInt8], _ at: Int, _ size: Int) {
            var s = Array(b[at..<(at + size)])
            s.put32(CRC32C.checksum(s), at: 4)
            b.replaceSubrange(at..<(at + size), with: s)
        }
        expectCorrupt("sig", "VHDX file identifier") { $0[0] = 0x56 }
        expectCorrupt("short", "VHDX header section") { $0 = Array($0.prefix(4096)) }
        expectCorrupt("head-sig", "VHDX header", both { b, at in b[at] = 0 })
        expectCorrupt("head-crc", "VHDX header", both { b, at in b[at + 40] ^= 1 })
        expectCorrupt("head-version", "VHDX header", both { b, at in b[at + 66] = 2; resum(&b, at, 4096) })
        expectCorrupt("log-past-end", "VHDX region table", both { b, at in b.put64(UInt64(good.count) / (1 << 20) * (1 << 20), at: at + 72); resum(&b, at, 4096) })
        let rt1 = 192 << 10, rt2 = 256 << 10
        expectCorrupt("regi-crc", "VHDX region table") { $0[rt1 + 20] ^= 1; $0[rt2 + 20] ^= 1 }
        expectCorrupt("regi-sig", "VHDX region table") { $0[rt1] = 0; $0[rt2] = 0 }
        // The BAT region moved onto the metadata region (checksummed, so only the overlap check catches it).
        expectCorrupt("regi-overlap", "VHDX region table") { b in
            for at in [rt1, rt2] {
                let i = b.le32(at + 16 + 16) == 3 << 20 ? 0 : 1
                b.put64(2 << 20, at: at + 16 + 32 * i + 16)
                resum(&b, at, 64 << 10)
            }
        }
        let meta = 2 << 20
        expectCorrupt("meta-sig", "VHDX metadata") { $0[meta] = 0 }
        expectCorrupt("meta-block", "VHDX metadata") { b in
            let o = Int(b.le32(meta + 32 + 16))
            b.put32(3 << 20, at: meta + o)
        }
        let bat = 3 << 20
        expectCorrupt("bat-past", "VHDX BAT") { $0.put64(VHDXBATEntry(state: 6, fileOffset: 1 << 40).raw, at: bat + 8) }
        expectCorrupt("bat-state", "VHDX BAT") { $0.put64(4, at: bat + 16) }
        expectCorrupt("bat-overlap", "VHDX BAT") { b in b.put64(b.le64(bat), at: bat + 8) }
        expectCorrupt("bat-on-log", "VHDX BAT") { $0.put64(VHDXBATEntry(state: 6, fileOffset: 1 << 20).raw, at: bat + 8) }
        expectCorrupt("partial-no-parent", "VHDX BAT") { b in b.put64(b.le64(bat) | 7, at: bat) }
        // Checksummed structures with offsets near 2^64, where unchecked arithmetic would overflow.
        expectCorrupt("log-huge", "VHDX header", both { b, at in b.put64(UInt64.max & ~0xF_FFFF, at: at + 72); resum(&b, at, 4096) })
        expectCorrupt("region-huge", "VHDX region table") { b in
            for at in [rt1, rt2] { b.put64(1 << 63, at: at + 16 + 16); resum(&b, at, 64 << 10) }
        }
        // A live log entry that claims a file end near 2^64.
        expectCorrupt("log-entry-huge", "VHDX log entry") { b in
            let guid = GUID.random()
            let entry = VHDXLogEntry(sequenceNumber: 1, tail: 0, logGUID: guid, flushedFileOffset: 0, lastFileOffset: 1 << 62,
                                     descriptors: [.zero(fileOffset: 3 << 20, length: 4096)]).encoded
            b.replaceSubrange((1 << 20)..<((1 << 20) + entry.count), with: entry)
            for at in [64 << 10, 128 << 10] { b.put(guid, at: at + 48); resum(&b, at, 4096) }
        }
        #expect(throws: BackendError.self) { _ = try VHDXBackend(path: dir.file("missing.vhdx")) }
        // Truncation at every structure boundary.
        for cut in [8, 64 << 10, (64 << 10) + 100, 128 << 10, 192 << 10, 256 << 10, 1 << 20, 2 << 20, 3 << 20, good.count - 4096] {
            let p = dir.file("cut-\(cut)")
            _ = FileManager.default.createFile(atPath: p, contents: Data(good.prefix(cut)))
            #expect(throws: BackendError.self, "cut at \(cut)") { _ = try VHDXBackend(path: p, readOnly: true) }
        }
    }

    // MARK: Differencing disks

    @Test(arguments: [1, 2, 3])
    func parentChainsReadThroughAndWritesStayInTheChild(_ depth: Int) throws {
        let dir = TempDir()
        var paths = [dir.file("base.vhdx")]
        try VHDXBackend.create(path: paths[0], size: 8 << 20, blockSize: 1 << 20)
        var expected: [UInt8]
        do {
            let d = try VHDXBackend(path: paths[0])
            expected = try scatterWrites(d, seedBase: 10)
        }
        let baseExpected = expected
        for level in 1...depth {
            try FileManager.default.createDirectory(atPath: dir.file("l\(level)"), withIntermediateDirectories: true)
            let child = dir.file("l\(level)/child.vhdx")
            try VHDXBackend.create(path: child, size: 0, type: .differencing, blockSize: 1 << 20, parent: paths.last)
            paths.append(child)
            let d = try VHDXBackend(path: child)
            #expect(d.chain.count == level)
            #expect(byteDifference(try d.read(8 << 20, at: 0), expected) == "", "level \(level) reads through its parents")
            let p = pattern(1024, seed: UInt8(level))
            let at = level * (1 << 20) + 512
            try d.write(p, at: UInt64(at))
            expected.replaceSubrange(at..<(at + 1024), with: p)
            try d.unmap(at: 7 << 20, length: 1 << 20)
            expected.replaceSubrange((7 << 20)..<(8 << 20), with: [UInt8](repeating: 0, count: 1 << 20))
            #expect(byteDifference(try d.read(8 << 20, at: 0), expected) == "")
        }
        let top = try VHDXBackend(path: paths.last!, readOnly: true)
        #expect(byteDifference(try top.read(8 << 20, at: 0), expected) == "")
        if depth == 1 {
            // A parent changed after its child was made is refused.
            do {
                let w = try VHDXBackend(path: paths[0])
                try w.write([9], at: 0)
            }
            #expect { _ = try VHDXBackend(path: paths[1], readOnly: true) } throws: { e in
                guard case .invalidConfiguration(let why) = e as? BackendError else { return false }
                return why.contains("DataWriteGuid")
            }
        }
    }

    @Test func parentLoopsAreRefused() throws {
        let dir = TempDir()
        let a = dir.file("a.vhdx"), b = dir.file("b.vhdx")
        try VHDXBackend.create(path: a, size: 4 << 20, blockSize: 1 << 20)
        try VHDXBackend.create(path: b, size: 0, type: .differencing, blockSize: 1 << 20, parent: a)
        // Make a a differencing disk whose parent is b: a hand-edited loop.
        let bDisk = try VHDXBackend(path: b, readOnly: true)
        let aDisk = try VHDXBackend(path: a, readOnly: true)
        var m = aDisk.metadata
        m.hasParent = true
        m.parent = VHDXParentLocator(entries: [("parent_linkage", "{\(bDisk.header.dataWriteGUID)}"), ("relative_path", ".\\b.vhdx")])
        let metadataRegion = aDisk.regions.entry(VHDXRegionTable.metadata)!
        let geometry = VHDXBATGeometry(diskSize: m.diskSize, blockSize: m.blockSize, logicalSectorSize: 512, hasParent: true)
        #expect(UInt64(geometry.totalEntries) * 8 <= UInt64(aDisk.regions.entry(VHDXRegionTable.BAT)!.length))
        let fd = open(a, O_RDWR)
        defer { close(fd) }
        try m.encoded(length: Int(metadataRegion.length)).write(fd: fd, at: metadataRegion.fileOffset, what: "test")
        #expect { _ = try VHDXBackend(path: b, readOnly: true) } throws: { e in
            guard case .corrupt(let s, _, let why) = e as? BackendError else { return false }
            return s == "VHDX parent locator" && why.contains("loop")
        }
    }

    // MARK: qemu-img and libvhdi, foreign peers

    @Test(.enabled(if: qemuImg), arguments: [("dynamic", "1M"), ("dynamic", "8M"), ("dynamic", "32M"), ("fixed", "2M")])
    func imagesQemuWritesReadBackByteIdentical(_ subformat: String, _ blockSize: String) throws {
        let dir = TempDir()
        let path = dir.file("q.vhdx"), raw = dir.file("q.raw")
        #expect(runTool(["qemu-img", "create", "-q", "-f", "vhdx", "-o", "subformat=\(subformat),block_size=\(blockSize)", path, "40M"]) == 0)
        #expect(runTool(["qemu-io", "-f", "vhdx", "-c", "write -P 0xAB 1M 64k", "-c", "write -P 0x5C 9437184 8192",
                     "-c", "write -P 0x01 0 512", "-c", "write -P 0x77 41418752 512", path]) == 0)
        #expect(runTool(["qemu-img", "convert", "-f", "vhdx", "-O", "raw", path, raw]) == 0)
        let expected = fileBytes(raw)
        let d = try VHDXBackend(path: path, readOnly: true)
        #expect(d.info.capacity == 40 << 20)
        #expect(byteDifference(try d.read(40 << 20, at: 0), expected) == "")
        // And written by us, then checked by qemu.
        do {
            let w = try VHDXBackend(path: path)
            try w.write(pattern(65536, seed: 4), at: 20 << 20)
        }
        #expect(runTool(["qemu-img", "check", "-q", "-f", "vhdx", path]) == 0)
        #expect(runTool(["qemu-img", "convert", "-f", "vhdx", "-O", "raw", path, raw]) == 0)
        var after = expected
        after.replaceSubrange((20 << 20)..<((20 << 20) + 65536), with: pattern(65536, seed: 4))
        #expect(byteDifference(fileBytes(raw), after) == "")
    }

    @Test(.enabled(if: qemuImg || vhdiinfo), arguments: [(VHDXBackend.CreateType.dynamic, UInt32(512), UInt32(1 << 20)),
                                             (.dynamic, 4096, 32 << 20), (.fixed, 512, 8 << 20), (.fixed, 4096, 1 << 20)])
    func imagesWeWriteAreCheckedByQemuImg(_ type: VHDXBackend.CreateType, _ sector: UInt32, _ blockSize: UInt32) throws {
        let dir = TempDir()
        let path = dir.file("o.vhdx"), raw = dir.file("o.raw")
        try VHDXBackend.create(path: path, size: 10 << 20, type: type, blockSize: blockSize, logicalSectorSize: sector)
        let expected: [UInt8]
        do {
            let d = try VHDXBackend(path: path)
            expected = try scatterWrites(d)
            try d.unmap(at: 0, length: UInt64(min(Int(blockSize), 10 << 20)) / 2)
        }
        var withUnmap = expected
        let cut = min(Int(blockSize), 10 << 20) / 2
        withUnmap.replaceSubrange(0..<cut, with: [UInt8](repeating: 0, count: cut))
        // qemu reads VHDX with 512-byte logical sectors only ("Operation not supported" otherwise).
        if sector == 512 {
            #expect(runTool(["qemu-img", "check", "-q", "-f", "vhdx", path]) == 0)
            #expect(runTool(["qemu-img", "convert", "-f", "vhdx", "-O", "raw", path, raw]) == 0)
            #expect(byteDifference(fileBytes(raw), withUnmap) == "", "qemu-img reads what we wrote")
            #expect(runTool(["qemu-img", "compare", "-q", "-f", "vhdx", "-F", "raw", path, raw]) == 0)
        }
        if vhdiinfo {
            #expect(byteDifference(libvhdiContents(path) ?? [], withUnmap) == "", "libvhdi reads what we wrote")
            let text = toolOutput(["vhdiinfo", path]) ?? ""
            #expect(text.contains("VHDX"), "libvhdi reads our headers")
            #expect(text.contains("10485760") || text.contains("10 MiB"), "libvhdi reads our size: \(text)")
        }
    }

    @Test(.enabled(if: qemuImg)) func aCleanCloseLeavesNoLogToReplayAndALaterWriteReopensIt() throws {
        let dir = TempDir()
        let path = dir.file("c.vhdx")
        try VHDXBackend.create(path: path, size: 8 << 20, blockSize: 1 << 20)
        let d = try VHDXBackend(path: path)
        try d.write(pattern(4096, seed: 1), at: 3 << 20)
        try d.flush()
        // Open, written and flushed: qemu refuses a read-only open of the live log.
        #expect(runTool(["qemu-img", "check", "-q", "-f", "vhdx", path]) != 0)
        try d.closeCleanly()
        #expect(runTool(["qemu-img", "check", "-q", "-f", "vhdx", path]) == 0, "closed cleanly, still open")
        #expect(try VHDXBackend(path: path, readOnly: true, replayLog: false).pendingLogEntries == 0)
        try d.write(pattern(4096, seed: 2), at: 5 << 20)
        try d.flush()
        #expect(try VHDXBackend(path: path, readOnly: true, replayLog: false).pendingLogEntries > 0, "written again: a new session")
        try d.closeCleanly()
        let r = try VHDXBackend(path: path, readOnly: true)
        #expect(try r.read(4096, at: 3 << 20) == pattern(4096, seed: 1))
        #expect(try r.read(4096, at: 5 << 20) == pattern(4096, seed: 2))
    }

    @Test(.enabled(if: vhdiinfo), arguments: [512, 4096] as [UInt32])
    func libvhdiReadsOurDifferencingChain(_ sectorSize: UInt32) throws {
        let dir = TempDir()
        let base = dir.file("base.vhdx"), mid = dir.file("mid.vhdx"), child = dir.file("child.vhdx")
        try VHDXBackend.create(path: base, size: 6 << 20, blockSize: 1 << 20, logicalSectorSize: sectorSize)
        var expected = try scatterWrites(try VHDXBackend(path: base), seedBase: 30)
        try VHDXBackend.create(path: mid, size: 0, type: .differencing, parent: base)
        do {
            let d = try VHDXBackend(path: mid)
            let p = pattern(8192, seed: 7)
            try d.write(p, at: (3 << 20) + 4096)
            expected.replaceSubrange(((3 << 20) + 4096)..<((3 << 20) + 12288), with: p)
        }
        try VHDXBackend.create(path: child, size: 0, type: .differencing, blockSize: 1 << 20, parent: mid)
        let text = toolOutput(["vhdiinfo", child]) ?? ""
        #expect(text.contains("Differential"), "vhdiinfo sees a differencing disk: \(text)")
        do {
            let d = try VHDXBackend(path: child)
            let p = pattern(4096, seed: 9)
            try d.write(p, at: 4096)
            expected.replaceSubrange(4096..<8192, with: p)
            // A hole in a block the parents hold, and a whole block unmapped over them.
            try d.unmap(at: (3 << 20) + 8192, length: 4096)
            try d.unmap(at: 1 << 20, length: 1 << 20)
            expected.replaceSubrange(((3 << 20) + 8192)..<((3 << 20) + 12288), with: [UInt8](repeating: 0, count: 4096))
            expected.replaceSubrange((1 << 20)..<(2 << 20), with: [UInt8](repeating: 0, count: 1 << 20))
            #expect(byteDifference(try d.read(6 << 20, at: 0), expected) == "", "we read what we wrote")
        }
        #expect(byteDifference(libvhdiContents(child) ?? [], expected) == "", "libvhdi reads the child over its parents")
    }
}

