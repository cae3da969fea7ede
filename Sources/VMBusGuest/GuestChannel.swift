import Atomics
import VMBusMemory
import VMBusProtocol
import VMBusRing
import VMBusTransport
import VMBusWire

/// An open channel in the guest: send in-band and GPA-direct packets, match completions to requests, and
/// receive packets copied out of the ring.
///
/// Lifetime of the ring pages: every send and every drain counts itself in ``ringUsers`` and checks the
/// closed flag after doing so; closing sets the flag first and then waits for the count to reach zero
/// (``quiesce(timeoutNanoseconds:)``). Both sides use sequentially consistent atomics, so either the user sees
/// the channel closed and leaves the ring alone, or the closer sees the user and waits for it. Only then are
/// the pages given back to the allocator.
///
/// Senders that call ``endpoint`` directly bypass that count; use the channel's own send methods.
public final class GuestChannel: @unchecked Sendable {
    public let offer: OfferChannel
    public var relID: UInt32 { offer.childRelID }
    public var subchannelIndex: UInt16 { offer.subchannelIndex }
    public let endpoint: ChannelEndpoint
    public let requestor: Requestor
    /// The ring GPADL and the pages behind both rings.
    let ringGPADL: UInt32
    let ringPages: [UInt64]
    weak var bus: GuestBus?
    private let handler: any GuestChannelHandler
    private let rescindedFlag = ManagedAtomic<Bool>(false)
    private let closedFlag = ManagedAtomic<Bool>(false)
    /// Synchronous requests (control path): context → response bytes.
    private let syncResponses = Condition<[UInt64: [UInt8]]>([:])
    private let nextSyncContext = ManagedAtomic<UInt64>(1 << 63)
    /// Why outstanding requests were first failed (rescind, close, host lost), for ``request(_:timeoutNanoseconds:)``.
    private let failure = Condition<GuestError?>(nil)
    /// Threads inside a send or a drain of this channel's rings.
    private let ringUsers = ManagedAtomic<Int>(0)
    /// Held by the one thread draining the incoming ring (the SINT thread or the bus's poll thread).
    private let drainOwned = ManagedAtomic<Bool>(false)
    /// An interrupt arrived; the drain owner looks again before it lets go.
    private let drainRequested = ManagedAtomic<Bool>(false)
    /// Queued on the bus's poll thread because a drain used up its budget.
    let backlogged = ManagedAtomic<Bool>(false)
    /// Threads between ``beginPolling()`` and ``endPolling()``: while there is one, a drain that empties the
    /// ring leaves interrupts masked, so the host writes completions without signalling and the poller, not the
    /// interrupt thread, picks them up.
    private let pollers = ManagedAtomic<Int>(0)
    private let signalPeer: @Sendable () -> Void

    init(offer: OfferChannel, endpoint: ChannelEndpoint, requestor: Requestor, ringGPADL: UInt32,
         ringPages: [UInt64], bus: GuestBus, handler: any GuestChannelHandler,
         signalPeer: @escaping @Sendable () -> Void) {
        self.offer = offer
        self.endpoint = endpoint
        self.signalPeer = signalPeer
        self.requestor = requestor
        self.ringGPADL = ringGPADL
        self.ringPages = ringPages
        self.bus = bus
        self.handler = handler
    }

    public var isRescinded: Bool { rescindedFlag.load(ordering: .acquiring) }
    public var isClosed: Bool { closedFlag.load(ordering: .acquiring) }
    /// Completions refused because their transaction id was unknown or repeated.
    public var rejectedCompletions: UInt64 { requestor.rejectedCompletions }

    // MARK: - Sending

    /// Sends an in-band packet that needs no completion (transaction id 0 unless given).
    public func sendInband(_ payload: UnsafeRawBufferPointer, transactionID: UInt64 = 0) throws(GuestError) {
        do throws(ChannelError) {
            try usingRings { () throws(ChannelError) in
                try endpoint.send(type: .dataInband, flags: 0, transactionID: transactionID, payload: payload)
            }
        } catch { throw .channel(error) }
    }

    /// Runs `body`, which touches the rings, counted in ``ringUsers``; throws ``ChannelError/closed`` instead
    /// once the channel is closed.
    @inline(__always)
    private func usingRings<R>(_ body: () throws(ChannelError) -> R) throws(ChannelError) -> R {
        ringUsers.wrappingIncrement(ordering: .sequentiallyConsistent)
        defer { ringUsers.wrappingDecrement(ordering: .sequentiallyConsistent) }
        guard !closedFlag.load(ordering: .sequentiallyConsistent) else { throw .closed }
        return try body()
    }

    /// Sends an in-band request with COMPLETION_REQUESTED; its completion reaches the handler with `context`.
    /// Returns the transaction id.
    @discardableResult
    public func sendRequest(_ payload: UnsafeRawBufferPointer, context: UInt64) throws(GuestError) -> UInt64 {
        try sendRequest(type: .dataInband, header: UnsafeRawBufferPointer(start: nil, count: 0), payload: payload,
                        context: context)
    }

    /// Sends a GPA-direct request: `rangeHeader` is the encoded `reserved, rangecount, ranges` block
    /// (a multiple of 8 bytes) that follows the descriptor.
    @discardableResult
    public func sendGPADirectRequest(rangeHeader: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer,
                                     context: UInt64) throws(GuestError) -> UInt64 {
        try sendRequest(type: .dataUsingGPADirect, header: rangeHeader, payload: payload, context: context)
    }

    /// Sends a GPA-direct request naming `ranges` of guest memory, with `payload` after them (control-path
    /// convenience: encodes the range block into a new array).
    @discardableResult
    public func sendGPADirectRequest(ranges: [GPARange], payload: [UInt8], context: UInt64) throws(GuestError) -> UInt64 {
        guard !ranges.isEmpty else { throw .invalidArgument("a GPA-direct packet names at least one range") }
        var w = WireWriter(capacity: 8 + GPARange.encodedLength(of: ranges))
        w.writeUInt32(0)  // reserved
        w.writeUInt32(UInt32(ranges.count))
        GPARange.encodeList(ranges, into: &w)
        let header = w.bytes
        let r: Result<UInt64, GuestError> = header.withUnsafeBytes { h in
            payload.withUnsafeBytes { p in
                do throws(GuestError) { return .success(try sendGPADirectRequest(rangeHeader: h, payload: p, context: context)) }
                catch { return .failure(error) }
            }
        }
        return try r.get()
    }

    func sendRequest(type: VMBusPacketType, header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer,
                     context: UInt64) throws(GuestError) -> UInt64 {
        guard !isRescinded else { throw .rescinded(relID: relID) }
        guard let id = requestor.allocate(context: context) else {
            throw .channel(.tooManyOutstandingRequests)
        }
        do throws(ChannelError) {
            try usingRings { () throws(ChannelError) in
                try endpoint.send(type: type, flags: PacketDescriptor.flagCompletionRequested, transactionID: id,
                                  header: header, payload: payload)
            }
        } catch {
            _ = requestor.complete(id)
            throw .channel(error)
        }
        return id
    }

    /// Sends a completion for a host request.
    public func sendCompletion(transactionID: UInt64, _ payload: UnsafeRawBufferPointer) throws(GuestError) {
        do throws(ChannelError) {
            try usingRings { () throws(ChannelError) in
                try endpoint.send(type: .completion, flags: 0, transactionID: transactionID, payload: payload)
            }
        } catch { throw .channel(error) }
    }

    /// Control path: sends a request and waits for its completion's payload.
    public func request(_ bytes: [UInt8], timeoutNanoseconds: UInt64 = 10_000_000_000) throws(GuestError) -> [UInt8] {
        let context = nextSyncContext.loadThenWrappingIncrement(ordering: .relaxed) | (1 << 63)
        let r: Result<UInt64, GuestError> = bytes.withUnsafeBytes { p in
            do throws(GuestError) { return .success(try sendRequest(p, context: context)) }
            catch { return .failure(error) }
        }
        let id = try r.get()
        let response = syncResponses.wait(timeoutNanoseconds: timeoutNanoseconds) { $0.removeValue(forKey: context) }
        guard let response else {
            // Give the id back, or a host that never answers would use up the request table.
            requestor.cancel(id)
            syncResponses.withLock { _ = $0.removeValue(forKey: context) }
            throw isRescinded ? .rescinded(relID: relID) : .timedOut("completion on channel \(relID)")
        }
        // fail() answers waiting requests with an empty payload after recording why.
        if response.isEmpty, let error = failure.withLock({ $0 }) { throw error }
        if response.isEmpty && (isRescinded || isClosed) { throw .rescinded(relID: relID) }
        return response
    }

    // MARK: - Receiving (called by the bus on this channel's interrupt)

    /// How one ``service(budget:)`` call ended.
    enum Service: Equatable {
        /// The ring is empty and interrupts are unmasked (or another thread is draining, or the channel is
        /// closed).
        case idle
        /// The budget ran out with packets possibly left: interrupts stay masked, call again.
        case more
        /// The host broke the ring (corrupt indices or descriptor, a packet larger than the packet buffer):
        /// the packets before it were delivered and committed; the channel must be closed.
        case failed(ChannelError)
    }

    /// Packets per commit, so the host gets ring space back early.
    static let batchSize = 64

    /// Drains up to `budget` packets into the handler. Any thread may call it; one drains at a time, and an
    /// interrupt that arrives meanwhile makes that one look again before it stops.
    func service(budget: Int) -> Service {
        var handled = 0
        return service(budget: budget, handled: &handled)
    }

    private func service(budget: Int, handled: inout Int) -> Service {
        endpoint.peerSignalled()
        drainRequested.store(true, ordering: .sequentiallyConsistent)
        while true {
            guard drainOwned.compareExchange(expected: false, desired: true, ordering: .sequentiallyConsistent).exchanged
            else { return .idle }
            let outcome = ownedDrain(budget: budget, handled: &handled)
            drainOwned.store(false, ordering: .sequentiallyConsistent)
            // An interrupt between our last look and letting go found the drain owned: look again for it.
            guard outcome == .idle, drainRequested.load(ordering: .sequentiallyConsistent), !isClosed else {
                return outcome
            }
        }
    }

    private func ownedDrain(budget: Int, handled: inout Int) -> Service {
        ringUsers.wrappingIncrement(ordering: .sequentiallyConsistent)
        defer { ringUsers.wrappingDecrement(ordering: .sequentiallyConsistent) }
        guard !closedFlag.load(ordering: .sequentiallyConsistent) else { return .idle }
        drainRequested.store(false, ordering: .sequentiallyConsistent)
        let ring = endpoint.incoming
        let buffer = endpoint.buffer
        var left = budget
        ring.maskInterrupts()
        while true {
            var batch: IncomingBatch
            do { batch = try ring.beginRead() } catch { return .failed(.ring(String(describing: error))) }
            var n = 0
            var broken: RingError?
            while n < Self.batchSize && left > 0 {
                let next: ReceivedPacket?
                do { next = try ring.next(&batch, into: buffer) } catch { broken = error; break }
                guard let packet = next else { break }
                endpoint.packetsReceived.wrappingIncrement(ordering: .relaxed)
                endpoint.bytesReceived.wrappingIncrement(by: UInt64(packet.payloadLength), ordering: .relaxed)
                dispatch(packet, buffer)
                n += 1
                left -= 1
                handled += 1
            }
            // What the handler has seen is consumed, also when the packet after it broke the ring: giving it
            // back would deliver it twice.
            if ring.commit(batch) {
                endpoint.signalsSent.wrappingIncrement(ordering: .relaxed)
                signalPeer()
            }
            if let broken { return .failed(.ring(String(describing: broken))) }
            if closedFlag.load(ordering: .sequentiallyConsistent) { return .idle }
            if left == 0 { return .more }
            if n == Self.batchSize { continue }
            // A poller will look again soon: the host need not signal (endPolling() unmasks).
            if pollers.load(ordering: .sequentiallyConsistent) > 0 { return .idle }
            // Empty: unmask, and keep going if the host published while the mask was set (it did not signal).
            if !ring.unmaskInterrupts() { return .idle }
            ring.maskInterrupts()
        }
    }

    // MARK: - Polling (a driver's submitting thread reaping its own completions)

    /// Starts polling mode for the calling thread: until the matching ``endPolling()``, a drain that empties
    /// the ring leaves the host's interrupts masked (Linux's NAPI polls the same way), so completions cost no
    /// signal and no interrupt-thread wake-up as long as someone calls ``poll(budget:)``. Pollers nest; the
    /// interrupt thread still drains if a signal comes (one sent before the mask was set).
    public func beginPolling() {
        pollers.wrappingIncrement(ordering: .sequentiallyConsistent)
    }

    /// Ends one ``beginPolling()``. The last poller to leave unmasks interrupts through one more drain, so a
    /// packet the host wrote while they were masked is delivered, not left waiting for a signal.
    public func endPolling() {
        guard pollers.wrappingDecrementThenLoad(ordering: .sequentiallyConsistent) == 0 else { return }
        if let bus { bus.serve(self) } else { _ = service(budget: GuestBus.drainBudget) }
    }

    /// Drains up to `budget` packets into the handler on the calling thread (unless another thread is draining
    /// this channel right now); returns how many this call delivered. A broken ring is handed to the bus as an
    /// interrupt's drain would be; a budget used up leaves the rest to the next poll or the bus's poll thread.
    @discardableResult
    public func poll(budget: Int = GuestBus.drainBudget) -> Int {
        var handled = 0
        switch service(budget: budget, handled: &handled) {
        case .idle, .more:
            break
        case .failed(let error):
            bus?.channelBroke(self, error)
        }
        return handled
    }

    private func dispatch(_ packet: ReceivedPacket, _ buffer: PacketBuffer) {
        guard packet.descriptor.type == .completion else {
            handler.packetReceived(packet, buffer: buffer, on: self)
            return
        }
        guard let context = requestor.complete(packet.descriptor.transactionID) else {
            return  // unknown or repeated id: counted by the requestor, dropped
        }
        if context & (1 << 63) != 0 {
            let bytes = buffer.payloadArray(of: packet)
            syncResponses.update { $0[context] = bytes }
        } else {
            handler.completionReceived(context: context, packet: packet, buffer: buffer, on: self)
        }
    }

    /// Fails every outstanding request with `error`.
    func fail(_ error: GuestError) {
        failure.withLock { if $0 == nil { $0 = error } }
        let contexts = requestor.cancelAll()
        let async = contexts.filter { $0 & (1 << 63) == 0 }
        syncResponses.update { waiting in
            for c in contexts where c & (1 << 63) != 0 { waiting[c] = [] }
        }
        if !async.isEmpty { handler.requestsFailed(contexts: async, error: error, on: self) }
    }

    func markRescinded() {
        rescindedFlag.store(true, ordering: .releasing)
        endpoint.close()
        fail(.rescinded(relID: relID))
    }

    func markClosed() {
        closedFlag.store(true, ordering: .sequentiallyConsistent)
        endpoint.close()
    }

    /// Closes the channel to every thread of ours and waits until none is inside a send or a drain. Returns
    /// false if one stayed longer than `timeoutNanoseconds` (a handler that blocks, or one that closes its own
    /// channel from its callback): the ring pages must then not be reused.
    func quiesce(timeoutNanoseconds: UInt64) -> Bool {
        markClosed()
        let deadline = monotonicNanoseconds() &+ timeoutNanoseconds
        while ringUsers.load(ordering: .sequentiallyConsistent) != 0 {
            guard monotonicNanoseconds() < deadline else { return false }
            sleepNanoseconds(20_000)
        }
        return true
    }

    /// Tells the handler that the bus closed the channel because the host broke it.
    func notifyBroken(_ error: GuestError) {
        handler.channelClosed(self, error: error)
    }

    /// Closes the channel: CLOSECHANNEL, then the ring GPADL is torn down and its pages freed.
    public func close() {
        bus?.close(self)
    }
}
