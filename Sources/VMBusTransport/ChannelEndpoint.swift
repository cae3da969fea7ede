import Atomics
import VMBusProtocol
import VMBusRing

/// Why a channel operation failed.
public enum ChannelError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The channel was closed or rescinded.
    case closed
    /// The peer corrupted a ring: the channel is unusable.
    case ring(String)
    /// The outgoing ring stayed full for too long (the peer stopped reading).
    case sendTimedOut
    /// The packet can never fit in this ring.
    case packetTooLarge(Int)
    /// The request slot table is full.
    case tooManyOutstandingRequests
    /// The host is gone (transport lost) or rescinded the channel while a request was outstanding.
    case aborted(String)
    /// The peer sent a packet of `length` bytes (descriptor included), more than the channel's maximum packet
    /// size `limit`: a protocol violation that closes the channel.
    case oversizedPacket(length: Int, limit: Int)

    public var description: String {
        switch self {
        case .closed: return "the channel is closed"
        case .ring(let s): return "ring failure: \(s)"
        case .sendTimedOut: return "the outgoing ring stayed full: the peer stopped reading"
        case .packetTooLarge(let n): return "a packet of \(n) bytes can never fit in this ring"
        case .tooManyOutstandingRequests: return "too many outstanding requests"
        case .aborted(let why): return "request aborted: \(why)"
        case .oversizedPacket(let length, let limit):
            return "the peer sent a packet of \(length) bytes, more than the maximum packet size \(limit)"
        }
    }
}

/// What one call of ``ChannelEndpoint/drain(maxPackets:_:)`` did.
public struct DrainResult: Equatable, Sendable {
    /// Packets handed to the handler (and committed).
    public var handled: Int
    /// The packet budget ran out with packets still waiting: interrupts stay masked, call again soon.
    public var more: Bool

    public init(handled: Int, more: Bool) {
        self.handled = handled
        self.more = more
    }
}

/// One end of an open channel: the outgoing and incoming rings, the private packet buffer and the way to
/// signal the peer. Host and guest both use it; they differ only in how the peer is signalled and in who
/// drives the receive loop.
///
/// Sending may happen from any thread (serialised by a lock that does not allocate); receiving from one
/// thread at a time. Once ``close()`` has returned no send touches the rings again, and a drain stops at the
/// next packet: after that and the end of the receiving thread's current drain, the ring memory is ours to
/// give back.
///
/// The first peer fault the endpoint sees (a corrupt ring either way, or a packet larger than ``buffer``)
/// closes it and is kept in ``failure``; the layer above decides what the peer is told.
public final class ChannelEndpoint: @unchecked Sendable {
    public let outgoing: OutgoingRing
    public let incoming: IncomingRing
    public let buffer: PacketBuffer
    private let signalPeer: @Sendable () -> Void

    /// What the send lock guards: the outgoing ring, and the senders waiting for room in it. They share the
    /// ring's one `pending_send_sz`, so it holds the largest need of all of them and is cleared only when the
    /// last one leaves (one sender must not withdraw another's request).
    private struct SendState {
        var waiters = 0
        var pendingBytes = 0
        var closed = false
    }

    private enum SendOutcome {
        case sent(signal: Bool)
        case closed
        case failed(RingError)
        case retry
        case wait
    }

    /// A pthread mutex (``Condition``'s, without its broadcast): it does not allocate, and ThreadSanitizer sees
    /// it, which it does not for `Synchronization.Mutex`.
    private let sendLock = Condition(SendState())
    /// Bumped on every signal from the peer, so a sender blocked on a full ring re-checks.
    private let space = Condition<UInt64>(0)
    /// `space`'s value, stored under its lock whenever it changes, so that every send can take its "before"
    /// generation with one load instead of a lock round trip (only a sender that finds the ring full waits).
    private let spaceGeneration = ManagedAtomic<UInt64>(0)
    private let sendersWaiting = ManagedAtomic<Int>(0)
    private let closedFlag = ManagedAtomic<Bool>(false)
    private let firstFailure = Condition<ChannelError?>(nil)

    /// Packets one drain batch reads before committing, so the writer gets its space back early.
    public static let batchPackets = 64

    /// Longest a sender waits for ring space before giving up with ``ChannelError/sendTimedOut``.
    public var sendTimeoutNanoseconds: UInt64 = 30_000_000_000

    // Statistics. Each has one writer at a time (senders hold the send lock, one thread drains), so they
    // advance with a load and a store rather than a locked read-modify-write per packet; any thread may read them.
    public let packetsSent = ManagedAtomic<UInt64>(0)
    public let packetsReceived = ManagedAtomic<UInt64>(0)
    public let bytesSent = ManagedAtomic<UInt64>(0)
    public let bytesReceived = ManagedAtomic<UInt64>(0)
    public let signalsSent = ManagedAtomic<UInt64>(0)

    /// - Parameter maxPacketSize: the largest incoming packet accepted, descriptor included (Linux's
    ///   `max_pkt_size`; ``PacketBuffer/defaultCapacity`` unless the device protocol needs more). The buffer is
    ///   allocated once at this size, so it bounds what a channel costs whatever ring the peer gave us.
    public init(outgoing: OutgoingRing, incoming: IncomingRing, maxPacketSize: Int = PacketBuffer.defaultCapacity,
                signalPeer: @escaping @Sendable () -> Void) {
        self.outgoing = outgoing
        self.incoming = incoming
        self.buffer = PacketBuffer(capacity: max(maxPacketSize, PacketDescriptor.wireSize))
        self.signalPeer = signalPeer
    }

    public var isClosed: Bool { closedFlag.load(ordering: .acquiring) }

    /// The peer fault that closed the endpoint, if one did.
    public var failure: ChannelError? { firstFailure.withLock { $0 } }

    /// Marks the endpoint closed and wakes blocked senders. When it returns, no send is writing to the ring and
    /// none will; a drain on another thread stops after the packet it is handling.
    public func close() {
        // Under the send lock: a sender that already passed its closed check finishes before we return.
        sendLock.withLock { state in
            state.closed = true
            closedFlag.store(true, ordering: .releasing)
        }
        bumpSpace()
    }

    private func bumpSpace() {
        space.update { g in
            g &+= 1
            spaceGeneration.store(g, ordering: .releasing)
        }
    }

    /// Records `error` as the endpoint's failure (the first one wins), closes it and returns the failure.
    @discardableResult
    public func fail(_ error: ChannelError) -> ChannelError {
        let first = firstFailure.withLock { f -> ChannelError in
            if f == nil { f = error }
            return f ?? error
        }
        close()
        return first
    }

    /// Call on every signal from the peer: wakes senders waiting for space.
    @inline(__always)
    public func peerSignalled() {
        if sendersWaiting.load(ordering: .acquiring) > 0 { bumpSpace() }
    }

    private func raise() {
        signalsSent.wrappingIncrement(ordering: .relaxed)
        signalPeer()
    }

    /// The outgoing ring's corruption, read under the send lock (senders set it).
    public var outgoingCorruption: RingCorruption? { sendLock.withLock { _ in outgoing.corruption } }

    /// Sends one packet, waiting for ring space if needed. `header` is extra descriptor data (GPA ranges,
    /// a multiple of 8 bytes) placed between the descriptor and the payload.
    ///
    /// - Throws: ``ChannelError/closed`` once the endpoint is closed; ``ChannelError/ring(_:)`` if the peer
    ///   corrupted the outgoing ring (the endpoint is then failed and closed); ``ChannelError/sendTimedOut``;
    ///   ``ChannelError/packetTooLarge(_:)``.
    public func send(type: VMBusPacketType, flags: UInt16, transactionID: UInt64,
                     header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) throws(ChannelError) {
        let needed = OutgoingRing.bytesNeeded(headerCount: header.count, payloadCount: payload.count)
        guard needed <= outgoing.maximumPacketBytes, header.count & 7 == 0 else { throw .packetTooLarge(needed) }
        var deadline: UInt64 = 0
        var waiting = false
        // The space generation, read before an attempt so a signal that comes after a failed attempt is not
        // missed. Only a sender that found the ring full needs it: the first attempt goes without (not even the
        // atomic load), and a full ring reads it and tries once more before it may wait.
        var generation: UInt64?
        defer { if waiting { leaveWaiters() } }
        while true {
            let outcome: SendOutcome = sendLock.withLock { state in
                guard !state.closed else { return .closed }
                do throws(RingError) {
                    var batch = try outgoing.beginWrite()
                    try outgoing.append(&batch, type: type, flags: flags, transactionID: transactionID,
                                        header: header, payload: payload)
                    let signal = outgoing.commit(batch)
                    Self.add(1, to: packetsSent)
                    Self.add(UInt64(payload.count), to: bytesSent)
                    return .sent(signal: signal)
                } catch {
                    guard case .full = error else { return .failed(error) }
                    if !waiting {
                        waiting = true
                        state.waiters += 1
                        sendersWaiting.wrappingIncrement(ordering: .acquiringAndReleasing)
                    }
                    // Tell the reader how much we need (pending_send_sz); it signals when free space crosses it.
                    // Re-check after publishing it, or a reader that drained in between would never signal
                    // (PROTOCOL.md §5.2).
                    state.pendingBytes = max(state.pendingBytes, needed)
                    outgoing.setPendingSendSize(state.pendingBytes)
                    guard let free = try? outgoing.freeBytes(), free <= needed else { return .retry }
                    return .wait
                }
            }
            switch outcome {
            case .sent(let signal):
                if signal { raise() }
                return
            case .closed:
                throw .closed
            case .failed(let e):
                throw fail(.ring(String(describing: e)))
            case .retry:
                continue
            case .wait:
                guard let seen = generation else {
                    generation = spaceGeneration.load(ordering: .acquiring)
                    continue
                }
                let now = monotonicNanoseconds()
                if deadline == 0 { deadline = now &+ sendTimeoutNanoseconds }
                if now >= deadline { throw .sendTimedOut }
                // A short timed wait: if the blocked sender is the thread that also drains signals, nobody else
                // will wake it, so it polls.
                _ = space.wait(timeoutNanoseconds: min(1_000_000, deadline - now)) { $0 != seen ? true : nil }
                generation = spaceGeneration.load(ordering: .acquiring)
            }
        }
    }

    /// One waiting sender is done (sent, failed or gave up). The last one withdraws `pending_send_sz`; while
    /// others wait it keeps the largest need, which may ask for more room than they need now: a later signal,
    /// never a lost one. Nothing is written once the endpoint is closed.
    private func leaveWaiters() {
        sendLock.withLock { state in
            state.waiters -= 1
            sendersWaiting.wrappingDecrement(ordering: .acquiringAndReleasing)
            guard state.waiters == 0 else { return }
            state.pendingBytes = 0
            if !state.closed { outgoing.clearPendingSendSize() }
        }
    }

    /// Convenience for a packet without extra header.
    public func send(type: VMBusPacketType, flags: UInt16, transactionID: UInt64,
                     payload: UnsafeRawBufferPointer) throws(ChannelError) {
        try send(type: type, flags: flags, transactionID: transactionID,
                 header: UnsafeRawBufferPointer(start: nil, count: 0), payload: payload)
    }

    /// Control-path convenience (allocates).
    public func send(type: VMBusPacketType, flags: UInt16, transactionID: UInt64, bytes: [UInt8]) throws(ChannelError) {
        let r: Result<Void, ChannelError> = bytes.withUnsafeBytes { p in
            do throws(ChannelError) {
                try send(type: type, flags: flags, transactionID: transactionID, payload: p)
                return .success(())
            } catch { return .failure(error) }
        }
        try r.get()
    }

    /// Drains the incoming ring with no packet budget; see ``drain(maxPackets:_:)``. Returns the number of
    /// packets handled.
    @discardableResult
    public func drain(_ handler: (ReceivedPacket, PacketBuffer) -> Void) throws(ChannelError) -> Int {
        try drain(maxPackets: .max, handler).handled
    }

    /// Drains the incoming ring: calls `handler` for each packet (copied into ``buffer``), commits once per
    /// batch of ``batchPackets``, signals the peer if the reader rule says so, and re-checks after unmasking so
    /// no doorbell is lost.
    ///
    /// Bounded whatever the peer writes: it returns after `maxPackets` packets (``DrainResult/more`` says
    /// packets still wait: the caller must drain again rather than wait for a signal, which will not come), and
    /// stops after the current packet once the endpoint is closed.
    ///
    /// A peer fault ends the drain: the packets handled before it are committed (they are never delivered
    /// again), the endpoint is failed and closed (``failure``), and the error is thrown:
    /// ``ChannelError/ring(_:)`` for a corrupt ring, ``ChannelError/oversizedPacket(length:limit:)`` for a
    /// packet larger than the buffer (a protocol violation; nothing of it was consumed).
    public func drain(maxPackets: Int, _ handler: (ReceivedPacket, PacketBuffer) -> Void) throws(ChannelError) -> DrainResult {
        guard !isClosed else { return DrainResult(handled: 0, more: false) }
        var handled = 0
        incoming.maskInterrupts()
        while true {
            var batch: IncomingBatch
            do {
                batch = try incoming.beginRead()
            } catch {
                throw fail(Self.channelError(error, limit: buffer.capacity))
            }
            var n = 0
            var bytes: UInt64 = 0
            var fault: RingError?
            while n < Self.batchPackets, handled + n < maxPackets, !isClosed {
                let next: ReceivedPacket?
                do {
                    next = try incoming.next(&batch, into: buffer)
                } catch {
                    fault = error
                    break
                }
                guard let packet = next else { break }
                bytes &+= UInt64(packet.payloadLength)
                handler(packet, buffer)
                n += 1
            }
            Self.add(UInt64(n), to: packetsReceived)
            Self.add(bytes, to: bytesReceived)
            handled += n
            // Commit what was handled, also when the ring broke after it.
            if incoming.commit(batch) { raise() }
            if let fault { throw fail(Self.channelError(fault, limit: buffer.capacity)) }
            if isClosed { return DrainResult(handled: handled, more: false) }
            if handled >= maxPackets {
                // Unmasked either way: if packets wait the caller drains again, else the writer's next packet
                // signals as usual.
                return DrainResult(handled: handled, more: incoming.unmaskInterrupts())
            }
            if n == Self.batchPackets { continue }
            if !incoming.unmaskInterrupts() { return DrainResult(handled: handled, more: false) }
            incoming.maskInterrupts()
        }
    }

    /// Advances a statistics counter that only the calling thread writes now (see ``packetsSent``).
    @inline(__always)
    private static func add(_ n: UInt64, to counter: ManagedAtomic<UInt64>) {
        counter.store(counter.load(ordering: .relaxed) &+ n, ordering: .relaxed)
    }

    private static func channelError(_ e: RingError, limit: Int) -> ChannelError {
        if case .tooLarge(let length) = e { return .oversizedPacket(length: length, limit: limit) }
        return .ring(String(describing: e))
    }
}

extension ChannelEndpoint {
    /// Sends the payload of a received packet back (or on), straight from the packet buffer: no allocation.
    public func send(type: VMBusPacketType, flags: UInt16, transactionID: UInt64, payloadOf packet: ReceivedPacket,
                     in buffer: PacketBuffer) throws(ChannelError) {
        try buffer.withUnsafeBytes(of: packet) { (raw: UnsafeRawBufferPointer) throws(ChannelError) in
            try send(type: type, flags: flags, transactionID: transactionID,
                     payload: UnsafeRawBufferPointer(rebasing: raw[packet.payloadRange]))
        }
    }
}
