import Atomics

/// The SynIC event-flags bitmap of one SINT (`union hv_synic_event_flags`): 2048 bits in 256 bytes of a guest
/// page. The host sets bit *relid* to interrupt that channel; the guest's interrupt handler takes and clears
/// the bits it finds, as Linux's `vmbus_chan_sched` does.
///
/// Lives in guest memory, so host and guest (even in two processes) touch the same words, always atomically.
public struct SynICEventFlags: @unchecked Sendable {
    /// `HV_EVENT_FLAGS_COUNT`: flags per SINT.
    public static let flagCount = 2048
    /// Bytes per SINT in the event-flags page.
    public static let bytesPerSINT = 256

    private let words: UnsafeMutablePointer<UnsafeAtomic<UInt64>.Storage>
    private let memory: GuestMemory  // keeps the mapping alive

    /// The flags of `sint` in the event-flags page `pfn` of `memory`, which becomes reserved
    /// (``GuestMemory/reserve(pfn:)``).
    public init(memory: GuestMemory, pagePFN pfn: UInt64, sint: Int) throws(MemoryError) {
        precondition(sint >= 0 && sint < 16, "SINT out of range")
        let page = try memory.pagePointer(pfn)
        // The host writes interrupt bits here: no GPADL or ring may name this page.
        memory.reserve(pfn: pfn)
        self.memory = memory
        self.words = (page + sint * Self.bytesPerSINT)
            .bindMemory(to: UnsafeAtomic<UInt64>.Storage.self, capacity: Self.bytesPerSINT / 8)
    }

    /// Sets flag `index`; returns false if it is out of range (a relid the bitmap cannot carry).
    @discardableResult
    public func set(_ index: UInt32) -> Bool {
        guard index < Self.flagCount else { return false }
        // Release: ring writes made before the interrupt must be visible to the guest that sees the bit.
        _ = UnsafeAtomic<UInt64>(at: words + Int(index / 64))
            .loadThenBitwiseOr(with: 1 << UInt64(index % 64), ordering: .releasing)
        return true
    }

    /// Takes all set flags (clearing them) and calls `body` with each index, lowest first.
    public func drain(_ body: (UInt32) -> Void) {
        for w in 0..<(Self.flagCount / 64) {
            let atomic = UnsafeAtomic<UInt64>(at: words + w)
            // A relaxed peek first: most words are zero, and an exchange would dirty their cache lines.
            guard atomic.load(ordering: .relaxed) != 0 else { continue }
            var bits = atomic.exchange(0, ordering: .acquiring)
            while bits != 0 {
                let b = bits.trailingZeroBitCount
                bits &= bits - 1
                body(UInt32(w * 64 + b))
            }
        }
    }

    /// Whether any flag is set (a relaxed peek, for polling before blocking).
    public func anySet() -> Bool {
        for w in 0..<(Self.flagCount / 64) where UnsafeAtomic<UInt64>(at: words + w).load(ordering: .relaxed) != 0 {
            return true
        }
        return false
    }
}
