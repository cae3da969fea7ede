import Atomics
import VMBusGuest

/// A submitting thread that reaps its own completions (``StorVSCController/beginPolling()``): while it lives,
/// the controller's channels keep the host's interrupts masked once drained, so a completion costs neither a
/// signal nor a wake-up of the guest's interrupt thread; ``poll()`` drains them on the calling thread and
/// request handlers run there. As Linux's `blk_poll`/io_uring's IOPOLL, it pays off while I/O is in flight and
/// the caller would otherwise spin or yield; a thread about to sleep calls ``end()`` first.
///
/// The channels are the ones open at ``StorVSCController/beginPolling()``: a sub-channel opened later keeps
/// interrupt delivery. ``end()`` (or the last reference going away) unmasks every one of them.
public final class StorVSCCompletionPoller: @unchecked Sendable {
    private let channels: [GuestChannel]
    private let ended = ManagedAtomic<Bool>(false)

    init(channels: [GuestChannel]) {
        self.channels = channels
        for c in channels { c.beginPolling() }
    }

    deinit { end() }

    /// Delivers the completions waiting on every channel; returns how many there were.
    @discardableResult
    public func poll() -> Int {
        guard !ended.load(ordering: .relaxed) else { return 0 }
        var handled = 0
        for c in channels { handled += c.poll() }
        return handled
    }

    /// Leaves polling mode: interrupts come back (and whatever arrived meanwhile is delivered). Idempotent.
    public func end() {
        guard !ended.exchange(true, ordering: .acquiringAndReleasing) else { return }
        for c in channels { c.endPolling() }
    }
}
