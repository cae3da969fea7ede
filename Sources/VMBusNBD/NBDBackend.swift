import CNBD
import VMBusDiskBackend
import VMBusTransport

#if canImport(Glibc)
import Glibc
#endif

/// A disk served by an NBD server (qemu-nbd, nbdkit, …) through libnbd.
///
/// Requests are pipelined: up to ``maxInFlight`` at once over a few connections, each connection a libnbd
/// handle driven by its own thread (``NBDConnection``), so the host's queue depth reaches the server as one
/// queue rather than one request per connection. Each request borrows a slot with a bounce buffer; a request
/// larger than ``maxRequestBytes`` goes as several. Flush goes to every connection unless the server promises
/// multi-conn consistency. When the server goes away the requests in flight fail (the SCSI target answers
/// MEDIUM ERROR), and the next request reconnects, so the disk comes back when the server does.
public final class NBDBackend: BlockBackend, @unchecked Sendable {
    public let info: BlockBackendInfo
    public let uri: String
    public let canFlush: Bool
    public let canFUA: Bool
    public let multiConn: Bool
    private let connections: [NBDConnection]
    private let slots: [NBDRequestSlot]
    private let freeSlots: Condition<[Int]>
    public static let maxRequestBytes = 1 << 20
    /// Requests in flight at once, over all connections: StorVSP's queue depth on a few channels.
    public static let maxInFlight = 64

    /// `nbd:unix:PATH[:EXPORT]` or `nbd://HOST[:PORT]/EXPORT` as libnbd URIs.
    public static func uri(forDiskPath path: String) -> String? {
        if path.hasPrefix("nbd://") { return path }
        guard path.hasPrefix("nbd:unix:") else { return nil }
        let rest = path.dropFirst("nbd:unix:".count)
        let parts = rest.split(separator: ":", maxSplits: 1).map(String.init)
        guard let socket = parts.first, !socket.isEmpty else { return nil }
        let export = parts.count > 1 ? parts[1] : ""
        return "nbd+unix:///\(export)?socket=\(socket)"
    }

    public init(uri: String, readOnly: Bool = false, connections count: Int = 2) throws(BackendError) {
        self.uri = uri
        let first = try NBDConnection.connect(uri)
        let size = nbd_get_size(first)
        let serverReadOnly = nbd_is_read_only(first) == 1
        canFlush = nbd_can_flush(first) == 1
        canFUA = nbd_can_fua(first) == 1
        multiConn = nbd_can_multi_conn(first) == 1
        let canTrim = nbd_can_trim(first) == 1
        guard size > 0 else {
            nbd_close(first)
            throw .invalidConfiguration("NBD export \(uri) reports size \(size)")
        }
        var opened: [NBDConnection] = []
        do throws(BackendError) {
            var next: OpaquePointer? = first
            while opened.count < max(1, min(count, Self.maxInFlight)) {
                let h: OpaquePointer
                if let first = next { h = first } else { h = try NBDConnection.connect(uri) }
                next = nil
                do throws(BackendError) { opened.append(try NBDConnection(uri: uri, handle: h)) } catch { nbd_close(h); throw error }
            }
        } catch {
            for c in opened { c.stop() }
            throw error
        }
        connections = opened
        slots = (0..<Self.maxInFlight).map { NBDRequestSlot(index: $0) }
        freeSlots = Condition(Array((0..<Self.maxInFlight).reversed()))
        info = BlockBackendInfo(capacity: UInt64(size) / 512 * 512, logicalBlockSize: 512, physicalBlockSize: 4096,
                                isReadOnly: readOnly || serverReadOnly, supportsUnmap: canTrim && !readOnly,
                                supportsWriteZeroes: !(readOnly || serverReadOnly), description: "nbd \(uri)")
    }

    deinit {
        for c in connections { c.stop() }
    }

    /// Sends one request (`issue` is its `nbd_aio_*` call with the slot's buffer and completion) on
    /// `connection` or the slot's own, and waits for the server's answer.
    private func request(on connection: Int? = nil, _ length: Int,
                         before: (UnsafeMutableRawBufferPointer) -> Void = { _ in },
                         after: (UnsafeMutableRawBufferPointer) -> Void = { _ in },
                         _ issue: (OpaquePointer, UnsafeMutableRawBufferPointer, nbd_completion_callback) -> Int64) throws(BackendError) {
        let index = freeSlots.wait { $0.popLast() } ?? 0
        defer { freeSlots.updateWakingOne { $0.append(index) } }
        let slot = slots[index]
        let buffer = slot.bytes(length)
        before(buffer)
        let c = connections[(connection ?? index) % connections.count]
        try c.issue { h in issue(h, buffer, slot.completion) }
        if let failure = failure(errno: slot.waitForCompletion()) { throw failure }
        after(buffer)
    }

    /// What a request's errno from libnbd means; nil for success.
    private func failure(errno error: Int32) -> BackendError? {
        guard error != 0 else { return nil }
        if error == ENOTCONN || error == ESHUTDOWN || error == ECONNRESET || error == EPIPE {
            return .disconnected("\(uri): the connection ended (errno \(error))")
        }
        return .io(call: "nbd", errno: error)
    }

    // MARK: Asynchronous requests

    /// Reads and writes of up to ``maxRequestBytes`` go to the server and complete on the connection's thread.
    public var completesAsynchronously: Bool { true }

    public func submitRead(at offset: UInt64, length: Int, into buffers: IOVector, completion: any BlockIOCompletion) {
        do throws(BackendError) {
            try info.check(offset: offset, length: UInt64(max(0, length)))
            try buffers.require(length)
        } catch {
            return completion.blockIOCompleted(error)
        }
        guard length > 0, length <= Self.maxRequestBytes else {
            return completeSynchronously(completion) { () throws(BackendError) in try read(at: offset, length: length, into: buffers) }
        }
        submit(length, buffers: buffers, isRead: true, completion) { h, b, done in
            nbd_aio_pread(h, b, length, offset, done, 0)
        }
    }

    public func submitWrite(at offset: UInt64, length: Int, from buffers: IOVector, fua: Bool, completion: any BlockIOCompletion) {
        do throws(BackendError) {
            guard !info.isReadOnly else { throw .readOnly }
            try info.check(offset: offset, length: UInt64(max(0, length)))
            try buffers.require(length)
        } catch {
            return completion.blockIOCompleted(error)
        }
        // A FUA the server cannot do needs a flush after the write: that one waits.
        guard length > 0, length <= Self.maxRequestBytes, !fua || canFUA else {
            return completeSynchronously(completion) { () throws(BackendError) in
                try write(at: offset, length: length, from: buffers, fua: fua)
            }
        }
        let flags: UInt32 = fua ? LIBNBD_CMD_FLAG_FUA : 0
        submit(length, buffers: buffers, isRead: false, completion) { h, b, done in
            nbd_aio_pwrite(h, b, length, offset, done, flags)
        }
    }

    /// Issues one asynchronous request on a free slot (waiting for one when all are in flight). libnbd moves the
    /// data through the caller's memory when `buffers` starts with `length` contiguous bytes, else through the
    /// slot's bounce buffer; ``finish(_:errno:)`` completes it.
    private func submit(_ length: Int, buffers: IOVector, isRead: Bool, _ completion: any BlockIOCompletion,
                        _ issue: (OpaquePointer, UnsafeMutableRawPointer?, nbd_completion_callback) -> Int64) {
        let index = freeSlots.wait { $0.popLast() } ?? 0
        let slot = slots[index]
        let data: UnsafeMutableRawPointer?
        if let direct = buffers.contiguousBase(length: length) {
            data = direct
        } else {
            let bounce = slot.bytes(length)
            if isRead { slot.copyBack = buffers } else { _ = buffers.copy(toBuffer: bounce, fromOffset: 0) }
            data = bounce.baseAddress
        }
        slot.pending = completion
        slot.pendingLength = length
        slot.backend = self
        let connection = connections[index % connections.count]
        slot.connection = connection
        do throws(BackendError) {
            try connection.issue { h in issue(h, data, slot.asyncCompletion) }
        } catch {
            // libnbd did not take it, so it will not call back: the request ends here.
            let caller = release(slot)
            caller?.blockIOCompleted(error)
        }
    }

    /// On the connection's thread (or the issuing one, when the connection dies as the request goes out): the
    /// server answered, or the connection ended.
    func finish(_ slot: NBDRequestSlot, errno error: Int32) {
        if error == 0, let target = slot.copyBack {
            _ = target.copy(from: UnsafeRawBufferPointer(rebasing: slot.buffer[0..<slot.pendingLength]), toOffset: 0)
        }
        let caller = release(slot)
        caller?.blockIOCompleted(failure(errno: error))
    }

    /// Frees `slot` for the next request and returns the caller it served.
    private func release(_ slot: NBDRequestSlot) -> (any BlockIOCompletion)? {
        let caller = slot.pending
        slot.pending = nil
        slot.copyBack = nil
        slot.backend = nil
        slot.connection = nil
        freeSlots.updateWakingOne { $0.append(slot.index) }
        return caller
    }

    public func read(at offset: UInt64, length: Int, into buffers: IOVector) throws(BackendError) {
        try info.check(offset: offset, length: UInt64(max(0, length)))
        try buffers.require(length)
        try inRequests(length) { (at, n) throws(BackendError) in
            try request(n, after: { b in _ = buffers.copy(from: UnsafeRawBufferPointer(b), toOffset: at) }) { h, b, done in
                nbd_aio_pread(h, b.baseAddress, n, offset + UInt64(at), done, 0)
            }
        }
    }

    /// Calls `body` for each piece of at most ``maxRequestBytes`` of `length` bytes: (offset in the request, length).
    private func inRequests(_ length: Int, _ body: (Int, Int) throws(BackendError) -> Void) throws(BackendError) {
        var done = 0
        while done < length {
            let n = min(length - done, Self.maxRequestBytes)
            try body(done, n)
            done += n
        }
    }

    /// Calls `body` for each piece of a trim or zeroing of `length` bytes: the NBD request's length field is
    /// 32 bits, and a zero length is forbidden.
    private func inCommands(_ length: UInt64, _ body: (UInt64, UInt64) throws(BackendError) -> Void) throws(BackendError) {
        var done: UInt64 = 0
        while done < length {
            let n = min(length - done, 1 << 30)
            try body(done, n)
            done += n
        }
    }

    public func write(at offset: UInt64, length: Int, from buffers: IOVector, fua: Bool) throws(BackendError) {
        guard !info.isReadOnly else { throw .readOnly }
        try info.check(offset: offset, length: UInt64(max(0, length)))
        try buffers.require(length)
        let flags: UInt32 = fua && canFUA ? LIBNBD_CMD_FLAG_FUA : 0
        try inRequests(length) { (at, n) throws(BackendError) in
            try request(n, before: { b in _ = buffers.copy(toBuffer: b, fromOffset: at) }) { h, b, done in
                nbd_aio_pwrite(h, b.baseAddress, n, offset + UInt64(at), done, flags)
            }
        }
        if fua && !canFUA { try flush() }
    }

    public func flush() throws(BackendError) {
        guard canFlush, !info.isReadOnly else { return }
        // Without multi-conn a flush covers only its own connection's writes: flush each of them.
        for c in 0..<(multiConn ? 1 : connections.count) {
            try request(on: c, 0) { h, _, done in nbd_aio_flush(h, done, 0) }
        }
    }

    public func unmap(at offset: UInt64, length: UInt64) throws(BackendError) {
        guard info.supportsUnmap else { throw .unsupported("trim on \(uri)") }
        try info.check(offset: offset, length: length)
        try inCommands(length) { (at, n) throws(BackendError) in
            try request(0) { h, _, done in nbd_aio_trim(h, n, offset + at, done, 0) }
        }
    }

    public func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(BackendError) {
        guard !info.isReadOnly else { throw .readOnly }
        try info.check(offset: offset, length: length)
        try inCommands(length) { (at, n) throws(BackendError) in
            try request(0) { h, _, done in
                nbd_aio_zero(h, n, offset + at, done, unmap ? 0 : UInt32(LIBNBD_CMD_FLAG_NO_HOLE))
            }
        }
    }
}
