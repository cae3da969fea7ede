import Atomics
import CVMBusShims
#if canImport(Glibc)
import Glibc
#endif

/// A Unix-domain SOCK_SEQPACKET socket: message boundaries preserved, descriptors passed with SCM_RIGHTS.
public final class UnixSeqpacketSocket: @unchecked Sendable {
    public let fd: Int32
    private let closed = ManagedAtomic<Bool>(false)

    init(fd: Int32) { self.fd = fd }

    deinit { close() }

    /// Ends the connection both ways (also wakes a thread blocked in `receive` with end-of-stream). The
    /// descriptor stays open until ``close()`` or deinit, so other threads never see it reused.
    public func shutdown() { _ = Glibc.shutdown(fd, Int32(SHUT_RDWR)) }

    /// Ends our sending direction only: the peer reads end-of-stream after the frames already sent.
    public func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// Closes the descriptor (once). Only when no other thread can still be using the socket.
    public func close() {
        guard !closed.exchange(true, ordering: .acquiringAndReleasing) else { return }
        Glibc.close(fd)
    }

    private static func address(_ path: String) throws(TransportError) -> sockaddr_un {
        var addr = sockaddr_un()
        addr.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: addr.sun_path) else {
            throw .protocolViolation("socket path longer than \(MemoryLayout.size(ofValue: addr.sun_path) - 1) bytes: \(path)")
        }
        withUnsafeMutableBytes(of: &addr.sun_path) { raw in
            for (i, b) in bytes.enumerated() { raw[i] = b }
            raw[bytes.count] = 0
        }
        return addr
    }

    private static func newSocket() throws(TransportError) -> Int32 {
        let fd = socket(AF_UNIX, Int32(SOCK_SEQPACKET.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw .system(call: "socket", errno: errno) }
        return fd
    }

    /// Creates a listening socket at `path` with mode 0600. A stale socket file there (nobody listening) is
    /// replaced; a live one is refused with `EADDRINUSE`, and anything that is not a socket with `EEXIST`
    /// (never delete a file that only has the wrong name).
    public static func listen(path: String, backlog: Int32 = 16) throws(TransportError) -> UnixSeqpacketSocket {
        var addr = try address(path)
        var st = stat()
        if lstat(path, &st) == 0 {
            guard st.st_mode & S_IFMT == S_IFSOCK else { throw .system(call: "bind(\(path))", errno: EEXIST) }
            if let live = try? connect(path: path) {
                live.close()
                throw .system(call: "bind(\(path))", errno: EADDRINUSE)
            }
            unlink(path)
        }
        let fd = try newSocket()
        // Mode 0600 without touching the process-wide umask (other threads create files too). On Linux a
        // Unix socket file takes its mode from the socket's own inode (masked by the umask), so fchmod
        // before bind makes the file 0600 from the moment it exists. Belt and braces, for kernels that do
        // not: chmod the file after bind and check it, all before listen(). Until listen() nobody can
        // connect (ECONNREFUSED), so there is no window in which another user could, whatever the mode.
        _ = fchmod(fd, 0o600)
        let r = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else { let e = errno; Glibc.close(fd); throw .system(call: "bind(\(path))", errno: e) }
        var bound = stat()
        guard lstat(path, &bound) == 0, bound.st_mode & S_IFMT == S_IFSOCK else {
            let e = errno; Glibc.close(fd); throw .system(call: "lstat(\(path))", errno: e == 0 ? EEXIST : e)
        }
        if bound.st_mode & 0o177 != 0 {
            var after = stat()
            guard chmod(path, 0o600) == 0, lstat(path, &after) == 0, after.st_ino == bound.st_ino, after.st_dev == bound.st_dev,
                  after.st_mode & 0o177 == 0 else {
                let e = errno
                Glibc.close(fd)
                throw .system(call: "chmod(\(path), 0600)", errno: e == 0 ? EPERM : e)
            }
        }
        guard Glibc.listen(fd, backlog) == 0 else { let e = errno; Glibc.close(fd); throw .system(call: "listen", errno: e) }
        let socket = UnixSeqpacketSocket(fd: fd)
        if lstat(path, &st) == 0 { socket.boundFile = (UInt64(st.st_dev), UInt64(st.st_ino)) }
        return socket
    }

    /// The socket file `listen` created (device, inode), so that only that file is ever removed.
    private var boundFile: (UInt64, UInt64)?

    /// Removes the socket file `listen` created at `path`, unless another file has replaced it since.
    public func unlinkBoundFile(_ path: String) {
        var st = stat()
        guard let (dev, ino) = boundFile, lstat(path, &st) == 0, UInt64(st.st_dev) == dev, UInt64(st.st_ino) == ino else {
            return
        }
        unlink(path)
    }

    /// Connects to a listening socket at `path`.
    public static func connect(path: String) throws(TransportError) -> UnixSeqpacketSocket {
        var addr = try address(path)
        let fd = try newSocket()
        let r = withUnsafePointer(to: &addr) { p in
            p.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard r == 0 else {
            let e = errno
            Glibc.close(fd)
            throw .system(call: "connect(\(path))", errno: e)
        }
        return UnixSeqpacketSocket(fd: fd)
    }

    /// Waits up to `timeoutMilliseconds` (-1: forever) for a connection; nil on timeout.
    public func accept(timeoutMilliseconds: Int32 = -1) throws(TransportError) -> UnixSeqpacketSocket? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var r: Int32
        repeat { r = Glibc.poll(&p, 1, timeoutMilliseconds) } while r < 0 && errno == EINTR
        guard r > 0 else { return nil }
        let c = vmbus_shim_accept_cloexec(fd)
        guard c >= 0 else {
            let e = errno
            if e == EAGAIN || e == EINTR || e == ECONNABORTED { return nil }
            throw .system(call: "accept", errno: e)
        }
        return UnixSeqpacketSocket(fd: c)
    }

    /// The peer's (pid, uid, gid), from SO_PEERCRED.
    public func peerCredentials() throws(TransportError) -> (pid: Int32, uid: UInt32, gid: UInt32) {
        var pid: pid_t = 0, uid: uid_t = 0, gid: gid_t = 0
        guard vmbus_shim_peer_credentials(fd, &pid, &uid, &gid) == 0 else {
            throw .system(call: "getsockopt(SO_PEERCRED)", errno: errno)
        }
        return (pid, uid, gid)
    }

    /// Sends one frame, with descriptors. `nonBlocking`: a full socket buffer returns false instead of waiting.
    @discardableResult
    public func send(_ frame: TransportFrame, fds: [Int32] = [], nonBlocking: Bool = false) throws(TransportError) -> Bool {
        try send(bytes: frame.bytes, fds: fds, nonBlocking: nonBlocking)
    }

    /// Sends `bytes` as one message, whatever they contain (tests use it to play a misbehaving peer).
    @discardableResult
    public func send(bytes: [UInt8], fds: [Int32] = [], nonBlocking: Bool = false) throws(TransportError) -> Bool {
        let r = bytes.withUnsafeBytes { b in
            fds.withUnsafeBufferPointer { f in
                vmbus_shim_send_with_fds(fd, b.baseAddress, b.count, f.baseAddress, Int32(f.count), nonBlocking ? Int32(MSG_DONTWAIT) : 0)
            }
        }
        if r < 0 {
            let e = errno
            if nonBlocking && (e == EAGAIN || e == EWOULDBLOCK) { return false }
            if e == EPIPE || e == ECONNRESET || e == ENOTCONN { throw .disconnected }
            throw .system(call: "sendmsg", errno: e)
        }
        return true
    }

    /// Receives one frame and up to `maxFDs` descriptors (the caller owns them; more than `maxFDs` are
    /// closed on arrival). Returns nil when the peer closed the connection (end-of-stream or reset).
    /// A message that is not a well-formed frame (short, longer than 256 bytes, a length that disagrees with
    /// `payload_size`) throws ``TransportError/protocolViolation(_:)`` after its descriptors were closed; the
    /// connection stays usable.
    public func receive(maxFDs: Int = 4) throws(TransportError) -> (TransportFrame, [Int32])? {
        var buffer = [UInt8](repeating: 0, count: TransportFrame.maxFrameSize + 1)
        var fds = [Int32](repeating: -1, count: max(1, maxFDs))
        var nfds: Int32 = 0
        let r = buffer.withUnsafeMutableBytes { b in
            fds.withUnsafeMutableBufferPointer { f in
                vmbus_shim_recv_with_fds(fd, b.baseAddress, b.count, f.baseAddress, Int32(maxFDs), &nfds, 0)
            }
        }
        if r < 0 {
            let e = errno
            if e == ECONNRESET { return nil }
            throw .system(call: "recvmsg", errno: e)
        }
        let received = Array(fds.prefix(Int(nfds)))
        if r == 0 {
            for f in received { Glibc.close(f) }
            return nil
        }
        do {
            return (try TransportFrame(bytes: Array(buffer.prefix(r))), received)
        } catch {
            for f in received { Glibc.close(f) }
            throw error
        }
    }

    /// Waits until the socket or `other` (ignored if negative) is readable; returns (socketReadable,
    /// otherReadable, socketHungUp).
    public func poll(with other: Int32, timeoutMilliseconds: Int32) -> (Bool, Bool, Bool) {
        var p = [pollfd(fd: fd, events: Int16(POLLIN), revents: 0), pollfd(fd: other, events: Int16(POLLIN), revents: 0)]
        var r: Int32
        repeat { r = Glibc.poll(&p, 2, timeoutMilliseconds) } while r < 0 && errno == EINTR
        guard r > 0 else { return (false, false, false) }
        let hup = p[0].revents & Int16(POLLHUP | POLLERR) != 0
        // Hang-up or an error on `other` counts as readable: the caller's read then sees it (and must not
        // poll again and again on a descriptor that will never be readable).
        return (p[0].revents & Int16(POLLIN) != 0, p[1].revents & Int16(POLLIN | POLLHUP | POLLERR) != 0, hup)
    }
}

extension UnixSeqpacketSocket {
    /// What ``receiveMessage(maxBytes:timeoutMilliseconds:)`` got.
    public enum ReceivedMessage: Equatable, Sendable {
        case message([UInt8])
        /// The message was longer than the limit (it is consumed and dropped).
        case tooLong
    }

    /// Receives one raw message of at most `maxBytes` within `timeoutMilliseconds`; nil on timeout, end of
    /// stream or error. Any descriptors sent with it are closed.
    public func receiveMessage(maxBytes: Int, timeoutMilliseconds: Int32) -> ReceivedMessage? {
        var p = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        var r: Int32
        repeat { r = Glibc.poll(&p, 1, timeoutMilliseconds) } while r < 0 && errno == EINTR
        guard r > 0 else { return nil }
        var buffer = [UInt8](repeating: 0, count: maxBytes + 1)
        var fds = [Int32](repeating: -1, count: 4)
        var nfds: Int32 = 0
        let n = buffer.withUnsafeMutableBytes { b in
            fds.withUnsafeMutableBufferPointer { f in
                vmbus_shim_recv_with_fds(fd, b.baseAddress, b.count, f.baseAddress, 4, &nfds, Int32(MSG_DONTWAIT))
            }
        }
        for f in fds.prefix(Int(max(0, nfds))) { Glibc.close(f) }
        guard n > 0 else { return nil }
        return n > maxBytes ? .tooLong : .message(Array(buffer.prefix(n)))
    }
}
