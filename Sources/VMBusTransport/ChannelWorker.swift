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

    public func start() {
        startThread(name: name) { [self] in
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
            finished.open()
        }
    }

    private func run() throws(ChannelError) {
        while !stopped.load(ordering: .acquiring) {
            if try endpoint.drain(handler) > 0 { continue }
            let spinUntil = monotonicNanoseconds() &+ Self.spinNanoseconds
            var ready = false
            while monotonicNanoseconds() < spinUntil {
                if stopped.load(ordering: .relaxed) { return }
                if (try? endpoint.incoming.isEmpty()) == false { ready = true; break }
            }
            if !ready {
                // Timed, so a stop request is noticed even if the wake-up is lost to a dying peer.
                doorbell.wait(timeoutNanoseconds: 100_000_000)
            }
            endpoint.peerSignalled()
        }
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

    /// Waits until the loop has exited, unless called from the loop itself.
    public func join() {
        guard !isCurrentThread else { return }
        finished.wait()
    }
}
