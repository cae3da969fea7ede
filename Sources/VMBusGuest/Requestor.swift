import Synchronization
import VMBusTransport

/// Transaction ids for requests that want completions, as Linux's "requestor" hands them out: a fixed slot
/// table, id = slot + 1 (0 is reserved for unsolicited packets), and every completion is checked against the
/// outstanding ids. A completion with an unknown or already completed id is rejected and counted.
///
/// Allocation-free after init: the data path allocates and completes ids under a lock that does not allocate.
public final class Requestor: Sendable {
    private struct State {
        var contexts: [UInt64]
        var inUse: [Bool]
        var free: [Int]
        var rejected: UInt64 = 0
    }
    private let state: Mutex<State>
    public let capacity: Int

    public init(capacity: Int) {
        precondition(capacity > 0)
        self.capacity = capacity
        state = Mutex(State(contexts: .init(repeating: 0, count: capacity),
                            inUse: .init(repeating: false, count: capacity),
                            free: Array((0..<capacity).reversed())))
    }

    /// A new transaction id carrying `context`, or nil when every slot is outstanding.
    public func allocate(context: UInt64) -> UInt64? {
        state.withLock { s in
            guard let slot = s.free.popLast() else { return nil }
            s.inUse[slot] = true
            s.contexts[slot] = context
            return UInt64(slot) + 1
        }
    }

    /// The context of outstanding `transactionID`, which is released; nil (and counted) if it is not
    /// outstanding.
    public func complete(_ transactionID: UInt64) -> UInt64? {
        state.withLock { s in
            guard transactionID >= 1, transactionID <= UInt64(s.inUse.count), s.inUse[Int(transactionID - 1)] else {
                s.rejected &+= 1
                return nil
            }
            let slot = Int(transactionID - 1)
            s.inUse[slot] = false
            s.free.append(slot)
            return s.contexts[slot]
        }
    }

    /// Releases outstanding `transactionID` because its sender gave up waiting; a late completion for it is then
    /// rejected like any unknown id. Returns its context, or nil (not counted) if it was not outstanding.
    @discardableResult
    public func cancel(_ transactionID: UInt64) -> UInt64? {
        state.withLock { s in
            guard transactionID >= 1, transactionID <= UInt64(s.inUse.count), s.inUse[Int(transactionID - 1)] else {
                return nil
            }
            let slot = Int(transactionID - 1)
            s.inUse[slot] = false
            s.free.append(slot)
            return s.contexts[slot]
        }
    }

    /// Releases every outstanding id and returns their contexts (the channel is going away).
    public func cancelAll() -> [UInt64] {
        state.withLock { s in
            var out: [UInt64] = []
            for slot in 0..<s.inUse.count where s.inUse[slot] {
                s.inUse[slot] = false
                s.free.append(slot)
                out.append(s.contexts[slot])
            }
            return out
        }
    }

    /// Completions refused because their id was unknown or repeated.
    public var rejectedCompletions: UInt64 { state.withLock { $0.rejected } }
    public var outstanding: Int { state.withLock { s in s.inUse.count - s.free.count } }
}
