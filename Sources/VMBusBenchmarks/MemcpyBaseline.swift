#if canImport(Glibc)
import Glibc
#endif

/// memcpy of `size` bytes, repeated `count` times, into a destination that walks through a `window`-byte
/// buffer the way packets walk through a ring. Returns nanoseconds per copy.
func memcpyNanosecondsPerCopy(size: Int, count: Int, window: Int) -> Double {
    let source = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: 64)
    let destination = UnsafeMutableRawPointer.allocate(byteCount: window + size, alignment: 64)
    defer { source.deallocate(); destination.deallocate() }
    memset(source, 0x5A, size)
    memset(destination, 0, window + size)
    // Ring packets advance by descriptor + payload + trailer; keep the same stride.
    let stride = (size + 16 + 8 + 7) & ~7
    var offset = 0
    let start = now()
    for _ in 0..<count {
        memcpy(destination + offset, source, size)
        offset += stride
        if offset + size > window { offset = 0 }
    }
    let elapsed = now() - start
    // Read the destination so the copies cannot be dropped.
    precondition(destination.load(as: UInt8.self) == 0x5A)
    return Double(elapsed) / Double(count)
}
