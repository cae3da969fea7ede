import Atomics
import Synchronization
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

    public var description: String {
        switch self {
        case .closed: return "the channel is closed"
        case .ring(let s): return "ring failure: \(s)"
        case .sendTimedOut: return "the outgoing ring stayed full: the peer stopped reading"
        case .packetTooLarge(let n): return "a packet of \(n) bytes can never fit in this ring"
        case .tooManyOutstandingRequests: return "too many outstanding requests"
        case .aborted(let why): return "request aborted: \(why)"
        }
    }
}

/// One end of an open channel: the outgoing and incoming rings, the private packet buffer and the way to
/// signal the peer. Host and guest both use it; they differ only in how the peer is signalled and in who
/// drives the receive loop.
///
/// Sending may happen from any thread (serialised by a lock that does not allocate); receiving from one
/// thread at a time.
public final class ChannelEndpoint: @unchecked Sendable {
    public let outgoing: OutgoingRing
    public let incoming: IncomingRing
    public let buffer: PacketBuffer
    private let signalPeer: @Sendable () -> Void
    private let sendLock = Mutex(())
    /// Bumped on every signal from the peer, so a sender blocked on a full ring re-checks.
    private let space = Condition<UInt64>(0)
    private let sendersWaiting = ManagedAtomic<Int>(0)
    private let closedFlag = ManagedAtomic<Bool>(false)

    /// Longest a sender waits for ring space before giving up with ``ChannelError/sendTimedOut``.
    public var sendTimeoutNanoseconds: UInt64 = 30_000_000_000

    public let packetsSent = ManagedAtomic<UInt64>(0)
    public let packetsReceived = ManagedAtomic<UInt64>(0)
    public let bytesSent = ManagedAtomic<UInt64>(0)
    public let bytesReceived = ManagedAtomic<UInt64>(0)
    public let signalsSent = ManagedAtomic<UInt64>(0)

    public init(outgoing: OutgoingRing, incoming: IncomingRing, maxPacketSize: Int,
                signalPeer: @escaping @Sendable () -> Void) {
        self.outgoing = outgoing
        self.incoming = incoming
        self.buffer = PacketBuffer(capacity: maxPacketSize)
        self.signalPeer = signalPeer
    }

    public var isClosed: Bool { closedFlag.load(ordering: .acquiring) }

    /// Marks the endpoint closed and wakes blocked senders.
    public func close() {
        closedFlag.store(true, ordering: .releasing)
        space.update { $0 &+= 1 }
    }

    /// Call on every signal from the peer: wakes senders waiting for space.
    @inline(__always)
    public func peerSignalled() {
        if sendersWaiting.load(ordering: .acquiring) > 0 { space.update { $0 &+= 1 } }
    }

    private func raise() {
        signalsSent.wrappingIncrement(ordering: .relaxed)
        signalPeer()
    }

    /// Sends one packet, waiting for ring space if needed. `header` is extra descriptor data (GPA ranges,
    /// a multiple of 8 bytes) placed between the descriptor and the payload.
    public func send(type: VMBusPacketType, flags: UInt16, transactionID: UInt64,
                     header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer) throws(ChannelError) {
        let needed = PacketDescriptor.wireSize + header.count + ((payload.count + 7) & ~7) + 8
        guard needed < outgoing.dataSize else { throw .packetTooLarge(needed) }
        var deadline: UInt64 = 0
        while true {
            guard !isClosed else { throw .closed }
            let result: Result<Bool, RingError> = sendLock.withLock { _ in
                do throws(RingError) {
                    var batch = try outgoing.beginWrite()
                    try outgoing.append(&batch, type: type, flags: flags, transactionID: transactionID,
                                        header: header, payload: payload)
                    return .success(outgoing.commit(batch))
                } catch {
                    return .failure(error)
                }
            }
            switch result {
            case .success(let signal):
                packetsSent.wrappingIncrement(ordering: .relaxed)
                bytesSent.wrappingIncrement(by: UInt64(payload.count), ordering: .relaxed)
                if signal { raise() }
                return
            case .failure(.full):
                if deadline == 0 { deadline = monotonicNanoseconds() &+ sendTimeoutNanoseconds }
                try waitForSpace(needed: needed, deadline: deadline)
            case .failure(let e):
                throw .ring(String(describing: e))
            }
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

    private func waitForSpace(needed: Int, deadline: UInt64) throws(ChannelError) {
        // Tell the reader how much we need (pending_send_sz); it signals when free space crosses it. Re-check
        // after publishing it, or a reader that drained in between would never signal (PROTOCOL.md §5.2).
        sendersWaiting.wrappingIncrement(ordering: .acquiringAndReleasing)
        defer { sendersWaiting.wrappingDecrement(ordering: .acquiringAndReleasing) }
        outgoing.setPendingSendSize(needed)
        defer { outgoing.clearPendingSendSize() }
        let generation = space.withLock { $0 }
        if let free = try? outgoing.freeBytes(), free > needed { return }
        if monotonicNanoseconds() >= deadline { throw .sendTimedOut }
        // A short timed wait: if the blocked sender is the thread that also drains signals, nobody else will
        // wake it, so it polls.
        _ = space.wait(timeoutNanoseconds: 1_000_000) { $0 != generation ? true : nil }
    }

    /// Drains the incoming ring: calls `handler` for each packet (copied into ``buffer``), commits once per
    /// batch, signals the peer if the reader rule says so, and re-checks after unmasking so no doorbell is
    /// lost. Returns the number of packets handled.
    @discardableResult
    public func drain(_ handler: (ReceivedPacket, PacketBuffer) -> Void) throws(ChannelError) -> Int {
        var handled = 0
        do {
            incoming.maskInterrupts()
            while true {
                var batch = try incoming.beginRead()
                var n = 0
                while let packet = try incoming.next(&batch, into: buffer) {
                    packetsReceived.wrappingIncrement(ordering: .relaxed)
                    bytesReceived.wrappingIncrement(by: UInt64(packet.payloadLength), ordering: .relaxed)
                    handler(packet, buffer)
                    n += 1
                    if n == 64 { break }  // commit in batches so the writer gets space back early
                }
                if incoming.commit(batch) { raise() }
                handled += n
                if n == 64 { continue }
                if !incoming.unmaskInterrupts() { break }
                incoming.maskInterrupts()
            }
        } catch {
            throw .ring(String(describing: error))
        }
        return handled
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
