import DequeModule

/// A bounded FIFO between threads. `push` refuses (returns false) when full, so a flooding peer can never make
/// us queue unbounded memory; the caller counts the drop.
public final class BlockingQueue<Element: Sendable>: Sendable {
    private struct State { var items = Deque<Element>(); var closed = false }
    private let state = Condition(State())
    public let capacity: Int

    public init(capacity: Int) { self.capacity = capacity }

    /// Queues `e` for one popper (wakes one waiting thread, not all).
    @discardableResult
    public func push(_ e: Element) -> Bool {
        state.updateWakingOne { s in
            guard !s.closed, s.items.count < capacity else { return false }
            s.items.append(e)
            return true
        }
    }

    /// Next element, or nil when closed and drained, or on timeout.
    public func pop(timeoutNanoseconds: UInt64? = nil) -> Element? {
        let r: Element?? = state.wait(timeoutNanoseconds: timeoutNanoseconds) { s -> Element?? in
            if let e = s.items.popFirst() { return .some(e) }
            return s.closed ? .some(nil) : nil
        }
        return r ?? nil
    }

    public func tryPop() -> Element? { state.withLock { $0.items.popFirst() } }

    /// Wakes all waiters; later pushes are refused.
    public func close() { state.update { $0.closed = true } }
    public var isClosed: Bool { state.withLock { $0.closed } }
    public var count: Int { state.withLock { $0.items.count } }
}
