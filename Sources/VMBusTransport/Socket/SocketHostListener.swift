import Atomics
import Logging
import VMBusSync
import VMBusMemory
#if canImport(Glibc)
import Glibc
#endif

/// Accepts guest connections on a Unix socket and turns each into a partition.
///
/// One connection is one partition: it gets its own guest memory mapping, its own doorbells and the device
/// set `makePartition` builds for it, so a second guest gets devices of its own, never the first guest's.
/// A peer whose uid is not allowed (by default: ours and root's) is refused with HELLO_REPLY
/// `permission denied`.
public final class SocketHostListener: @unchecked Sendable {
    /// What the caller attaches to a new partition: returns an object to keep alive for the partition's life
    /// and a function to call when the guest has gone.
    public typealias PartitionFactory = @Sendable (SocketHostPort) throws -> (any AnyObject & Sendable, @Sendable () -> Void)

    public struct Configuration: Sendable {
        /// Peer uids accepted (nil: ours and root's).
        public var allowedUIDs: Set<UInt32>?
        /// Partitions served at once; more guests are refused with `too many partitions`.
        public var maxPartitions: Int
        /// How long a new connection may take to send HELLO before it is dropped.
        public var helloTimeoutMilliseconds: Int32
        /// Transport violations tolerated per partition before the guest is disconnected.
        public var violationLimit: Int
        /// Connections in their handshake at once (each holds a thread for up to `helloTimeoutMilliseconds`);
        /// further connections are closed at once, without a reply.
        public var maxHandshakes: Int
        /// How threads are started (tests make it fail).
        var spawn: @Sendable (String, @escaping @Sendable () -> Void) throws(TransportError) -> Void = spawnThread

        public init(allowedUIDs: Set<UInt32>? = nil, maxPartitions: Int = 64, helloTimeoutMilliseconds: Int32 = 10_000,
                    violationLimit: Int = SocketHostPort.defaultViolationLimit, maxHandshakes: Int = 8) {
            self.allowedUIDs = allowedUIDs
            self.maxPartitions = maxPartitions
            self.helloTimeoutMilliseconds = helloTimeoutMilliseconds
            self.violationLimit = violationLimit
            self.maxHandshakes = maxHandshakes
        }
    }

    public let path: String
    public let configuration: Configuration
    let socket: UnixSeqpacketSocket
    let allowedUIDs: Set<UInt32>
    let makePartition: PartitionFactory
    let logger: Logger
    let stopping = ManagedAtomic<Bool>(false)
    let started = ManagedAtomic<Bool>(false)
    let finished = Latch()
    let nextPartitionID = ManagedAtomic<UInt32>(1)
    let partitions = Lock<[UInt32: (SocketHostPort, any AnyObject & Sendable)]>([:])
    /// Connections in their handshake, by a token: ``stop()`` ends them and waits for them.
    let handshakes = Condition<(next: Int, live: [Int: UnixSeqpacketSocket])>((0, [:]))
    /// Connections refused at HELLO (uid, malformed or missing HELLO, bad memory or signal socket, limits).
    public let refusedConnections = ManagedAtomic<Int>(0)
    /// Connections closed at once, without a HELLO_REPLY, because ``Configuration/maxHandshakes`` were in
    /// progress (also counted in ``refusedConnections``).
    public let droppedConnections = ManagedAtomic<Int>(0)
    /// Partitions whose guest has gone and whose resources were released.
    public let releasedPartitions = ManagedAtomic<Int>(0)

    public convenience init(path: String, allowedUIDs: Set<UInt32>? = nil, maxPartitions: Int = 64, logger: Logger,
                            makePartition: @escaping PartitionFactory) throws {
        try self.init(path: path, configuration: Configuration(allowedUIDs: allowedUIDs, maxPartitions: maxPartitions),
                      logger: logger, makePartition: makePartition)
    }

    /// Creates the socket at `path` (mode 0600, replacing a stale one). Serving starts with ``start()``.
    public init(path: String, configuration: Configuration, logger: Logger,
                makePartition: @escaping PartitionFactory) throws {
        self.path = path
        self.configuration = configuration
        self.socket = try UnixSeqpacketSocket.listen(path: path)
        self.allowedUIDs = configuration.allowedUIDs ?? [getuid(), 0]
        self.logger = logger
        self.makePartition = makePartition
    }

    public var partitionCount: Int { partitions.withLock { $0.count } }

    /// Connections in their handshake now.
    public var handshakesInFlight: Int { handshakes.withLock { $0.live.count } }

    /// The port of partition `id`, while it is served.
    public func port(partition id: UInt32) -> SocketHostPort? { partitions.withLock { $0[id]?.0 } }

    /// Serves until ``stop()``. Throws if the accepting thread cannot be started.
    public func start() throws(TransportError) {
        started.store(true, ordering: .releasing)
        do {
            try configuration.spawn("vmbus-listen") { [self] in
                while !stopping.load(ordering: .acquiring) {
                    let connection: UnixSeqpacketSocket?
                    do {
                        connection = try socket.accept(timeoutMilliseconds: 200)
                    } catch {
                        // Out of descriptors, most likely: the pending connection stays queued, so back off
                        // instead of spinning on a socket that polls readable.
                        logger.warning("accept: \(error)")
                        sleepNanoseconds(100_000_000)
                        continue
                    }
                    guard let connection else { continue }
                    admit(connection)
                }
                finished.open()
            }
        } catch {
            started.store(false, ordering: .releasing)
            throw error
        }
    }

    /// Decides on the accepting thread, before any thread exists for the connection, whether it may
    /// proceed: credentials first (a refused uid only gets its refusal read out), then the handshake cap.
    /// Past the cap the connection is closed at once: its peer reads end-of-stream (or `ECONNRESET`).
    private func admit(_ c: UnixSeqpacketSocket) {
        let credentials = try? c.peerCredentials()
        let allowed = credentials.map { allowedUIDs.contains($0.uid) } ?? false
        let token = handshakes.update { h -> Int? in
            guard h.live.count < configuration.maxHandshakes, !stopping.load(ordering: .acquiring) else { return nil }
            h.next += 1
            h.live[h.next] = c
            return h.next
        }
        guard let token else {
            refusedConnections.wrappingIncrement(ordering: .relaxed)
            droppedConnections.wrappingIncrement(ordering: .relaxed)
            logger.warning("closed a guest connection at once: \(configuration.maxHandshakes) handshakes in progress")
            c.shutdown()
            c.close()
            return
        }
        do {
            try configuration.spawn("vmbus-hello") { [self] in
                defer { _ = handshakes.update { $0.live.removeValue(forKey: token) } }
                if let credentials, allowed {
                    accept(c, credentials)
                } else {
                    refuse(c, .permissionDenied, "peer uid \(credentials.map { String($0.uid) } ?? "?") is not allowed")
                }
            }
        } catch {
            _ = handshakes.update { $0.live.removeValue(forKey: token) }
            refusedConnections.wrappingIncrement(ordering: .relaxed)
            logger.warning("closed a guest connection: \(error)")
            c.shutdown()
            c.close()
        }
    }

    /// Answers HELLO with a refusal and ends the connection. The refusal is sent, our direction shut, and
    /// whatever the guest still sends read and discarded (for at most a second) before the connection ends:
    /// closing with unread data would make the peer's next read fail with ECONNRESET before it could read
    /// HELLO_REPLY.
    private func refuse(_ c: UnixSeqpacketSocket, _ status: TransportHelloReply.Status, _ why: String) {
        refusedConnections.wrappingIncrement(ordering: .relaxed)
        logger.warning("refused a guest connection: \(why)")
        _ = try? c.send(TransportFrame(type: .helloReply, payload: TransportHelloReply(status: status, partitionID: 0).bytes),
                        nonBlocking: true)
        c.shutdownWrite()
        let deadline = monotonicNanoseconds() &+ 1_000_000_000
        while monotonicNanoseconds() < deadline {
            let (readable, _, hungUp) = c.poll(with: -1, timeoutMilliseconds: 100)
            guard readable || hungUp else { continue }
            do {
                guard let (_, fds) = try c.receive(maxFDs: 4) else { break }
                for f in fds { close(f) }
            } catch .protocolViolation {
                continue
            } catch {
                break
            }
        }
        c.shutdown()
    }

    private func accept(_ c: UnixSeqpacketSocket, _ credentials: (pid: Int32, uid: UInt32, gid: UInt32)) {
        // A peer that connects and says nothing must not hold a thread forever.
        let (ready, _, hungUp) = c.poll(with: -1, timeoutMilliseconds: configuration.helloTimeoutMilliseconds)
        guard ready || hungUp else {
            refuse(c, .protocolViolation, "no HELLO from pid \(credentials.pid) within \(configuration.helloTimeoutMilliseconds) ms")
            return
        }
        // Room for more descriptors than HELLO carries, so that a HELLO with too many is seen and refused.
        let received: (TransportFrame, [Int32])?
        do {
            received = try c.receive(maxFDs: 4)
        } catch {
            refuse(c, .protocolViolation, "malformed frame instead of HELLO from pid \(credentials.pid): \(error)")
            return
        }
        guard let (frame, fds) = received else {
            logger.info("pid \(credentials.pid) hung up before HELLO")
            return
        }
        guard frame.type == .hello, fds.count == 2, let hello = try? TransportHello(bytes: frame.payload) else {
            for f in fds { close(f) }
            refuse(c, .protocolViolation,
                   "malformed HELLO from pid \(credentials.pid) (\(frame.type), \(frame.payload.count) bytes, \(fds.count) descriptors)")
            return
        }
        guard hello.version == TransportHello.currentVersion else {
            for f in fds { close(f) }
            refuse(c, .versionUnsupported, "transport version \(hello.version) from pid \(credentials.pid)")
            return
        }
        guard Doorbell.isSignalSocket(fds[1]) else {
            for f in fds { close(f) }
            refuse(c, .badSignalSocket, "the SINT descriptor of pid \(credentials.pid) is not an AF_UNIX SOCK_STREAM socket")
            return
        }
        guard partitionCount < configuration.maxPartitions else {
            for f in fds { close(f) }
            refuse(c, .tooManyPartitions, "already serving \(configuration.maxPartitions) partitions")
            return
        }
        let id = nextPartitionID.loadThenWrappingIncrement(ordering: .relaxed)
        let port: SocketHostPort
        do {
            port = try SocketHostPort(socket: c, hello: hello, memoryFD: fds[0], sintFD: fds[1], partitionID: id,
                                      violationLimit: configuration.violationLimit)
        } catch {
            refuse(c, .badMemory, "guest memory from pid \(credentials.pid): \(error)")
            return
        }
        let (keep, onGone): (any AnyObject & Sendable, @Sendable () -> Void)
        do {
            (keep, onGone) = try makePartition(port)
        } catch {
            refuse(c, .protocolViolation, "partition setup failed: \(error)")
            port.stop()
            return
        }
        guard !port.startFailed.load(ordering: .acquiring) else {
            refuse(c, .hostOutOfResources, "no control thread for the partition of pid \(credentials.pid)")
            port.stop()
            onGone()
            return
        }
                // Checked again where it counts: handshakes run in parallel, each saw room before it began.
        let admitted = partitions.withLock { p -> Bool in
            guard p.count < configuration.maxPartitions else { return false }
            p[id] = (port, keep)
            return true
        }
        guard admitted else {
            refuse(c, .tooManyPartitions, "already serving \(configuration.maxPartitions) partitions")
            port.stop()
            onGone()
            return
        }
        let replied = (try? c.send(TransportFrame(type: .helloReply,
                                                  payload: TransportHelloReply(status: .ok, partitionID: id).bytes))) != nil
        if replied {
            logger.info("partition \(id): guest pid \(credentials.pid) uid \(credentials.uid), \(hello.memoryBytes >> 20) MiB")
        } else {
            port.shutdownSocket()
        }
        // The port's control thread ends when the guest goes (or never starts reading if the reply failed);
        // then the partition is dropped, which unmaps its memory and closes its descriptors.
        port.helloReplied()
        let release: @Sendable () -> Void = { [self] in
            port.finished.wait()
            onGone()
            partitions.withLock { _ = $0.removeValue(forKey: id) }
            releasedPartitions.wrappingIncrement(ordering: .releasing)
            logger.info("partition \(id): guest gone, resources released")
        }
        do {
            try configuration.spawn("vmbus-part\(id)", release)
        } catch {
            // Nobody would release the partition when its guest goes: end it now, on this thread.
            logger.warning("partition \(id): \(error); disconnecting the guest")
            port.stop()
            release()
        }
    }

    /// Stops accepting, ends the handshakes in progress and waits for them, disconnects every guest and
    /// removes the socket file (if it is still ours).
    public func stop() {
        stopping.store(true, ordering: .releasing)
        if started.load(ordering: .acquiring) { finished.wait() }
        // Connections still queued in the backlog read end-of-stream instead of waiting for a HELLO_REPLY.
        socket.close()
        // A handshake that is under way ends at once on a shut-down socket; one that got as far as a
        // partition has registered it by the time it leaves `live`, so the loop below sees it.
        handshakes.withLock { h in for c in h.live.values { c.shutdown() } }
        if handshakes.wait(timeoutNanoseconds: 30_000_000_000, until: { $0.live.isEmpty ? true : nil }) == nil {
            logger.error("stop: handshakes still in progress after 30 s")
        }
        let all = partitions.withLock { Array($0.values) }
        for (port, _) in all { port.stop() }
        socket.unlinkBoundFile(path)
    }
}
