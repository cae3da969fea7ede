/// A backend that passes every call to another one: subclass it to change one call (a test's backend that
/// delays its reads, a benchmark's that reports asynchronous completion) and keep the rest.
open class ForwardingBackend: BlockBackend, @unchecked Sendable {
    public let inner: any BlockBackend

    public init(_ inner: any BlockBackend) { self.inner = inner }

    open var info: BlockBackendInfo { inner.info }
    open var completesAsynchronously: Bool { false }

    open func read(at offset: UInt64, length: Int, into buffers: IOVector) throws(BackendError) {
        try inner.read(at: offset, length: length, into: buffers)
    }
    open func write(at offset: UInt64, length: Int, from buffers: IOVector, fua: Bool) throws(BackendError) {
        try inner.write(at: offset, length: length, from: buffers, fua: fua)
    }
    open func flush() throws(BackendError) { try inner.flush() }
    open func unmap(at offset: UInt64, length: UInt64) throws(BackendError) { try inner.unmap(at: offset, length: length) }
    open func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(BackendError) {
        try inner.writeZeroes(at: offset, length: length, unmap: unmap)
    }
    open func closeCleanly() throws(BackendError) { try inner.closeCleanly() }
    /// Not forwarded: a subclass that changes ``read(at:length:into:)`` would be bypassed by the inner
    /// backend's cached reads. A subclass that keeps reads as they are may override this to pass it on.
    open func readIfCached(at offset: UInt64, length: Int, into buffers: IOVector) -> Bool { false }

    /// Runs this backend's own (possibly overridden) ``read(at:length:into:)`` and completes.
    open func submitRead(at offset: UInt64, length: Int, into buffers: IOVector, completion: any BlockIOCompletion) {
        completeSynchronously(completion) { () throws(BackendError) in try read(at: offset, length: length, into: buffers) }
    }
    open func submitWrite(at offset: UInt64, length: Int, from buffers: IOVector, fua: Bool, completion: any BlockIOCompletion) {
        completeSynchronously(completion) { () throws(BackendError) in
            try write(at: offset, length: length, from: buffers, fua: fua)
        }
    }
}
