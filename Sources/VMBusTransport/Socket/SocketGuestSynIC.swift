import Atomics
import VMBusSync
import VMBusMemory
import VMBusProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The guest's SynIC over the socket transport (docs/TRANSPORT.md): guest memory is a memfd handed to the
/// host at HELLO (only after SO_PEERCRED showed a trusted host), channel messages travel as frames,
/// doorbells are signal sockets the host hands over (kept only for offered connection ids,
/// ``GuestDoorbells``), and the host interrupts by setting event-flag bits in guest memory and signalling
/// the SINT socket. No call on a descriptor the host shares can block (``Doorbell``).
public final class SocketGuestSynIC: GuestSynIC, @unchecked Sendable {
    public let memory: GuestMemory
    public let pages: PageAllocator
    public let partitionID: UInt32
    let socket: UnixSeqpacketSocket
    let sint: Doorbell
    let flags: SynICEventFlags
    let doorbells: Lock<GuestDoorbells>
    let stopping = ManagedAtomic<Bool>(false)
    let started = ManagedAtomic<Bool>(false)
    let finished = Latch()
    /// Frames from the host that broke the transport protocol (counted, dropped).
    public let violations = ManagedAtomic<Int>(0)

    /// Page 0 of guest memory is the SynIC event-flags page, as in the in-process partition.
    public static let eventFlagsPFN: UInt64 = 0
    /// Connection ids the guest keeps a doorbell for, at most (one per channel; Linux's limit on relids is
    /// 2047, real hosts offer far fewer).
    public static let defaultMaxDoorbells = 512

    /// Connects to the host at `path`, checks who it is (SO_PEERCRED: its uid must be in `allowedHostUIDs`,
    /// by default ours and root's) before handing over `memoryPages` pages of new guest memory and the SINT
    /// signal socket, and waits for the host's HELLO_REPLY. Throws ``HostNotTrusted`` for a host of another
    /// uid (it gets nothing: the connection is closed before HELLO), ``TransportRefused`` if the host refused
    /// us.
    public init(path: String, memoryPages: Int, timeoutMilliseconds: Int32 = 10_000,
                allowedHostUIDs: Set<UInt32>? = nil, maxDoorbells: Int = SocketGuestSynIC.defaultMaxDoorbells) throws {
        let socket = try UnixSeqpacketSocket.connect(path: path)
        let host = try socket.peerCredentials()
        guard (allowedHostUIDs ?? [getuid(), 0]).contains(host.uid) else {
            socket.shutdown()
            throw HostNotTrusted(path: path, uid: host.uid, pid: host.pid)
        }
        let memory = try GuestMemory(pages: memoryPages)
        let sint = try Doorbell()
        let hello = TransportHello(memoryBytes: UInt64(memory.size), eventFlagsPFN: Self.eventFlagsPFN)
        try socket.send(TransportFrame(type: .hello, payload: hello.bytes), fds: [memory.fd, sint.sendFD])
        let deadline = monotonicNanoseconds() &+ UInt64(timeoutMilliseconds) * 1_000_000
        var reply: TransportHelloReply?
        while reply == nil {
            let now = monotonicNanoseconds()
            guard now < deadline else { throw TransportError.timedOut("HELLO_REPLY from \(path)") }
            let (readable, _, hungUp) = socket.poll(with: -1, timeoutMilliseconds: Int32((deadline - now) / 1_000_000) + 1)
            guard readable || hungUp else { continue }
            guard let (frame, fds) = try socket.receive() else {
                throw TransportError.protocolViolation("the host at \(path) closed the connection without a HELLO_REPLY")
            }
            for f in fds { close(f) }
            guard frame.type == .helloReply else {
                throw TransportError.protocolViolation("expected HELLO_REPLY, got \(frame.type)")
            }
            reply = try TransportHelloReply(bytes: frame.payload)
        }
        guard let reply, reply.status == .ok else { throw TransportRefused(status: reply?.status ?? .protocolViolation) }
        guard reply.version == TransportHello.currentVersion else {
            throw TransportError.protocolViolation("the host answered with transport version \(reply.version)")
        }
        self.memory = memory
        self.pages = PageAllocator(memory: memory, reservedPages: 1)
        self.partitionID = reply.partitionID
        self.socket = socket
        self.sint = sint
        self.doorbells = Lock(GuestDoorbells(maxOffered: maxDoorbells))
        self.flags = try SynICEventFlags(memory: memory, pagePFN: Self.eventFlagsPFN, sint: Int(VMBusSynIC.messageSINT))
    }

    public func postMessage(connectionID: UInt32, _ message: [UInt8]) -> HvStatus {
        guard message.count <= VMBusSynIC.messagePayloadByteCount else { return .invalidParameter }
        do {
            let sent = try socket.send(TransportFrame(type: .channelMessage, port: UInt64(connectionID), payload: message),
                                       nonBlocking: true)
            return sent ? .success : .insufficientBuffers
        } catch {
            // The host is gone; the SINT thread is about to report it (end-of-stream) if it has not yet.
            return .invalidConnectionID
        }
    }

    public func signalEvent(connectionID: UInt32) {
        doorbells.withLock { $0.active[connectionID] }?.signal()
    }

    /// Doorbells held now (for offered ids, and pending ones).
    public var doorbellCount: Int { doorbells.withLock { $0.active.count + $0.pendingCount } }

    public func start(_ sink: any GuestInterruptSink) {
        started.store(true, ordering: .releasing)
        let running = startThread(name: "vmbus-sint") { [self] in
            run(sink)
            finished.open()
        }
        if !running {
            // No interrupt thread: nothing can be delivered. End the connection so that every post fails
            // and the host releases the partition, and let stop() return at once.
            socket.shutdown()
            finished.open()
        }
    }

    private func run(_ sink: any GuestInterruptSink) {
        while !stopping.load(ordering: .acquiring) {
            var (frameReady, interrupt, hungUp) = socket.poll(with: sint.pollFD, timeoutMilliseconds: 0)
            if !(frameReady || interrupt || hungUp) {
                // Spin, then block: the host sets event flags before it writes the SINT eventfd, so polling
                // the flags page catches channel interrupts without paying for a wake-up.
                let until = monotonicNanoseconds() &+ ChannelWorker.spinNanoseconds
                while !flags.anySet() && monotonicNanoseconds() < until {}
                if flags.anySet() {
                    flags.drain { sink.channelInterrupt(relID: $0) }
                    continue
                }
                // Timed: if the SINT socket is dead (pollFD -1), this is how interrupts are still noticed.
                (frameReady, interrupt, hungUp) = socket.poll(with: sint.pollFD, timeoutMilliseconds: 200)
            }
            if stopping.load(ordering: .acquiring) { return }
            if interrupt {
                // Bounded and non-blocking; end-of-stream here marks the SINT dead (no busy loop on it).
                _ = sint.tryConsume()
            }
            // Flags first, whatever woke us: a timed wake-up must find interrupts too.
            if interrupt || flags.anySet() {
                flags.drain { sink.channelInterrupt(relID: $0) }
            }
            if frameReady || hungUp {
                let received: (TransportFrame, [Int32])?
                do {
                    received = try socket.receive(maxFDs: 1)
                } catch .protocolViolation {
                    // A malformed frame: counted and dropped; the connection is still good.
                    violations.wrappingIncrement(ordering: .relaxed)
                    continue
                } catch {
                    received = nil
                }
                guard let (frame, fds) = received else {
                    sink.hostLost()
                    return
                }
                handle(frame, fds: fds, sink: sink)
            }
        }
    }

    private func handle(_ frame: TransportFrame, fds: [Int32], sink: any GuestInterruptSink) {
        var fds = fds
        defer { for f in fds { close(f) } }
        switch frame.type {
        case .channelMessage where fds.isEmpty:
            // Offers name the connection ids whose doorbells the guest keeps.
            var offered: UInt32?
            if frame.payload.count >= 4, frame.payload[0] == UInt8(ChannelMessageType.offerChannel.rawValue),
               frame.payload[1] == 0, frame.payload[2] == 0, frame.payload[3] == 0,
               case .offerChannel(let offer)? = try? ChannelMessage.parse(frame.payload) {
                offered = offer.connectionID
            }
            let expired = doorbells.withLock { $0.channelMessage(offering: offered) }
            if expired > 0 { violations.wrappingIncrement(by: expired, ordering: .relaxed) }
            sink.channelMessage(frame.payload)
        case .doorbell where fds.count == 1 && Doorbell.isSignalSocket(fds[0]):
            guard let doorbell = try? TransportDoorbell(bytes: frame.payload),
                  let bell = try? Doorbell(adoptingSendEnd: fds.removeFirst()) else {
                violations.wrappingIncrement(ordering: .relaxed)
                return
            }
            if !doorbells.withLock({ $0.received(bell, for: doorbell.connectionID) }) {
                violations.wrappingIncrement(ordering: .relaxed)
            }
        case .doorbellRevoke where fds.isEmpty:
            guard let doorbell = try? TransportDoorbell(bytes: frame.payload) else {
                violations.wrappingIncrement(ordering: .relaxed)
                return
            }
            doorbells.withLock { $0.revoke(doorbell.connectionID) }
        default:
            violations.wrappingIncrement(ordering: .relaxed)
        }
    }

    public func stop() {
        guard started.load(ordering: .acquiring), !stopping.exchange(true, ordering: .acquiringAndReleasing) else {
            socket.shutdown()
            return
        }
        sint.signal()
        finished.wait()
        socket.shutdown()
    }
}

/// The guest refused to connect: the process listening at `path` runs as a uid it does not trust (it
/// would otherwise have been handed all of the guest's memory).
public struct HostNotTrusted: Error, Equatable, Sendable, CustomStringConvertible {
    public var path: String
    public var uid: UInt32
    public var pid: Int32
    public var description: String { "the host at \(path) (pid \(pid)) runs as uid \(uid), which is not trusted (--host-uid)" }
}
