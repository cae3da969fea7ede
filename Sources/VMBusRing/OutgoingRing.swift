import VMBusProtocol

/// A batch of packets being written: the indices validated by ``OutgoingRing/beginWrite()`` and how far the
/// batch has written. Nothing is visible to the reader until ``OutgoingRing/commit(_:)``; dropping the batch
/// reverts every packet appended to it.
public struct OutgoingBatch: Sendable {
    /// `write_index` when the batch began: where its first packet goes.
    public let startOffset: Int
    /// Where the next packet of this batch goes.
    public internal(set) var nextOffset: Int
    /// The reader's `read_index` as last observed (validated).
    var cachedReadIndex: Int
    /// Packets appended so far.
    public internal(set) var packetCount: Int = 0

    /// Whether nothing has been appended.
    public var isEmpty: Bool { packetCount == 0 }
}

/// The writing end of one ring (PROTOCOL.md §5.2). Use it from one thread at a time.
///
/// Writing is two-phase: ``beginWrite()`` snapshots and validates the indices, ``append(_:type:flags:transactionID:header:payload:)``
/// copies packets in, ``commit(_:)`` publishes them all with one `write_index` store and says whether the reader
/// must be signalled. The ring never signals; the channel does, once per batch.
///
/// Every packet is laid out as Linux writes it: the 16-byte descriptor, an optional type-specific header
/// (a multiple of 8), the payload, zero padding to 8 bytes, then the 8-byte trailer whose high 32 bits hold the
/// offset where the packet starts. The ring is never filled completely: a packet needs strictly more free
/// bytes than its size (Linux `hv_ringbuffer_write` fails when `avail <= total`).
public final class OutgoingRing: @unchecked Sendable {
    public let memory: RingMemory
    /// Bytes in the data area.
    public var dataSize: Int { memory.dataSize }
    /// Set when the peer corrupted the ring; every later call throws it.
    // Not checked for exclusivity at run time: see IncomingRing.corruption.
    @exclusivity(unchecked) public private(set) var corruption: RingCorruption?
    public var isCorrupt: Bool { corruption != nil }

    /// Size of the trailer after every packet (`u64` holding the packet's start offset in the high half).
    public static let trailerSize = RingControlLayout.packetTrailerSize

    /// Our `write_index` as we last stored it; -1 until the first write adopts the shared value.
    @exclusivity(unchecked) private var ownWriteIndex = -1

    public init(memory: RingMemory) {
        self.memory = memory
    }

    /// Resets a control page the way Linux does when it creates a ring (`hv_ringbuffer_init`): both indices,
    /// the interrupt mask and `pending_send_sz` zero, `feature_bits` = 1 (the writer understands
    /// `pending_send_sz`). Linux does this for both rings of a channel; so may we. Only valid while no peer
    /// uses the ring.
    public static func initializeControl(_ memory: RingMemory) {
        let c = memory.control
        c.writeIndex.store(0, ordering: .relaxed)
        c.readIndex.store(0, ordering: .relaxed)
        c.interruptMask.store(0, ordering: .relaxed)
        c.pendingSendSize.store(0, ordering: .relaxed)
        c.featureBits.store(RingControl.featurePendingSendSize, ordering: .relaxed)
        // The peer is not attached yet; the channel's handshake (a message or a syscall) orders these stores.
        fullBarrier()
    }

    /// Ring bytes a packet occupies: descriptor, header, payload padded to 8, and the trailer.
    @inline(__always)
    public static func bytesNeeded(headerCount: Int = 0, payloadCount: Int) -> Int {
        ((PacketDescriptor.wireSize + headerCount + payloadCount + 7) & ~7) + trailerSize
    }

    /// The largest value of ``bytesNeeded(headerCount:payloadCount:)`` this ring can ever take (it needs one
    /// spare 8-byte slot so that full and empty differ). `len8` being 16 bits caps it further for huge rings.
    public var maximumPacketBytes: Int {
        min(dataSize - 8, Int(UInt16.max) * 8 + Self.trailerSize)
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

    /// The reader's `read_index`, validated. Acquire pairs with the reader's releasing store
    /// (§5.3 step 2): its copies out of the space it frees happen before we overwrite that space.
    @inline(__always)
    private func loadReadIndex() throws(RingError) -> Int {
        try validReadIndex(memory.control.readIndex.load(ordering: .acquiring))
    }

    /// Our own `write_index`, from our private copy (as Linux's writer trusts only its own): the copy in shared
    /// memory is only published for the reader. Adopted once, on the first write, from shared memory (the ring's
    /// owner initialised it); afterwards a shared value that differs means the peer rewrote it, which would make
    /// us overwrite packets it has not read, or publish garbage: the ring is corrupt.
    @inline(__always)
    private func loadWriteIndex() throws(RingError) -> Int {
        let raw = memory.control.writeIndex.load(ordering: .relaxed)
        guard ownWriteIndex >= 0 else {
            ownWriteIndex = try validWriteIndex(raw)
            return ownWriteIndex
        }
        guard raw == UInt32(truncatingIfNeeded: ownWriteIndex) else {
            throw fail(.ownIndexChanged(field: "write_index", value: raw, expected: ownWriteIndex))
        }
        return ownWriteIndex
    }

    /// Free bytes between `write` and `read`: Linux `hv_get_bytes_to_write`. Equal indices mean empty.
    @inline(__always)
    private func free(write: Int, read: Int) -> Int {
        write >= read ? dataSize - (write - read) : read - write
    }

    /// Free bytes in the ring now (Linux `hv_get_bytes_to_write`). A packet of `n` ring bytes fits only if this
    /// is greater than `n`.
    public func freeBytes() throws(RingError) -> Int {
        if let c = corruption { throw .corrupt(c) }
        let write = try loadWriteIndex()
        return free(write: write, read: try loadReadIndex())
    }

    // MARK: Two-phase write

    /// Starts a batch at the current `write_index` (§5.2 step 1: both indices read and validated).
    /// - Throws: ``RingError/corrupt(_:)`` if either index is out of range or not a multiple of 8.
    public func beginWrite() throws(RingError) -> OutgoingBatch {
        if let c = corruption { throw .corrupt(c) }
        let write = try loadWriteIndex()
        let read = try loadReadIndex()
        return OutgoingBatch(startOffset: write, nextOffset: write, cachedReadIndex: read)
    }

    /// Appends one packet to `batch` (§5.2 steps 2 and 3, without publishing).
    ///
    /// The descriptor is built here: `offset8 = (16 + header.count) / 8`, `len8 = ALIGN(16 + header + payload, 8) / 8`,
    /// zero padding, then the trailer. `header` is the type-specific part between descriptor and payload
    /// (transfer-page or GPA-direct ranges) and must be a multiple of 8 bytes.
    ///
    /// - Throws: ``RingError/full(needed:available:)`` when free space is not greater than the packet (the batch
    ///   is unchanged: commit what it holds, or wait); ``RingError/tooLarge(_:)`` when the packet can never fit;
    ///   ``RingError/corrupt(_:)`` if the reader's index is invalid.
    @inline(__always)
    public func append(
        _ batch: inout OutgoingBatch, type: VMBusPacketType, flags: UInt16, transactionID: UInt64,
        header: UnsafeRawBufferPointer, payload: UnsafeRawBufferPointer
    ) throws(RingError) {
        try append(&batch, type: type, flags: flags, transactionID: transactionID, header: header,
                   payloadParts: (payload, UnsafeRawBufferPointer(start: nil, count: 0)))
    }

    /// Appends an in-band style packet (no type-specific header); see ``append(_:type:flags:transactionID:header:payload:)``.
    @inline(__always)
    public func append(
        _ batch: inout OutgoingBatch, type: VMBusPacketType, flags: UInt16, transactionID: UInt64,
        payload: UnsafeRawBufferPointer
    ) throws(RingError) {
        try append(&batch, type: type, flags: flags, transactionID: transactionID,
                   header: UnsafeRawBufferPointer(start: nil, count: 0),
                   payloadParts: (payload, UnsafeRawBufferPointer(start: nil, count: 0)))
    }

    /// Appends a packet whose payload is the concatenation of two parts (for example a protocol header and
    /// a data buffer), copied straight into the ring without an intermediate buffer.
    public func append(
        _ batch: inout OutgoingBatch, type: VMBusPacketType, flags: UInt16, transactionID: UInt64,
        header: UnsafeRawBufferPointer, payloadParts: (UnsafeRawBufferPointer, UnsafeRawBufferPointer)
    ) throws(RingError) {
        if let c = corruption { throw .corrupt(c) }
        precondition(header.count & 7 == 0, "the type-specific header must be a multiple of 8 bytes")
        let payloadCount = payloadParts.0.count + payloadParts.1.count
        let unpadded = PacketDescriptor.wireSize + header.count + payloadCount
        let packetLength = (unpadded + 7) & ~7
        let total = packetLength + Self.trailerSize
        guard total <= maximumPacketBytes else { throw .tooLarge(total) }

        let start = batch.nextOffset
        var available = free(write: start, read: batch.cachedReadIndex)
        if available <= total {
            // Maybe the reader made room since we last looked (§5.2 step 2).
            batch.cachedReadIndex = try loadReadIndex()
            available = free(write: start, read: batch.cachedReadIndex)
            guard available > total else { throw .full(needed: total, available: available) }
        }

        let m = memory
        // Descriptor (`struct vmpacket_descriptor`), as two little-endian words.
        let offset8 = UInt64((PacketDescriptor.wireSize + header.count) / 8)
        let len8 = UInt64(packetLength / 8)
        let layout = PacketLayout(
            descriptor: UInt64(type.rawValue) | offset8 << 16 | len8 << 32 | UInt64(flags) << 48,
            transactionID: transactionID, header: header, payloadParts: payloadParts, packetLength: packetLength,
            start: start)
        if let p = m.contiguousRange(start, count: total) {
            // The common case: the whole packet in one range (contiguous memory, no wrap); plain pointer stores.
            var bytes = ContiguousPacketBytes(base: p)
            layout.write(into: &bytes)
        } else {
            var bytes = RingPacketBytes(memory: m, start: start)
            layout.write(into: &bytes)
        }
        batch.nextOffset = m.advance(start, by: total)
        batch.packetCount += 1
    }

    /// Publishes every packet of `batch` and returns whether the reader must be signalled.
    ///
    /// Signal only on an empty-to-non-empty transition with the reader's interrupts unmasked (§5.2 step 4,
    /// Linux `hv_signal_on_write`): Hyper-V throttles guests that ring the doorbell otherwise. An empty batch
    /// publishes nothing and returns false; so does a corrupt ring.
    public func commit(_ batch: OutgoingBatch) -> Bool {
        guard corruption == nil, batch.nextOffset != batch.startOffset else { return false }
        let c = memory.control
        // §5.2 step 3: releasing store, so the packet bytes are visible before the reader can see the new index.
        // (This is the ordering Linux gets from `virt_mb()` before its plain store; release gives it here.)
        c.writeIndex.store(UInt32(batch.nextOffset), ordering: .releasing)
        ownWriteIndex = batch.nextOffset
        // §5.2 step 4: full barrier between publishing write_index and reading interrupt_mask/read_index. Without
        // it the loads could pass the store, and a reader that unmasked and re-checked (§5.3 step 4) in that
        // window would sleep while we decide not to signal: a lost doorbell.
        fullBarrier()
        // Acquire: interrupt_mask is read before read_index (Linux `virt_rmb()` between the two).
        if c.interruptMask.load(ordering: .acquiring) != 0 { return false }
        // Empty before this batch: the reader had consumed everything up to where the batch started.
        return Int(c.readIndex.load(ordering: .relaxed)) == batch.startOffset
    }

    // MARK: Flow control (pending_send_sz)

    /// Asks the reader for a signal once more than `bytes` are free (`pending_send_sz`, §5.2 step 2). The value
    /// is rounded up to 8 because readers mask its low 3 bits. Re-check free space afterwards
    /// (``waitSpaceNeeded(bytes:)`` does both).
    public func setPendingSendSize(_ bytes: Int) {
        // Callers pass sizes they checked against the ring; clamping keeps a bad value from trapping.
        let clamped = min(max(bytes, 0), dataSize)
        memory.control.pendingSendSize.store(UInt32((clamped + 7) & ~7), ordering: .relaxed)
        // §5.2 step 2 / §5.3 step 3: the store must be visible before we re-read read_index, and the reader reads
        // pending_send_sz only after publishing read_index; with a full barrier on each side one of us sees the
        // other's store, so the "space available" signal cannot be lost.
        fullBarrier()
    }

    /// Withdraws the request for a space-available signal (`pending_send_sz = 0`).
    public func clearPendingSendSize() {
        memory.control.pendingSendSize.store(0, ordering: .relaxed)
    }

    /// Prepares to wait for room for a packet of `bytes` ring bytes (``bytesNeeded(headerCount:payloadCount:)``).
    ///
    /// Sets `pending_send_sz`, then re-checks free space to close the race with a reader that freed space
    /// before it could see the request. Returns `true` if the caller must now wait for the reader's signal
    /// (then call ``clearPendingSendSize()`` once woken and retry), or `false` if there already is room
    /// (`pending_send_sz` has been cleared again; retry at once).
    public func waitSpaceNeeded(bytes: Int) throws(RingError) -> Bool {
        if let c = corruption { throw .corrupt(c) }
        setPendingSendSize(bytes)
        let free = try freeBytes()
        if free > bytes {
            clearPendingSendSize()
            return false
        }
        return true
    }
}
