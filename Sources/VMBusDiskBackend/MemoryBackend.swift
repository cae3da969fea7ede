import VMBusSync

/// A RAM disk with the backend contract: tests and benchmarks. Zeros until written.
public final class MemoryBackend: BlockBackend, @unchecked Sendable {
    public let info: BlockBackendInfo
    private let bytes: UnsafeMutableRawBufferPointer
    /// Writers and readers of overlapping ranges are the caller's business, as with a file; the lock only
    /// counts flushes for tests.
    private let flushes = Lock(0)

    public init(capacity: UInt64, logicalBlockSize: Int = 512, readOnly: Bool = false) {
        let size = Int(capacity) / logicalBlockSize * logicalBlockSize
        bytes = .allocate(byteCount: max(size, logicalBlockSize), alignment: 4096)
        bytes.initializeMemory(as: UInt8.self, repeating: 0)
        info = BlockBackendInfo(capacity: UInt64(size), logicalBlockSize: logicalBlockSize, isReadOnly: readOnly,
                                supportsUnmap: !readOnly, supportsWriteZeroes: !readOnly,
                                description: "memory \(size) bytes")
    }

    deinit { bytes.deallocate() }

    /// How many times ``flush()`` ran.
    public var flushCount: Int { flushes.withLock { $0 } }

    private func slice(_ offset: UInt64, _ length: Int) -> UnsafeMutableRawBufferPointer {
        UnsafeMutableRawBufferPointer(rebasing: bytes[Int(offset)..<(Int(offset) + length)])
    }

    public func read(at offset: UInt64, length: Int, into buffers: IOVector) throws(BackendError) {
        try info.check(offset: offset, length: UInt64(max(0, length)))
        try buffers.require(length)
        buffers.copy(from: UnsafeRawBufferPointer(slice(offset, length)), toOffset: 0)
    }

    public func write(at offset: UInt64, length: Int, from buffers: IOVector, fua: Bool) throws(BackendError) {
        guard !info.isReadOnly else { throw .readOnly }
        try info.check(offset: offset, length: UInt64(max(0, length)))
        try buffers.require(length)
        buffers.copy(toBuffer: slice(offset, length), fromOffset: 0)
        if fua { try flush() }
    }

    public func flush() throws(BackendError) { flushes.withLock { $0 += 1 } }

    public func unmap(at offset: UInt64, length: UInt64) throws(BackendError) {
        try writeZeroes(at: offset, length: length, unmap: true)
    }

    public func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(BackendError) {
        guard !info.isReadOnly else { throw .readOnly }
        try info.check(offset: offset, length: length)
        slice(offset, Int(length)).initializeMemory(as: UInt8.self, repeating: 0)
    }
}
