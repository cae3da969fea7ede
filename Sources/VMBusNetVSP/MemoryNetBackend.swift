import VMBusTransport

/// A backend that keeps what the guest sends in memory, for tests and benchmarks: frames queue up (at most
/// ``capacity``; more are counted and dropped) until ``take(_:timeoutNanoseconds:)`` collects them. Frames go
/// to the guest through ``port`` from the caller's own thread.
public final class MemoryNetBackend: NetBackend, @unchecked Sendable {
    public let capacity: Int
    public let acceptsOffloads: Bool
    private struct State {
        var frames: [[UInt8]] = []
        /// What each frame in ``frames`` was handed over with (a GSO backend's view).
        var offloads: [FrameOffload?] = []
        var dropped = 0
        var port: (any NetPort)?
        var attachCount = 0
        var spaceSignals = 0
    }
    private let state = Condition(State())

    /// `acceptsOffloads`: take partial checksums and whole LSO segments, as a TAP does (see
    /// ``takeWithOffloads(_:timeoutNanoseconds:)``).
    public init(capacity: Int = 1 << 16, acceptsOffloads: Bool = false) {
        self.capacity = capacity
        self.acceptsOffloads = acceptsOffloads
    }

    /// The port of the NIC while it is attached.
    public var port: (any NetPort)? { state.withLock { $0.port } }
    public var droppedFrames: Int { state.withLock { $0.dropped } }
    public var attachCount: Int { state.withLock { $0.attachCount } }
    public var queuedFrames: Int { state.withLock { $0.frames.count } }

    public func attached(_ port: any NetPort) {
        state.update { s in
            s.port = port
            s.attachCount += 1
        }
    }

    public func detached(_ port: any NetPort) {
        state.update { s in if s.port === port { s.port = nil } }
    }

    public func transmit(_ frame: UnsafeRawBufferPointer, from port: any NetPort) {
        keep(frame, nil)
    }

    public func transmit(_ frame: UnsafeRawBufferPointer, offload: FrameOffload, from port: any NetPort) {
        keep(frame, offload)
    }

    private func keep(_ frame: UnsafeRawBufferPointer, _ offload: FrameOffload?) {
        let copy = [UInt8](frame)
        state.update { s in
            guard s.frames.count < capacity else { return s.dropped += 1 }
            s.frames.append(copy)
            s.offloads.append(offload)
        }
    }

    public func receiveSpaceAvailable(_ port: any NetPort) {
        state.update { $0.spaceSignals &+= 1 }
    }

    /// Waits until ``port`` is set.
    public func waitForPort(timeoutNanoseconds: UInt64 = 10_000_000_000) -> (any NetPort)? {
        state.wait(timeoutNanoseconds: timeoutNanoseconds) { $0.port }
    }

    /// Takes up to `count` frames, waiting up to the timeout for the first `count` to arrive; returns what
    /// there is then.
    public func take(_ count: Int, timeoutNanoseconds: UInt64 = 10_000_000_000) -> [[UInt8]] {
        takeWithOffloads(count, timeoutNanoseconds: timeoutNanoseconds).map(\.frame)
    }

    /// ``take(_:timeoutNanoseconds:)`` with what each frame was left to do.
    public func takeWithOffloads(_ count: Int, timeoutNanoseconds: UInt64 = 10_000_000_000) -> [(frame: [UInt8], offload: FrameOffload?)] {
        _ = state.wait(timeoutNanoseconds: timeoutNanoseconds) { $0.frames.count >= count ? true : nil }
        return state.withLock { s in
            let n = min(count, s.frames.count)
            defer {
                s.frames.removeFirst(n)
                s.offloads.removeFirst(n)
            }
            return (0..<n).map { (s.frames[$0], s.offloads[$0]) }
        }
    }

    /// Waits (up to the timeout) for receive space after a busy delivery; returns false on timeout.
    public func waitForSpace(after generation: Int, timeoutNanoseconds: UInt64) -> Bool {
        state.wait(timeoutNanoseconds: timeoutNanoseconds) { $0.spaceSignals != generation ? true : nil } != nil
    }

    /// The count of space signals so far (pair with ``waitForSpace(after:timeoutNanoseconds:)``).
    public var spaceGeneration: Int { state.withLock { $0.spaceSignals } }
}
