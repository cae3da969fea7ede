import CNBD
import VMBusTransport

#if canImport(Glibc)
import Glibc
#endif

/// One request in flight to the NBD server: its bounce buffer and the result its completion delivers.
///
/// Slots are made once and reused, so a request allocates nothing after the first of its size; libnbd gets the
/// slot itself as the completion's user data, and the slot outlives every request it carries.
final class NBDRequestSlot: @unchecked Sendable {
    let index: Int
    private(set) var buffer = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// The request's errno (0 for success) once libnbd completed it.
    private let result = Condition<Int32?>(nil)

    init(index: Int) { self.index = index }

    deinit { buffer.deallocate() }

    /// The first `count` bytes of the bounce buffer, grown to at least `count`.
    func bytes(_ count: Int) -> UnsafeMutableRawBufferPointer {
        if buffer.count < count {
            buffer.deallocate()
            buffer = .allocate(byteCount: max(count, 64 << 10), alignment: 4096)
        }
        return UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
    }

    /// Called by libnbd (on the connection's thread, or on the issuing thread when the connection dies while
    /// the request is sent) exactly once per request it accepted.
    func complete(_ error: Int32) { result.update { $0 = error } }

    /// Waits for ``complete(_:)`` and returns its errno, leaving the slot ready for the next request.
    func waitForCompletion() -> Int32 {
        result.wait { r -> Int32? in
            defer { r = nil }
            return r
        } ?? EIO
    }

    /// libnbd's completion callback: the slot's result, and 1 so that libnbd retires the command itself.
    var completion: nbd_completion_callback {
        nbd_completion_callback(callback: nbdRequestCompleted,
                                user_data: Unmanaged.passUnretained(self).toOpaque(), free: nil)
    }
}

private func nbdRequestCompleted(_ userData: UnsafeMutableRawPointer?, _ error: UnsafeMutablePointer<Int32>?) -> Int32 {
    guard let userData else { return 1 }
    Unmanaged<NBDRequestSlot>.fromOpaque(userData).takeUnretainedValue().complete(error?.pointee ?? EIO)
    return 1
}
