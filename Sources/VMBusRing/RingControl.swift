import Atomics

#if _endian(big)
#error("VMBus rings are little-endian; the control words are accessed natively")
#endif

/// The control page at the start of every ring (`struct hv_ring_buffer`, PROTOCOL.md §5.1).
///
/// | Field             | Offset | Written by |
/// |-------------------|--------|------------|
/// | `write_index`     | 0      | writer     |
/// | `read_index`      | 4      | reader     |
/// | `interrupt_mask`  | 8      | reader     |
/// | `pending_send_sz` | 12     | writer     |
/// | `feature_bits`    | 64     | writer (Linux sets it on both rings) |
///
/// The data area starts 4096 bytes after the control page. Every word is reached through an `UnsafeAtomic`;
/// callers name the ordering of every access. The mapping must outlive this value (``RingMemory`` keeps its
/// owner alive).
struct RingControl: @unchecked Sendable {
    /// Byte offsets of the control words, as in Linux `struct hv_ring_buffer`.
    enum Offset {
        static let writeIndex = 0
        static let readIndex = 4
        static let interruptMask = 8
        static let pendingSendSize = 12
        static let featureBits = 64
    }

    /// `feature_bits` bit 0 (`feat_pending_send_sz`): the writer of this ring understands `pending_send_sz`.
    static let featurePendingSendSize: UInt32 = 1

    let writeIndex: UnsafeAtomic<UInt32>
    let readIndex: UnsafeAtomic<UInt32>
    let interruptMask: UnsafeAtomic<UInt32>
    let pendingSendSize: UnsafeAtomic<UInt32>
    let featureBits: UnsafeAtomic<UInt32>

    init(page: UnsafeMutableRawPointer) {
        func word(_ offset: Int) -> UnsafeAtomic<UInt32> {
            UnsafeAtomic<UInt32>(at: (page + offset).bindMemory(to: UInt32.AtomicRepresentation.self, capacity: 1))
        }
        writeIndex = word(Offset.writeIndex)
        readIndex = word(Offset.readIndex)
        interruptMask = word(Offset.interruptMask)
        pendingSendSize = word(Offset.pendingSendSize)
        featureBits = word(Offset.featureBits)
    }
}

/// A full (sequentially consistent) fence: no load or store after it is performed before any load or store
/// before it. Each call site says which rule of PROTOCOL.md §5.2/§5.3 needs the store-to-load ordering.
@inline(__always)
func fullBarrier() {
    atomicMemoryFence(ordering: .sequentiallyConsistent)
}
