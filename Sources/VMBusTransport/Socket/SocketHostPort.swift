import Atomics
import CVMBusShims
import VMBusSync
import VMBusMemory
import VMBusProtocol
#if canImport(Glibc)
import Glibc
#endif

/// The host's view of one guest partition connected over the socket transport (docs/TRANSPORT.md).
///
/// The guest is untrusted: its memory is mapped only after the memfd proved to be shmem, sealed and at least
/// as large as declared; its SINT descriptor must be a signal socket (``Doorbell``: every send per-call
/// non-blocking, so no guest can stall a host thread on it, whatever it does to the descriptor); every GPADL
/// page is checked against the mapping, and frames are parsed with exact lengths. A frame that breaks the
/// transport protocol is counted in ``violations`` and dropped; past the violation limit the guest is
/// disconnected. The kernel's socket buffers bound what a flooding guest can queue: we read one frame at a
/// time and hold nothing between frames, and a flooded doorbell is drained a bounded amount per wake.
public final class SocketHostPort: HostPartitionPort, @unchecked Sendable {
    public let memory: GuestMemory
    public let partitionID: UInt32
    let socket: UnixSeqpacketSocket
    let sint: Doorbell
    let flags: SynICEventFlags
    let doorbells = Lock<[UInt32: Doorbell]>([:])
    let sendLock = Lock(())
    let finished = Latch()
    /// Opened once HELLO_REPLY is on the wire: the control thread answers no guest message before it, so
    /// HELLO_REPLY is always the first frame the guest receives.
    let helloAnswered = Latch()
    let started = ManagedAtomic<Bool>(false)
    /// The control thread could not be started: the listener refuses the partition.
    let startFailed = ManagedAtomic<Bool>(false)
    /// Frames the guest sent that break the transport protocol; past ``violationLimit`` it is disconnected.
    public let violations = ManagedAtomic<Int>(0)
    /// Messages to the guest dropped because it stopped reading its socket for ``sendTimeoutNanoseconds``.
    public let droppedMessages = ManagedAtomic<Int>(0)
    /// Frames received after HELLO, well-formed or not.
    public let framesReceived = ManagedAtomic<UInt64>(0)
    /// Violations tolerated before the guest is disconnected.
    public let violationLimit: Int
    public static let defaultViolationLimit = 1000
    /// How long a message to the guest waits for room in its socket before the guest is disconnected.
    public static let sendTimeoutNanoseconds: UInt64 = 1_000_000_000

    /// Takes over `socket` after the HELLO was read: maps the guest memory `memoryFD` and adopts `sintFD`
    /// (ownership of both taken, also on failure).
    public init(socket: UnixSeqpacketSocket, hello: TransportHello, memoryFD: Int32, sintFD: Int32,
                partitionID: UInt32, violationLimit: Int = SocketHostPort.defaultViolationLimit) throws {
        let sint: Doorbell
        do {
            sint = try Doorbell(adoptingSendEnd: sintFD)
        } catch {
            close(memoryFD)
            throw error
        }
        // hugetlbfs and other file systems can fail a page fault with SIGBUS, which would kill the host.
        guard Descriptors.isShmem(memoryFD) else {
            close(memoryFD)
            throw TransportError.protocolViolation("guest memory is not a shmem (tmpfs) memfd")
        }
        guard hello.memoryBytes > 0, hello.memoryBytes <= 1 << 40, hello.memoryBytes % UInt64(GuestMemory.pageSize) == 0 else {
            close(memoryFD)
            throw MemoryError.rangeOutOfBounds(gpa: 0, count: Int(truncatingIfNeeded: hello.memoryBytes), size: 0)
        }
        // Fixed-size memory: sealed against shrinking (which would fault our mapping) and growing (the size
        // the guest declared is the size it has). GuestMemory(mapping:) checks the file size and maps it.
        let required = vmbus_shim_seal_shrink() | vmbus_shim_seal_grow()
        let seals = vmbus_shim_get_seals(memoryFD)
        guard seals >= 0, seals & required == required else {
            close(memoryFD)
            throw MemoryError.unsealed
        }
        memory = try GuestMemory(mapping: memoryFD, size: Int(hello.memoryBytes))
        flags = try SynICEventFlags(memory: memory, pagePFN: hello.eventFlagsPFN, sint: Int(VMBusSynIC.messageSINT))
        self.socket = socket
        self.sint = sint
        self.partitionID = partitionID
        self.violationLimit = violationLimit
    }

    /// Sends a frame, waiting until `deadline` (default: ``sendTimeoutNanoseconds`` from now) for a guest
    /// that is slow to read; false if it never made room or is gone.
    func sendFrame(_ frame: TransportFrame, fds: [Int32] = [], deadline: UInt64? = nil) -> Bool {
        let deadline = deadline ?? monotonicNanoseconds() &+ Self.sendTimeoutNanoseconds
        return sendLock.withLock { _ in
            while true {
                do {
                    if try socket.send(frame, fds: fds, nonBlocking: true) { return true }
                } catch {
                    return false
                }
                if monotonicNanoseconds() >= deadline { return false }
                sleepNanoseconds(500_000)
            }
        }
    }

    public func postMessage(_ message: [UInt8]) -> Bool {
        // One deadline for the doorbell and its offer: a guest gets ``sendTimeoutNanoseconds`` to make room,
        // however many frames a message needs.
        let deadline = monotonicNanoseconds() &+ Self.sendTimeoutNanoseconds
        // The guest needs the doorbell of an offered channel before it can signal it: send it first, in order
        // on the same socket. No doorbell, no offer: the guest has been disconnected instead.
        if case .offerChannel(let offer)? = try? ChannelMessage.parse(message) {
            do {
                _ = try openDoorbell(connectionID: offer.connectionID, deadline: deadline)
            } catch {
                droppedMessages.wrappingIncrement(ordering: .relaxed)
                return false
            }
        }
        guard sendFrame(TransportFrame(type: .channelMessage, payload: message), deadline: deadline) else {
            // A lost control message would leave host and guest disagreeing about channel state for good, so a
            // guest that stops reading its socket is disconnected (and its partition released) instead.
            droppedMessages.wrappingIncrement(ordering: .relaxed)
            socket.shutdown()
            return false
        }
        return true
    }

    public func interruptGuest(relID: UInt32) {
        if flags.set(relID) { sint.signal() }
    }

    /// Doorbells that could not be made or handed over (the guest was disconnected each time).
    public let failedDoorbells = ManagedAtomic<Int>(0)

    public func openDoorbell(connectionID: UInt32) throws(TransportError) -> Doorbell {
        try openDoorbell(connectionID: connectionID, deadline: monotonicNanoseconds() &+ Self.sendTimeoutNanoseconds)
    }

    /// Makes the doorbell and sends the guest its DOORBELL, under one lock so that nobody sees a doorbell
    /// the guest has not been given. If either fails (out of descriptors, a guest that does not read), a
    /// channel could be offered that the guest can never signal: the guest is disconnected instead.
    func openDoorbell(connectionID: UInt32, deadline: UInt64) throws(TransportError) -> Doorbell {
        try doorbells.withLock { map throws(TransportError) -> Doorbell in
            if let e = map[connectionID] { return e }
            do throws(TransportError) {
                let e = try Doorbell()
                guard sendFrame(TransportFrame(type: .doorbell, payload: TransportDoorbell(connectionID: connectionID).bytes),
                                fds: [e.sendFD], deadline: deadline) else {
                    throw .timedOut("room for DOORBELL 0x\(String(connectionID, radix: 16)) in the guest's socket")
                }
                map[connectionID] = e
                return e
            } catch {
                failedDoorbells.wrappingIncrement(ordering: .relaxed)
                socket.shutdown()
                throw error
            }
        }
    }

    public func removeDoorbell(connectionID: UInt32) {
        guard doorbells.withLock({ $0.removeValue(forKey: connectionID) }) != nil else { return }
        _ = sendFrame(TransportFrame(type: .doorbellRevoke, payload: TransportDoorbell(connectionID: connectionID).bytes))
    }

    public func start(_ sink: any HostMessageSink) {
        started.store(true, ordering: .releasing)
        do {
            try spawnThread(name: "vmbus-host-ctl") { [self] in
                helloAnswered.wait()
                run(sink)
                // Whatever ended the loop (end-of-stream, the violation limit, stop), the guest must see the
                // connection end now, not whenever the last reference to this port goes away.
                socket.shutdown()
                sink.guestDisconnected()
                finished.open()
            }
        } catch {
            // Nobody will read this guest's messages: the listener refuses the partition.
            startFailed.store(true, ordering: .releasing)
            socket.shutdown()
            finished.open()
        }
    }

    /// Connection ids a guest may post to: `VMBUS_MESSAGE_CONNECTION_ID` and, from 5.0,
    /// `VMBUS_MESSAGE_CONNECTION_ID_4` (INITIATE_CONTACT).
    static let messageConnectionIDs: Set<UInt32> = [VMBusConnectionID.message, VMBusConnectionID.message4]

    /// Why the control loop ended (end-of-stream, a receive error, the violation limit), once it has.
    public var endReason: String? { ended.withLock { $0 } }
    private let ended = Lock<String?>(nil)

    private func run(_ sink: any HostMessageSink) {
        let reason = receiveLoop(sink)
        ended.withLock { $0 = reason }
    }

    /// Returns why it stopped.
    private func receiveLoop(_ sink: any HostMessageSink) -> String {
        while true {
            let received: (TransportFrame, [Int32])?
            do {
                // Room for one descriptor, so that a frame carrying any is seen (and refused); more are closed
                // on arrival.
                received = try socket.receive(maxFDs: 1)
            } catch .protocolViolation {
                framesReceived.wrappingIncrement(ordering: .relaxed)
                if !violation() { return "past the violation limit (\(violationLimit))" }
                continue
            } catch {
                return "receive: \(error)"
            }
            guard let (frame, fds) = received else { return "end of stream" }  // the guest is gone
            framesReceived.wrappingIncrement(ordering: .relaxed)
            let connectionID = UInt32(truncatingIfNeeded: frame.port)
            guard fds.isEmpty, frame.type == .channelMessage, frame.port >> 32 == 0,
                  Self.messageConnectionIDs.contains(connectionID) else {
                for f in fds { close(f) }  // the guest sends no descriptors after HELLO
                if !violation() { return "past the violation limit (\(violationLimit))" }
                continue
            }
            sink.guestMessage(connectionID: connectionID, frame.payload)
        }
    }

    /// Counts a violation; false once the guest is past the limit.
    private func violation() -> Bool {
        violations.wrappingIncrementThenLoad(ordering: .relaxed) <= violationLimit
    }

    /// Ends the connection without waiting for the control thread.
    func shutdownSocket() { socket.shutdown() }

    /// Lets the control thread start reading guest messages (HELLO_REPLY was sent).
    func helloReplied() { helloAnswered.open() }

    /// Disconnects the guest; returns once the control thread has handed the disconnect to the host.
    public func stop() {
        socket.shutdown()
        helloAnswered.open()
        if started.load(ordering: .acquiring) { finished.wait() }
    }
}
