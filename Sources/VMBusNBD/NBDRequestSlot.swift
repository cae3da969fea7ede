import CNBD
import VMBusDiskBackend
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

    /// An asynchronous request's caller, set while it is in flight (a strong reference: the caller's slot lives
    /// until libnbd is done with the memory it lent).
    var pending: (any BlockIOCompletion)?
    /// Where a read that went through the bounce buffer is copied when it completes; nil: libnbd read into the
    /// caller's memory directly, or a write.
    var copyBack: IOVector?
    /// The asynchronous request's length.
    var pendingLength = 0
    /// The backend of an asynchronous request, held while it is in flight (its connections must outlive it).
    var backend: NBDBackend?
    /// The connection an asynchronous request went on, which finishes it, and the errno libnbd gave it.
    var connection: NBDConnection?
    var pendingErrno: Int32 = 0

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

    /// The completion callback of an asynchronous request: the slot's backend finishes it on libnbd's thread.
    var asyncCompletion: nbd_completion_callback {
        nbd_completion_callback(callback: nbdAsyncRequestCompleted,
                                user_data: Unmanaged.passUnretained(self).toOpaque(), free: nil)
    }
}

private func nbdAsyncRequestCompleted(_ userData: UnsafeMutableRawPointer?, _ error: UnsafeMutablePointer<Int32>?) -> Int32 {
    guard let userData else { return 1 }
    let slot = Unmanaged<NBDRequestSlot>.fromOpaque(userData).takeUnretainedValue()
    slot.pendingErrno = error?.pointee ?? EIO
    // libnbd calls back holding its handle's lock, which every request issued on the handle needs: the
    // connection's thread finishes the request (copy, the caller's completion) once libnbd let go of it.
    slot.connection?.defer(slot)
    return 1
}

private func nbdRequestCompleted(_ userData: UnsafeMutableRawPointer?, _ error: UnsafeMutablePointer<Int32>?) -> Int32 {
    guard let userData else { return 1 }
    Unmanaged<NBDRequestSlot>.fromOpaque(userData).takeUnretainedValue().complete(error?.pointee ?? EIO)
    return 1
}
