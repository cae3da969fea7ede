import Atomics
import VMBusProtocol

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
    /// `feature_bits` bit 0 (`feat_pending_send_sz`): the writer of this ring understands `pending_send_sz`.
    static let featurePendingSendSize: UInt32 = RingControlLayout.featurePendingSendSize

    let writeIndex: UnsafeAtomic<UInt32>
    let readIndex: UnsafeAtomic<UInt32>
    let interruptMask: UnsafeAtomic<UInt32>
    let pendingSendSize: UnsafeAtomic<UInt32>
    let featureBits: UnsafeAtomic<UInt32>

    init(page: UnsafeMutableRawPointer) {
        func word(_ offset: Int) -> UnsafeAtomic<UInt32> {
            UnsafeAtomic<UInt32>(at: (page + offset).bindMemory(to: UInt32.AtomicRepresentation.self, capacity: 1))
        }
        // Offsets from the one declaration of `struct hv_ring_buffer` (VMBusProtocol); the layout tests check the
        // raw bytes against Linux's numbers.
        writeIndex = word(RingControlLayout.writeIndexOffset)
        readIndex = word(RingControlLayout.readIndexOffset)
        interruptMask = word(RingControlLayout.interruptMaskOffset)
        pendingSendSize = word(RingControlLayout.pendingSendSizeOffset)
        featureBits = word(RingControlLayout.featureBitsOffset)
    }
}

/// A full (sequentially consistent) fence: no load or store after it is performed before any load or store
/// before it. Each call site says which rule of PROTOCOL.md §5.2/§5.3 needs the store-to-load ordering.
@inline(__always)
func fullBarrier() {
    atomicMemoryFence(ordering: .sequentiallyConsistent)
}

/// The five control words of a ring at one moment (relaxed loads; for logs, inspection and tests, never for
/// decisions).
public struct RingControlSnapshot: Equatable, Sendable, CustomStringConvertible {
    public var writeIndex: UInt32
    public var readIndex: UInt32
    public var interruptMask: UInt32
    public var pendingSendSize: UInt32
    public var featureBits: UInt32

    public var description: String {
        "write_index \(writeIndex) read_index \(readIndex) interrupt_mask \(interruptMask) "
            + "pending_send_sz \(pendingSendSize) feature_bits 0x\(String(featureBits, radix: 16))"
    }
}

extension RingMemory {
    /// The control words as they are now (diagnostics only: the peer may change them at any time).
    public func controlSnapshot() -> RingControlSnapshot {
        RingControlSnapshot(
            writeIndex: control.writeIndex.load(ordering: .relaxed),
            readIndex: control.readIndex.load(ordering: .relaxed),
            interruptMask: control.interruptMask.load(ordering: .relaxed),
            pendingSendSize: control.pendingSendSize.load(ordering: .relaxed),
            featureBits: control.featureBits.load(ordering: .relaxed))
    }
}

/// The rule every ring index read from shared memory must pass before use (PROTOCOL.md §13): inside the data
/// area and a multiple of 8. Both ring directions check their indices with this one predicate.
@inline(__always)
func isValidRingIndex(_ v: UInt32, dataSize: Int) -> Bool {
    Int(v) < dataSize && v & 7 == 0
}
