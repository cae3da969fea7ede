import VMBusProtocol
import VMBusWire

/// A batch of packets being read: the indices validated by ``IncomingRing/beginRead()`` and how far the batch
/// has read. The writer sees the space again only after ``IncomingRing/commit(_:)``; dropping the batch
/// un-reads its packets.
public struct IncomingBatch: Sendable {
    /// `read_index` when the batch began.
    public let startOffset: Int
    /// Where the next packet of this batch starts.
    public internal(set) var nextOffset: Int
    /// The writer's `write_index` as last observed (validated).
    var cachedWriteIndex: Int
    /// Packets read so far.
    public internal(set) var packetCount: Int = 0

    /// Whether nothing has been read.
    public var isEmpty: Bool { packetCount == 0 }
}

/// The reading end of one ring (PROTOCOL.md §5.3). Use it from one thread at a time.
///
/// ``beginRead()`` snapshots and validates the indices; ``next(_:into:)`` copies one packet at a time into a
/// private ``PacketBuffer`` (reading `len8`/`offset8` once and validating them before anything else is
/// copied); ``commit(_:)`` frees the space with one `read_index` store and says whether the writer waits for
/// that space. Shared memory is never written except for `read_index` and `interrupt_mask`.
public final class IncomingRing: @unchecked Sendable {
    public let memory: RingMemory
    public var dataSize: Int { memory.dataSize }
    /// Set when the peer corrupted the ring; every later call throws it.
    // Exclusivity is not checked at run time on this state (nor on OutgoingRing's, PacketBuffer's): a ring end is
    // used from one thread at a time by contract, and the dynamic check cost more than the rest of a 64-byte
    // packet's path (swift_beginAccess and its TLS lookup; Scripts/callgrind-ring). Peer-written values are
    // validated as before; this concerns only our own accesses.
    @exclusivity(unchecked) public private(set) var corruption: RingCorruption?
    public var isCorrupt: Bool { corruption != nil }

    /// Our `read_index` as we last stored it; -1 until the first read adopts the shared value.
    @exclusivity(unchecked) private var ownReadIndex = -1
    /// The writer's `write_index` as we last saw it, -1 before the first look.
    @exclusivity(unchecked) private var lastWriteIndex = -1

    public init(memory: RingMemory) {
        self.memory = memory
    }

    // MARK: Indices

    /// Records the first corruption seen (the ring stays in that state) and returns the error to throw.
    @inline(__always)
    private func fail(_ c: RingCorruption) -> RingError {
        let first = corruption ?? c
        corruption = first
        return .corrupt(first)
    }

    @inline(__always)
    private func validWriteIndex(_ v: UInt32) throws(RingError) -> Int {
        guard isValidRingIndex(v, dataSize: dataSize) else { throw fail(.writeIndex(v, dataSize: dataSize)) }
        return Int(v)
    }

    @inline(__always)
    private func validReadIndex(_ v: UInt32) throws(RingError) -> Int {
        guard isValidRingIndex(v, dataSize: dataSize) else { throw fail(.readIndex(v, dataSize: dataSize)) }
        return Int(v)
    }

    /// The writer's `write_index`, validated. Acquire pairs with the writer's releasing store (§5.2 step 3):
    /// the packet bytes before that index are visible once we see it. It may only move forward: the bytes it
    /// publishes beyond our `read_index` never shrink until we commit, so a writer that moved it back (to make
    /// us read old packets again) is caught.
    @inline(__always)
    private func loadWriteIndex() throws(RingError) -> Int {
        let raw = memory.control.writeIndex.load(ordering: .acquiring)
        let write = try validWriteIndex(raw)
        if lastWriteIndex >= 0, ownReadIndex >= 0,
           used(write: write, read: ownReadIndex) < used(write: lastWriteIndex, read: ownReadIndex) {
            throw fail(.writeIndexRewound(raw, previous: lastWriteIndex))
        }
        lastWriteIndex = write
        return write
    }

    /// Our own `read_index`, from our private copy (Linux keeps `priv_read_index` for the same reason): the
    /// copy in shared memory is only published for the writer. It is adopted once, from shared memory, on the
    /// first read (the ring's owner initialised it before the channel opened); afterwards a shared value that
    /// differs from ours means the peer rewrote it, and the ring is corrupt: trusting it would make us read
    /// old packets again.
    @inline(__always)
    private func loadReadIndex() throws(RingError) -> Int {
        let raw = memory.control.readIndex.load(ordering: .relaxed)
        guard ownReadIndex >= 0 else {
            ownReadIndex = try validReadIndex(raw)
            return ownReadIndex
        }
        guard raw == UInt32(truncatingIfNeeded: ownReadIndex) else {
            throw fail(.ownIndexChanged(field: "read_index", value: raw, expected: ownReadIndex))
        }
        return ownReadIndex
    }

    @inline(__always)
    private func used(write: Int, read: Int) -> Int {
        write >= read ? write - read : dataSize - (read - write)
    }

    /// Bytes the writer has published and we have not committed as read.
    public var bytesAvailable: Int {
        get throws(RingError) {
            if let c = corruption { throw .corrupt(c) }
            let read = try loadReadIndex()
            return used(write: try loadWriteIndex(), read: read)
        }
    }

    /// Whether no packet is waiting.
    public func isEmpty() throws(RingError) -> Bool {
        try bytesAvailable == 0
    }

    // MARK: Two-phase read

    /// Starts a batch at the current `read_index` (§5.3 step 1; both indices read and validated).
    public func beginRead() throws(RingError) -> IncomingBatch {
        if let c = corruption { throw .corrupt(c) }
        let read = try loadReadIndex()
        let write = try loadWriteIndex()
        return IncomingBatch(startOffset: read, nextOffset: read, cachedWriteIndex: write)
    }

    /// Copies the next packet of `batch` into `buffer`, or returns nil when the writer has published no more.
    ///
    /// The descriptor is copied first and its `len8`/`offset8` are taken from that private copy only, so the
    /// writer cannot change them between check and use (Linux `hv_pkt_iter_first`). It must pass
    /// `PacketDescriptor.validate()` and the packet plus its trailer must fit in the published bytes; then the
    /// rest of the packet is copied. The trailer is skipped without being checked (Linux ignores it too).
    ///
    /// - Throws: ``RingError/corrupt(_:)`` for an invalid index or descriptor (the ring stays corrupt);
    ///   ``RingError/tooLarge(_:)`` when the packet is longer than `buffer.capacity`: nothing is consumed and
    ///   the ring stays usable, so the caller may retry with a larger buffer or close the channel.
    public func next(_ batch: inout IncomingBatch, into buffer: PacketBuffer) throws(RingError) -> ReceivedPacket? {
        if let c = corruption { throw .corrupt(c) }
        let m = memory
        let start = batch.nextOffset
        var available = used(write: batch.cachedWriteIndex, read: start)
        if available == 0 {
            // The writer may have published more since the batch began.
            batch.cachedWriteIndex = try loadWriteIndex()
            available = used(write: batch.cachedWriteIndex, read: start)
            if available == 0 { return nil }
        }
        let descriptorSize = PacketDescriptor.wireSize
        guard available >= descriptorSize + OutgoingRing.trailerSize else {
            throw fail(.truncatedPacket(offset: start, available: available))
        }
        // One read of each descriptor word from shared memory (the same single copy as a memcpy of the 16
        // bytes, without the call); everything below uses these private values.
        let w0 = m.loadWord(at: start)
        let w1 = m.loadWord(at: m.advance(start, by: 8))
        let descriptor = PacketDescriptor(
            type: VMBusPacketType(rawValue: UInt16(truncatingIfNeeded: w0)),
            offset8: UInt16(truncatingIfNeeded: w0 >> 16),
            len8: UInt16(truncatingIfNeeded: w0 >> 32),
            flags: UInt16(truncatingIfNeeded: w0 >> 48),
            transactionID: w1)
        do throws(WireError) {
            try descriptor.validate()
        } catch {
            throw fail(.descriptor(error, at: start))
        }
        let length = descriptor.totalLength
        guard length + OutgoingRing.trailerSize <= available else {
            throw fail(.packetExceedsAvailable(offset: start, length: length, available: available))
        }
        return try buffer.fill { (raw) throws(RingError) -> ReceivedPacket in
            guard length <= raw.count else { throw .tooLarge(length) }
            let dst = raw.baseAddress!
            dst.storeBytes(of: w0.littleEndian, as: UInt64.self)
            dst.storeBytes(of: w1.littleEndian, toByteOffset: 8, as: UInt64.self)
            if length > descriptorSize {
                m.copyOut(from: m.advance(start, by: descriptorSize), into: dst + descriptorSize,
                          count: length - descriptorSize)
            }
            batch.nextOffset = m.advance(start, by: length + OutgoingRing.trailerSize)
            batch.packetCount += 1
            return ReceivedPacket(
                descriptor: descriptor, length: length, payloadOffset: descriptor.payloadOffset,
                payloadLength: length - descriptor.payloadOffset, generation: buffer.generation)
        }
    }

    /// Frees the space of every packet read in `batch` and returns whether the writer must be signalled.
    ///
    /// The writer is signalled only if it asked (this ring's `feature_bits` bit 0 set and `pending_send_sz`,
    /// low 3 bits masked, non-zero) and this commit made free space cross that threshold:
    /// `before <= pending < after` (Linux `hv_pkt_iter_close`; OpenVMM `commit_read`). `interrupt_mask` plays no
    /// part here (§5.3 step 5). An empty batch commits nothing and returns false. On a corrupt ring the packets
    /// read before the corruption are still committed (they were delivered), but the writer is not signalled.
    public func commit(_ batch: IncomingBatch) -> Bool {
        guard batch.nextOffset != batch.startOffset else { return false }
        let c = memory.control
        // §5.3 step 2: releasing store, so every copy out of the freed space is complete before the writer can
        // see the space as free and overwrite it (Linux `virt_rmb()` before its plain store). The packets of the
        // batch were valid and handed out, so they are consumed even if the ring broke after them: the offset
        // is ours and was validated, and a later reader must not see them again.
        c.readIndex.store(UInt32(batch.nextOffset), ordering: .releasing)
        ownReadIndex = batch.nextOffset
        guard corruption == nil else { return false }
        // §5.3 step 3: a writer that never set the feature bit does not expect space-available signals.
        guard c.featureBits.load(ordering: .relaxed) & RingControl.featurePendingSendSize != 0 else { return false }
        // §5.3 step 3: full barrier between publishing read_index and reading pending_send_sz. Otherwise the load
        // could pass the store: the writer sets pending_send_sz, re-checks free space before our store lands, and
        // we read the old zero; nobody signals and the writer waits forever.
        fullBarrier()
        // Some writers store "ring size - 1"; only multiples of 8 are meaningful (OpenVMM masks the low bits).
        let pending = Int(c.pendingSendSize.load(ordering: .relaxed) & ~7)
        guard pending != 0 else { return false }
        // Ordered after the pending_send_sz load by the acquire (Linux `virt_rmb()`).
        let rawWrite = c.writeIndex.load(ordering: .acquiring)
        guard Int(rawWrite) < dataSize, rawWrite & 7 == 0 else {
            _ = fail(.writeIndex(rawWrite, dataSize: dataSize))
            return false
        }
        let write = Int(rawWrite)
        let freeAfter = dataSize - used(write: write, read: batch.nextOffset)
        let bytesRead = used(write: batch.nextOffset, read: batch.startOffset)
        let freeBefore = freeAfter - bytesRead
        // Not enough room before (exactly full counts as not enough), enough now.
        return freeBefore <= pending && freeAfter > pending
    }

    // MARK: Interrupt mask

    /// Sets `interrupt_mask = 1`: "I am draining, do not signal me for new data" (§5.3 step 1). A hint only:
    /// a writer that has already decided to signal may still do so.
    public func maskInterrupts() {
        memory.control.interruptMask.store(1, ordering: .relaxed)
    }

    /// Sets `interrupt_mask = 0` and returns whether data is waiting, in which case the caller must keep reading
    /// instead of sleeping: a writer that published while the mask was set did not signal (§5.3 step 4).
    /// Also returns true on a corrupt ring, so that the caller's next read reports the corruption.
    public func unmaskInterrupts() -> Bool {
        let c = memory.control
        c.interruptMask.store(0, ordering: .relaxed)
        // §5.3 step 4: full barrier between clearing the mask and re-reading write_index. It pairs with the
        // writer's barrier between publishing write_index and reading interrupt_mask (§5.2 step 4): either the
        // writer sees the mask clear and signals, or we see its data here.
        fullBarrier()
        guard corruption == nil else { return true }
        do {
            return try bytesAvailable != 0
        } catch {
            return true
        }
    }
}
