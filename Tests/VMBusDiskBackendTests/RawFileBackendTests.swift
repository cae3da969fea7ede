import Foundation
import Glibc
import Testing
import VMBusDiskBackend

/// A temporary directory removed at the end of the test.
final class TempDir {
    let path: String
    init() {
        path = NSTemporaryDirectory() + "vmbus-disk-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }
    func file(_ name: String) -> String { path + "/" + name }
}

func allocatedBytes(_ path: String) -> Int {
    var st = stat()
    guard stat(path, &st) == 0 else { return -1 }
    return Int(st.st_blocks) * 512
}

/// Buffers an `IOVector` points at, split into segments of the given sizes.
final class Segments {
    let storage: [UnsafeMutableRawBufferPointer]
    let vector: IOVector
    init(_ sizes: [Int]) throws {
        storage = sizes.map { UnsafeMutableRawBufferPointer.allocate(byteCount: $0, alignment: 16) }
        vector = IOVector(capacity: sizes.count)
        for s in storage {
            s.initializeMemory(as: UInt8.self, repeating: 0)
            try vector.append(s)
        }
    }
    deinit { storage.forEach { $0.deallocate() } }
    var bytes: [UInt8] { storage.flatMap { Array($0) } }
    func fill(_ bytes: [UInt8]) { bytes.withUnsafeBytes { _ = vector.copy(from: $0, toOffset: 0) } }
}

func pattern(_ n: Int, seed: UInt8) -> [UInt8] { (0..<n).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ Int(seed)) } }

@Suite struct RawFileBackendTests {
    @Test func aMissingFileIsCreatedSparseWithItsSize() throws {
        let dir = TempDir()
        let disk = try RawFileBackend(path: dir.file("d.raw"), createSize: 1 << 30)
        #expect(disk.info.capacity == 1 << 30)
        #expect(disk.info.blockCount == (1 << 30) / 512)
        #expect(allocatedBytes(dir.file("d.raw")) < 1 << 20)
        #expect(disk.info.description.hasPrefix("raw "))
        // Without a size, a missing file is an error naming the problem.
        #expect(throws: BackendError.self) { try RawFileBackend(path: dir.file("absent.raw")) }
    }

    @Test func writesAndReadsGoThroughScatteredSegments() throws {
        let dir = TempDir()
        let disk = try RawFileBackend(path: dir.file("d.raw"), createSize: 4 << 20)
        let data = pattern(12288, seed: 3)
        let out = try Segments([100, 4000, 8188])
        out.fill(data)
        try disk.write(at: 8192, length: data.count, from: out.vector, fua: false)
        let back = try Segments([7, 9000, 3281])
        try disk.read(at: 8192, length: data.count, into: back.vector)
        #expect(back.bytes == data)
        // A prefix of the vector.
        let part = try Segments([512, 512])
        try disk.read(at: 8192 + 512, length: 600, into: part.vector)
        #expect(Array(part.bytes.prefix(600)) == Array(data[512..<1112]))
        #expect(part.bytes[600...].allSatisfy { $0 == 0 })
    }

    @Test func outOfRangeReadOnlyAndShortBuffersAreErrors() throws {
        let dir = TempDir()
        _ = try RawFileBackend(path: dir.file("d.raw"), createSize: 1 << 20)
        let ro = try RawFileBackend(path: dir.file("d.raw"), readOnly: true)
        let v = try Segments([4096])
        #expect(throws: BackendError.readOnly) { try ro.write(at: 0, length: 512, from: v.vector, fua: true) }
        #expect(throws: BackendError.readOnly) { try ro.unmap(at: 0, length: 512) }
        #expect(throws: BackendError.readOnly) { try ro.writeZeroes(at: 0, length: 512, unmap: false) }
        #expect(throws: BackendError.self) { try ro.read(at: (1 << 20) - 512, length: 1024, into: v.vector) }
        #expect(throws: BackendError.self) { try ro.read(at: UInt64.max - 10, length: 512, into: v.vector) }
        #expect(throws: BackendError.bufferTooSmall(needed: 8192, available: 4096)) {
            try ro.read(at: 0, length: 8192, into: v.vector)
        }
        try ro.read(at: 0, length: 4096, into: v.vector)
        try ro.flush()
    }

    @Test func unmapPunchesHolesAndReadsZeros() throws {
        let dir = TempDir()
        let path = dir.file("d.raw")
        let disk = try RawFileBackend(path: path, createSize: 8 << 20)
        try #require(disk.info.supportsUnmap, "this filesystem cannot punch holes")
        let data = pattern(1 << 20, seed: 1)
        let v = try Segments([1 << 20])
        v.fill(data)
        try disk.write(at: 1 << 20, length: data.count, from: v.vector, fua: true)
        let before = allocatedBytes(path)
        #expect(before >= 1 << 20)
        try disk.unmap(at: 1 << 20, length: 1 << 20)
        #expect(allocatedBytes(path) < before)
        let back = try Segments([1 << 20])
        back.fill(pattern(1 << 20, seed: 9))
        try disk.read(at: 1 << 20, length: 1 << 20, into: back.vector)
        #expect(back.bytes.allSatisfy { $0 == 0 })
        // Zeroing without unmap also reads back as zeros.
        try disk.write(at: 0, length: 4096, from: v.vector, fua: false)
        try disk.writeZeroes(at: 0, length: 4096, unmap: false)
        let z = try Segments([4096])
        z.fill(pattern(4096, seed: 5))
        try disk.read(at: 0, length: 4096, into: z.vector)
        #expect(z.bytes.allSatisfy { $0 == 0 })
    }

    @Test func aFileTruncatedUnderTheDiskReadsZerosPastItsEnd() throws {
        let dir = TempDir()
        let path = dir.file("d.raw")
        let disk = try RawFileBackend(path: path, createSize: 1 << 20)
        // Someone truncates the file under us: reads past the new end give zeros, not an error.
        #expect(truncate(path, 4096) == 0)
        let v = try Segments([8192])
        v.fill(pattern(8192, seed: 7))
        try disk.read(at: 0, length: 8192, into: v.vector)
        #expect(v.bytes[4096...].allSatisfy { $0 == 0 })
    }

    @Test func eightThreadsDoDisjointIOAtOnce() throws {
        let dir = TempDir()
        let disk = try RawFileBackend(path: dir.file("d.raw"), createSize: 64 << 20)
        let failures = FailureCounter()
        DispatchQueue.concurrentPerform(iterations: 8) { t in
            do {
                let v = try Segments([4096, 4096])
                let back = try Segments([8192])
                for i in 0..<200 {
                    let offset = UInt64(t) * (8 << 20) + UInt64(i) * 8192
                    let data = pattern(8192, seed: UInt8(truncatingIfNeeded: t * 37 + i))
                    v.fill(data)
                    try disk.write(at: offset, length: 8192, from: v.vector, fua: i % 50 == 0)
                    try disk.read(at: offset, length: 8192, into: back.vector)
                    if back.bytes != data { failures.add() }
                }
            } catch { failures.add() }
        }
        #expect(failures.count == 0)
    }

    @Test func memoryBackendKeepsTheSameContract() throws {
        let disk = MemoryBackend(capacity: 1 << 20)
        let v = try Segments([300, 724])
        v.fill(pattern(1024, seed: 2))
        try disk.write(at: 512, length: 1024, from: v.vector, fua: true)
        #expect(disk.flushCount == 1)
        let back = try Segments([1024])
        try disk.read(at: 512, length: 1024, into: back.vector)
        #expect(back.bytes == pattern(1024, seed: 2))
        try disk.unmap(at: 512, length: 512)
        try disk.read(at: 512, length: 1024, into: back.vector)
        #expect(back.bytes.prefix(512).allSatisfy { $0 == 0 })
        #expect(throws: BackendError.self) { try disk.read(at: 1 << 20, length: 1, into: back.vector) }
        #expect(throws: BackendError.readOnly) {
            try MemoryBackend(capacity: 4096, readOnly: true).write(at: 0, length: 1, from: v.vector, fua: false)
        }
    }

    @Test func readIfCachedAnswersFromThePageCacheAndRefusesWhatItCannot() throws {
        let dir = TempDir()
        let path = dir.file("cached.raw")
        let backend = try RawFileBackend(path: path, createSize: 1 << 20)
        let data = try Segments([8192])
        for i in 0..<8192 { data.storage[0][i] = UInt8(truncatingIfNeeded: i &* 31) }
        try backend.write(at: 65536, length: 8192, from: data.vector, fua: false)
        let back = try Segments([4096, 4096])
        #expect(backend.readIfCached(at: 65536, length: 8192, into: back.vector), "just written: in the page cache")
        #expect(back.storage[0].elementsEqual(data.storage[0][0..<4096]))
        #expect(back.storage[1].elementsEqual(data.storage[0][4096..<8192]))
        #expect(!backend.readIfCached(at: (1 << 20) - 4096, length: 8192, into: back.vector), "past the end")
        #expect(!backend.readIfCached(at: 0, length: 3 * 4096, into: back.vector), "more than the vector holds")
    }
}

/// A counter many threads bump.
final class FailureCounter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.lock(); n += 1; lock.unlock() }
    var count: Int { lock.lock(); defer { lock.unlock() }; return n }
}
