import CNBD
import VMBusDiskBackend
import VMBusTransport

#if canImport(Glibc)
import Glibc
#endif

/// A disk served by an NBD server (qemu-nbd, nbdkit, …) through libnbd.
///
/// Several connections to the same export, each used by one request at a time, so that a queue depth reaches
/// the server in parallel; each has a bounce buffer of the largest request. Flush goes to every connection
/// unless the server promises multi-conn consistency. A failed connection fails its request (the SCSI target
/// answers MEDIUM ERROR) and is reopened by the next request that picks it, so the disk comes back when the
/// server does.
public final class NBDBackend: BlockBackend, @unchecked Sendable {
    public let info: BlockBackendInfo
    public let uri: String
    public let canFlush: Bool
    public let canFUA: Bool
    public let multiConn: Bool
    private final class Connection: @unchecked Sendable {
        var handle: OpaquePointer?
        let buffer: UnsafeMutableRawBufferPointer
        init(handle: OpaquePointer?, bufferBytes: Int) {
            self.handle = handle
            buffer = .allocate(byteCount: bufferBytes, alignment: 4096)
        }
        deinit {
            nbd_close(handle)
            buffer.deallocate()
        }
    }
    private let connections: [Connection]
    private let free: Condition<[Int]>
    public static let maxRequestBytes = 1 << 20

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

    public init(uri: String, readOnly: Bool = false, connections count: Int = 4) throws(BackendError) {
        self.uri = uri
        var opened: [Connection] = []
        for _ in 0..<max(1, count) {
            opened.append(Connection(handle: try Self.connect(uri), bufferBytes: Self.maxRequestBytes))
        }
        guard let first = opened.first?.handle else { throw .invalidConfiguration("no NBD connection") }
        let size = nbd_get_size(first)
        guard size > 0 else { throw .invalidConfiguration("NBD export \(uri) reports size \(size)") }
        let serverReadOnly = nbd_is_read_only(first) == 1
        canFlush = nbd_can_flush(first) == 1
        canFUA = nbd_can_fua(first) == 1
        multiConn = nbd_can_multi_conn(first) == 1
        connections = opened
        free = Condition(Array(0..<opened.count))
        info = BlockBackendInfo(capacity: UInt64(size) / 512 * 512, logicalBlockSize: 512, physicalBlockSize: 4096,
                                isReadOnly: readOnly || serverReadOnly, supportsUnmap: nbd_can_trim(first) == 1 && !readOnly,
                                supportsWriteZeroes: !(readOnly || serverReadOnly), description: "nbd \(uri)")
    }

    private static func connect(_ uri: String) throws(BackendError) -> OpaquePointer {
        guard let h = nbd_create() else { throw .io(call: "nbd_create", errno: ENOMEM) }
        guard nbd_connect_uri(h, uri) == 0 else {
            let why = nbd_get_error().map { String(cString: $0) } ?? "unknown error"
            nbd_close(h)
            throw .invalidConfiguration("cannot connect to \(uri): \(why)")
        }
        return h
    }

    /// Runs `body` on a free connection (reconnecting it first if it failed before); a failure closes it.
    private func withConnection<R>(_ body: (OpaquePointer, UnsafeMutableRawBufferPointer) -> R?) throws(BackendError) -> R {
        let index = free.wait { $0.popLast() } ?? 0
        defer { free.updateWakingOne { $0.append(index) } }
        let c = connections[index]
        if c.handle == nil {
            do { c.handle = try Self.connect(uri) } catch { throw .disconnected("\(uri): the server is not back") }
        }
        guard let h = c.handle else { throw .io(call: "nbd", errno: ENOTCONN) }
        if let r = body(h, c.buffer) { return r }
        let why = nbd_get_error().map { String(cString: $0) } ?? "unknown error"
        let e = nbd_get_errno()
        // A dead connection (the server went away) is dropped, and the next request reconnects; an error the
        // server answered leaves the connection as it is.
        guard nbd_aio_is_dead(h) == 1 || nbd_aio_is_closed(h) == 1 else { throw .io(call: "nbd (\(why))", errno: e == 0 ? EIO : e) }
        nbd_close(h)
        c.handle = nil
        throw .disconnected("\(uri): \(why)")
    }

    public func read(at offset: UInt64, length: Int, into buffers: IOVector) throws(BackendError) {
        try info.check(offset: offset, length: UInt64(max(0, length)))
        try buffers.require(length)
        try inRequests(length) { (at, n) throws(BackendError) in
            try withConnection { h, b -> Bool? in
                guard nbd_pread(h, b.baseAddress, n, offset + UInt64(at), 0) == 0 else { return nil }
                _ = buffers.copy(from: UnsafeRawBufferPointer(rebasing: b[0..<n]), toOffset: at)
                return true
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

    public func write(at offset: UInt64, length: Int, from buffers: IOVector, fua: Bool) throws(BackendError) {
        guard !info.isReadOnly else { throw .readOnly }
        try info.check(offset: offset, length: UInt64(max(0, length)))
        try buffers.require(length)
        let flags: UInt32 = fua && canFUA ? LIBNBD_CMD_FLAG_FUA : 0
        try inRequests(length) { (at, n) throws(BackendError) in
            try withConnection { h, b -> Bool? in
                _ = buffers.copy(toBuffer: UnsafeMutableRawBufferPointer(rebasing: b[0..<n]), fromOffset: at)
                return nbd_pwrite(h, b.baseAddress, n, offset + UInt64(at), flags) == 0 ? true : nil
            }
        }
        if fua && !canFUA { try flush() }
    }

    public func flush() throws(BackendError) {
        guard canFlush, !info.isReadOnly else { return }
        // Without multi-conn a flush covers only its own connection's writes: flush them all.
        for _ in 0..<(multiConn ? 1 : connections.count) {
            try withConnection { h, _ -> Bool? in nbd_flush(h, 0) == 0 ? true : nil }
        }
    }

    public func unmap(at offset: UInt64, length: UInt64) throws(BackendError) {
        guard info.supportsUnmap else { throw .unsupported("trim on \(uri)") }
        try info.check(offset: offset, length: length)
        try withConnection { h, _ -> Bool? in nbd_trim(h, length, offset, 0) == 0 ? true : nil }
    }

    public func writeZeroes(at offset: UInt64, length: UInt64, unmap: Bool) throws(BackendError) {
        guard !info.isReadOnly else { throw .readOnly }
        try info.check(offset: offset, length: length)
        try withConnection { h, _ -> Bool? in
            nbd_zero(h, length, offset, unmap ? 0 : UInt32(LIBNBD_CMD_FLAG_NO_HOLE)) == 0 ? true : nil
        }
    }
}
