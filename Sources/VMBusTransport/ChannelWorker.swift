import Atomics
import VMBusRing
#if canImport(Glibc)
import Glibc
#endif

/// The receive loop of one channel end that owns a doorbell (the host side): drain the ring, then spin
/// briefly, then block on the doorbell. One OS thread per open channel; no task or allocation per packet.
public final class ChannelWorker: @unchecked Sendable {
    public let endpoint: ChannelEndpoint
    let doorbell: Doorbell
    let name: String
    let handler: (ReceivedPacket, PacketBuffer) -> Void
    let onExit: @Sendable (ChannelError?) -> Void
    let stopped = ManagedAtomic<Bool>(false)
    let finished = Latch()
    /// Work to run on the worker's thread once its loop has ended (see ``whenFinished(_:)``).
    private let finishers = Condition<(done: Bool, bodies: [@Sendable () -> Void])>((false, []))
    private var thread = pthread_t()
    private let threadKnown = ManagedAtomic<Bool>(false)

    /// How long to poll an empty ring before blocking on the doorbell (SWIFT-ON-LINUX.md: a wake-up through
    /// eventfd costs 20–45 µs across cores, a poll round trip 0.2 µs).
    public static let spinNanoseconds: UInt64 = 20_000

    public init(endpoint: ChannelEndpoint, doorbell: Doorbell, name: String,
                handler: @escaping (ReceivedPacket, PacketBuffer) -> Void,
                onExit: @escaping @Sendable (ChannelError?) -> Void) {
        self.endpoint = endpoint
        self.doorbell = doorbell
        self.name = name
        self.handler = handler
        self.onExit = onExit
    }

    /// Starts the loop on its own thread. Throws when the thread cannot be created: the loop never runs, the
    /// endpoint is closed, ``join()`` returns at once and `onExit` is not called (the caller fails the open).
    public func start() throws(TransportError) {
        do {
            try spawnThread(name: name) { [self] in
                loop()
            }
        } catch {
            endpoint.close()
            finish()
            throw error
        }
    }

    private func finish() {
        let bodies = finishers.withLock { f -> [@Sendable () -> Void] in
            f.done = true
            defer { f.bodies = [] }
            return f.bodies
        }
        for body in bodies { body() }
        finished.open()
    }

    private func loop() {
        thread = pthread_self()
        threadKnown.store(true, ordering: .releasing)
        var failure: ChannelError?
        do throws(ChannelError) {
            try run()
        } catch {
            failure = error
        }
        endpoint.close()
        onExit(failure)
        finish()
    }

    /// Packets one turn of the loop handles before it looks at the stop flag again (bounds how long a peer that
    /// keeps the ring busy can delay a stop: one packet, in practice).
    public static let packetsPerTurn = 256

    private func run() throws(ChannelError) {
        while !stopped.load(ordering: .acquiring) && !endpoint.isClosed {
            let drained = try endpoint.drain(maxPackets: Self.packetsPerTurn, handler)
            if drained.more || drained.handled > 0 { continue }
            // Spin with interrupts masked: the peer sees the mask and does not signal the packets it writes
            // meanwhile (a system call each, on a doorbell nobody waits on), as Linux's NAPI polling does.
            // The clock is read every 64 looks, not every look: the look is a load, the clock a vDSO call.
            let ring = endpoint.incoming
            ring.maskInterrupts()
            let spinUntil = monotonicNanoseconds() &+ Self.spinNanoseconds
            var ready = false
            spin: while true {
                for _ in 0..<64 {
                    if stopped.load(ordering: .relaxed) { return }
                    if (try? ring.isEmpty()) != true { ready = true; break spin }
                }
                if monotonicNanoseconds() >= spinUntil { break }
            }
            // Unmasked before sleeping, and looked at once more: a packet written while the mask was set
            // came without a signal (§5.3 step 4).
            if !ready && ring.unmaskInterrupts() { ready = true }
            if !ready {
                // Timed, so a stop request is noticed even if the wake-up is lost to a dying peer.
                doorbell.wait(timeoutNanoseconds: 100_000_000)
            }
            endpoint.peerSignalled()
        }
        // A sender on another thread may have failed the endpoint (the peer corrupted the outgoing ring).
        if !stopped.load(ordering: .acquiring), let failure = endpoint.failure { throw failure }
    }

    /// Whether the caller runs on this worker's thread (a device handler calling back into the host).
    public var isCurrentThread: Bool {
        threadKnown.load(ordering: .acquiring) && pthread_equal(thread, pthread_self()) != 0
    }

    /// Asks the loop to stop and wakes it.
    public func stop() {
        stopped.store(true, ordering: .releasing)
        endpoint.close()
        doorbell.signal()
    }

    /// Runs `body` once the loop has ended and `onExit` has returned: at once if it already has, else on the
    /// worker's thread. For a caller on the worker's own thread (a device handler), which cannot join it.
    public func whenFinished(_ body: @escaping @Sendable () -> Void) {
        let now = finishers.withLock { f -> Bool in
            if f.done { return true }
            f.bodies.append(body)
            return false
        }
        if now { body() }
    }

    /// Whether ``stop()`` was called (as opposed to the loop ending on a peer fault).
    public var wasStopped: Bool { stopped.load(ordering: .acquiring) }

    /// Waits until the loop has exited, unless called from the loop itself (which is then past its last ring
    /// access only if it calls from `onExit`).
    public func join() {
        guard !isCurrentThread else { return }
        finished.wait()
    }

    /// Waits at most `timeoutNanoseconds` for the loop to exit; false if it is still running (a device handler
    /// that does not return: no peer can cause that, as the loop stops between packets).
    public func join(timeoutNanoseconds: UInt64) -> Bool {
        guard !isCurrentThread else { return true }
        return finished.wait(timeoutNanoseconds: timeoutNanoseconds)
    }
}
