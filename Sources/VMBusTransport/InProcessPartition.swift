import VMBusSync
import VMBusMemory
import VMBusProtocol

/// Host and guest in one process: a guest memory region, a SynIC event-flags page in it, a SINT doorbell,
/// bounded message queues both ways and one doorbell per guest→host connection id.
///
/// Page 0 of guest memory is the event-flags page (what a guest would point SIEFP at); the page allocator
/// never hands it out.
public final class InProcessPartition: Sendable {
    public let memory: GuestMemory
    public let pages: PageAllocator
    public let guest: GuestSide
    public let host: HostSide

    /// Messages queued towards one side before posts are refused (SynIC has one slot plus a pending queue).
    public static let messageQueueDepth = 1024

    /// - Parameter sintSpinNanoseconds: how long the guest's interrupt thread polls for work before it
    ///   blocks on the SINT eventfd.
    public init(memoryPages: Int, sintSpinNanoseconds: UInt64 = ChannelWorker.spinNanoseconds) throws {
        memory = try GuestMemory(pages: memoryPages)
        pages = PageAllocator(memory: memory, reservedPages: 1)
        let flags = try SynICEventFlags(memory: memory, pagePFN: 0, sint: Int(VMBusSynIC.messageSINT))
        let sint = try Doorbell()
        let toHost = BlockingQueue<(UInt32, [UInt8])>(capacity: Self.messageQueueDepth)
        let toGuest = BlockingQueue<[UInt8]>(capacity: Self.messageQueueDepth)
        let doorbells = DoorbellTable()
        guest = GuestSide(memory: memory, pages: pages, flags: flags, sint: sint, toHost: toHost, toGuest: toGuest,
                          doorbells: doorbells, spinNanoseconds: sintSpinNanoseconds)
        host = HostSide(memory: memory, flags: flags, sint: sint, toHost: toHost, toGuest: toGuest,
                        doorbells: doorbells)
    }

    public final class GuestSide: GuestSynIC {
        public let memory: GuestMemory
        public let pages: PageAllocator
        let flags: SynICEventFlags
        let sint: Doorbell
        let toHost: BlockingQueue<(UInt32, [UInt8])>
        let toGuest: BlockingQueue<[UInt8]>
        let doorbells: DoorbellTable
        let running = Lock<(sink: (any GuestInterruptSink)?, stopping: Bool)>((nil, false))
        let finished = Latch()

        init(memory: GuestMemory, pages: PageAllocator, flags: SynICEventFlags, sint: Doorbell,
             toHost: BlockingQueue<(UInt32, [UInt8])>, toGuest: BlockingQueue<[UInt8]>,
             doorbells: DoorbellTable, spinNanoseconds: UInt64) {
            self.memory = memory; self.pages = pages; self.flags = flags; self.sint = sint
            self.toHost = toHost; self.toGuest = toGuest; self.doorbells = doorbells
            self.spinNanoseconds = spinNanoseconds
        }

        let spinNanoseconds: UInt64

        public func postMessage(connectionID: UInt32, _ message: [UInt8]) -> HvStatus {
            guard connectionID == VMBusConnectionID.message || connectionID == VMBusConnectionID.message4 else {
                return .invalidConnectionID
            }
            guard message.count <= VMBusSynIC.messagePayloadByteCount else { return .invalidParameter }
            return toHost.push((connectionID, message)) ? .success : .insufficientBuffers
        }

        public func signalEvent(connectionID: UInt32) {
            let bell = doorbells.map.withLock { $0[connectionID] }
            bell?.signal()
        }

        public func start(_ sink: any GuestInterruptSink) {
            running.withLock { $0.sink = sink }
            let started = startThread(name: "vmbus-sint") { [self] in
                while true {
                    // Spin, then block (SWIFT-ON-LINUX.md): poll the event flags and the message queue for a
                    // while before sleeping on the SINT eventfd, whose wake-up costs tens of microseconds.
                    if !pollBriefly() { sint.wait() }
                    let (sink, stopping) = running.withLock { ($0.sink, $0.stopping) }
                    if stopping { break }
                    guard let sink else { continue }
                    // Channel interrupts first, then messages: the order Linux's vmbus_isr uses.
                    flags.drain { sink.channelInterrupt(relID: $0) }
                    while let m = toGuest.tryPop() { sink.channelMessage(m) }
                }
                finished.open()
            }
            // No thread: nothing will be delivered, and stop() must not wait for a thread that never ran.
            if !started { running.withLock { $0.sink = nil } }
        }

        /// Polls for pending interrupts or messages for up to ``ChannelWorker/spinNanoseconds``.
        private func pollBriefly() -> Bool {
            let until = monotonicNanoseconds() &+ spinNanoseconds
            repeat {
                if flags.anySet() || toGuest.count > 0 { return true }
            } while monotonicNanoseconds() < until
            return false
        }

        public func stop() {
            let wasRunning = running.withLock { r -> Bool in
                let was = r.sink != nil && !r.stopping
                r.stopping = true
                return was
            }
            guard wasRunning else { return }
            sint.signal()
            finished.wait()
            // Drop the sink: it (the bus) holds this partition side, and keeping it would be a reference cycle.
            running.withLock { $0.sink = nil }
        }
    }

    public final class HostSide: HostPartitionPort {
        public let memory: GuestMemory
        let flags: SynICEventFlags
        let sint: Doorbell
        let toHost: BlockingQueue<(UInt32, [UInt8])>
        let toGuest: BlockingQueue<[UInt8]>
        let doorbells: DoorbellTable
        let finished = Latch()
        let started = Lock(false)

        init(memory: GuestMemory, flags: SynICEventFlags, sint: Doorbell,
             toHost: BlockingQueue<(UInt32, [UInt8])>, toGuest: BlockingQueue<[UInt8]>,
             doorbells: DoorbellTable) {
            self.memory = memory; self.flags = flags; self.sint = sint
            self.toHost = toHost; self.toGuest = toGuest; self.doorbells = doorbells
        }

        public func postMessage(_ message: [UInt8]) -> Bool {
            guard toGuest.push(message) else { return false }
            sint.signal()
            return true
        }

        public func interruptGuest(relID: UInt32) {
            if flags.set(relID) { sint.signal() }
        }

        public func openDoorbell(connectionID: UInt32) throws(TransportError) -> Doorbell {
            try doorbells.map.withLock { map throws(TransportError) -> Doorbell in
                if let e = map[connectionID] { return e }
                // Fails only when the process is out of descriptors: the caller fails the channel.
                let e = try Doorbell()
                map[connectionID] = e
                return e
            }
        }

        public func removeDoorbell(connectionID: UInt32) {
            _ = doorbells.map.withLock { $0.removeValue(forKey: connectionID) }
        }

        public func start(_ sink: any HostMessageSink) {
            started.withLock { $0 = true }
            let running = startThread(name: "vmbus-host-ctl") { [self] in
                while let (connectionID, message) = toHost.pop() {
                    sink.guestMessage(connectionID: connectionID, message)
                }
                finished.open()
            }
            if !running {
                toHost.close()
                finished.open()
            }
        }

        public func stop() {
            guard started.withLock({ $0 }) else { return }
            toHost.close()
            finished.wait()
        }
    }
}

/// Guest→host doorbells by connection id, shared by both sides of an in-process partition.
final class DoorbellTable: Sendable {
    let map = Lock<[UInt32: Doorbell]>([:])
}
