import Atomics
import Synchronization
import VMBusMemory
import VMBusProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The guest's SynIC over the socket transport (docs/TRANSPORT.md): guest memory is a memfd handed to the
/// host at HELLO, channel messages travel as frames, doorbells are eventfds the host hands over, and the host
/// interrupts by setting event-flag bits in guest memory and writing the SINT eventfd.
public final class SocketGuestSynIC: GuestSynIC, @unchecked Sendable {
    public let memory: GuestMemory
    public let pages: PageAllocator
    public let partitionID: UInt32
    let socket: UnixSeqpacketSocket
    let sint: EventFD
    let flags: SynICEventFlags
    let doorbells = Mutex<[UInt32: EventFD]>([:])
    let stopping = ManagedAtomic<Bool>(false)
    let started = ManagedAtomic<Bool>(false)
    let finished = Latch()
    /// Frames from the host that broke the transport protocol (counted, dropped).
    public let violations = ManagedAtomic<Int>(0)

    /// Page 0 of guest memory is the SynIC event-flags page, as in the in-process partition.
    public static let eventFlagsPFN: UInt64 = 0

    /// Connects to the host at `path`, hands over `memoryPages` pages of new guest memory and the SINT
    /// eventfd, and waits for the host's HELLO_REPLY. Throws ``TransportRefused`` if the host refused us.
    public init(path: String, memoryPages: Int, timeoutMilliseconds: Int32 = 10_000) throws {
        let memory = try GuestMemory(pages: memoryPages)
        let socket = try UnixSeqpacketSocket.connect(path: path)
        let sint = try EventFD()
        let hello = TransportHello(memoryBytes: UInt64(memory.size), eventFlagsPFN: Self.eventFlagsPFN)
        try socket.send(TransportFrame(type: .hello, payload: hello.bytes), fds: [memory.fd, sint.fd])
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
        doorbells.withLock { $0[connectionID] }?.signal()
    }

    public func start(_ sink: any GuestInterruptSink) {
        started.store(true, ordering: .releasing)
        startThread(name: "vmbus-sint") { [self] in
            run(sink)
            finished.open()
        }
    }

    private func run(_ sink: any GuestInterruptSink) {
        while !stopping.load(ordering: .acquiring) {
            var (frameReady, interrupt, hungUp) = socket.poll(with: sint.fd, timeoutMilliseconds: 0)
            if !(frameReady || interrupt || hungUp) {
                // Spin, then block: the host sets event flags before it writes the SINT eventfd, so polling
                // the flags page catches channel interrupts without paying for a wake-up.
                let until = monotonicNanoseconds() &+ ChannelWorker.spinNanoseconds
                while !flags.anySet() && monotonicNanoseconds() < until {}
                if flags.anySet() {
                    flags.drain { sink.channelInterrupt(relID: $0) }
                    continue
                }
                (frameReady, interrupt, hungUp) = socket.poll(with: sint.fd, timeoutMilliseconds: 200)
            }
            if stopping.load(ordering: .acquiring) { return }
            if interrupt {
                // The host may have made the descriptor non-blocking: consume without relying on blocking reads.
                _ = sint.tryConsume()
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
            sink.channelMessage(frame.payload)
        case .doorbell where fds.count == 1 && Descriptors.isEventFD(fds[0]):
            guard let doorbell = try? TransportDoorbell(bytes: frame.payload) else {
                violations.wrappingIncrement(ordering: .relaxed)
                return
            }
            // Non-blocking, so that HvSignalEvent can never stall a guest thread, whatever the host did to it.
            Descriptors.setNonBlocking(fds[0])
            let bell = EventFD(adopting: fds.removeFirst())
            doorbells.withLock { $0[doorbell.connectionID] = bell }
        case .doorbellRevoke where fds.isEmpty:
            guard let doorbell = try? TransportDoorbell(bytes: frame.payload) else {
                violations.wrappingIncrement(ordering: .relaxed)
                return
            }
            _ = doorbells.withLock { $0.removeValue(forKey: doorbell.connectionID) }
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
