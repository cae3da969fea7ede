import VMBusTransport

/// Transaction ids for requests that want completions, as Linux's "requestor" hands them out: a fixed slot
/// table, and every completion is checked against the outstanding ids. A completion with an unknown or already
/// completed id is rejected and counted.
///
/// An id is `generation << 32 | (slot + 1)`: 0 stays reserved for unsolicited packets, and the slot's
/// generation advances every time the slot is given back. A host that completes a request late (after the
/// sender timed out and cancelled it) therefore names a generation that no longer exists, even when a new
/// request took the same slot meanwhile: the late completion is rejected instead of being taken for the new
/// request's answer.
///
/// Allocation-free after init. The lock is a pthread mutex (``Condition``) rather than
/// `Synchronization.Mutex`, because ThreadSanitizer does not see the latter's futex and reports every
/// access it guards as a race.
public final class Requestor: Sendable {
    private struct State {
        var contexts: [UInt64]
        var inUse: [Bool]
        /// Generation of each slot's current (or next) id; only the low 32 bits are used.
        var generations: [UInt32]
        var free: [Int]
        var rejected: UInt64 = 0
    }
    private let state: Condition<State>
    public let capacity: Int

    /// Ids carry `slot + 1` in their low 32 bits; far more slots than any device protocol keeps outstanding.
    public static let maximumCapacity = 1 << 16

    /// - Parameter capacity: outstanding requests at most; clamped to 1...``maximumCapacity``.
    public init(capacity: Int) {
        let capacity = min(max(capacity, 1), Self.maximumCapacity)
        self.capacity = capacity
        state = Condition(State(contexts: .init(repeating: 0, count: capacity),
                                inUse: .init(repeating: false, count: capacity),
                                generations: .init(repeating: 0, count: capacity),
                                free: Array((0..<capacity).reversed())))
    }

    /// A new transaction id carrying `context`, or nil when every slot is outstanding.
    public func allocate(context: UInt64) -> UInt64? {
        state.withLock { s in
            guard let slot = s.free.popLast() else { return nil }
            s.inUse[slot] = true
            s.contexts[slot] = context
            return UInt64(s.generations[slot]) << 32 | (UInt64(slot) + 1)
        }
    }

    /// The slot of `transactionID` if it is outstanding now, with this very generation.
    private static func outstandingSlot(_ transactionID: UInt64, in s: State) -> Int? {
        let low = transactionID & 0xFFFF_FFFF
        guard low >= 1, low <= UInt64(s.inUse.count) else { return nil }
        let slot = Int(low - 1)
        guard s.inUse[slot], UInt32(transactionID >> 32) == s.generations[slot] else { return nil }
        return slot
    }

    private static func release(_ slot: Int, in s: inout State) -> UInt64 {
        s.inUse[slot] = false
        s.generations[slot] &+= 1
        s.free.append(slot)
        return s.contexts[slot]
    }

    /// The context of outstanding `transactionID`, which is released; nil (and counted) if it is not
    /// outstanding.
    public func complete(_ transactionID: UInt64) -> UInt64? {
        state.withLock { s in
            guard let slot = Self.outstandingSlot(transactionID, in: s) else {
                s.rejected &+= 1
                return nil
            }
            return Self.release(slot, in: &s)
        }
    }

    /// Releases outstanding `transactionID` because its sender gave up waiting; a late completion for it is then
    /// rejected like any unknown id, even once the slot serves another request. Returns its context, or nil
    /// (not counted) if it was not outstanding.
    @discardableResult
    public func cancel(_ transactionID: UInt64) -> UInt64? {
        state.withLock { s in
            guard let slot = Self.outstandingSlot(transactionID, in: s) else { return nil }
            return Self.release(slot, in: &s)
        }
    }

    /// Releases every outstanding id and returns their contexts (the channel is going away).
    public func cancelAll() -> [UInt64] {
        state.withLock { s in
            var out: [UInt64] = []
            for slot in 0..<s.inUse.count where s.inUse[slot] {
                out.append(Self.release(slot, in: &s))
            }
            return out
        }
    }

    /// Completions refused because their id was unknown, repeated or of an older generation.
    public var rejectedCompletions: UInt64 { state.withLock { $0.rejected } }
    public var outstanding: Int { state.withLock { s in s.inUse.count - s.free.count } }
}
