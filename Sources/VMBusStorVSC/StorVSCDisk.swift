import Atomics
import VMBusSCSI
import VMBusStorageProtocol
import VMBusTransport

/// One disk (LUN) of a StorVSC controller: blocking read, write, flush and unmap at any byte offset and length.
///
/// Requests are split at the controller's maximum transfer; several threads may call at once, up to the
/// controller's queue depth in flight. A write that does not cover whole blocks reads the partial blocks,
/// patches and writes them back under a per-disk lock, so two such writes cannot lose each other's bytes.
/// BUSY and UNIT ATTENTION are retried; other failures come back as ``StorVSCError``. Once the LUN is removed,
/// outstanding and new requests fail with ``StorVSCError/lunRemoved(lun:)``.
public final class StorVSCDisk: @unchecked Sendable {
    public let identity: LUNIdentity
    public var lun: UInt8 { identity.lun }
    public var blockSize: Int { identity.blockSize }
    public var capacityBytes: UInt64 { identity.capacityBytes }
    public var isReadOnly: Bool { identity.readOnly }
    public var supportsUnmap: Bool { identity.thinProvisioned }
    public private(set) weak var controller: StorVSCController?
    private let removedFlag = ManagedAtomic<Bool>(false)
    /// Bytes per request: the controller's maximum transfer, in whole blocks.
    private let chunkBytes: Int
    /// One block of scratch for read-modify-write, and the lock that serializes it.
    private let partialBlock: Condition<UnsafeMutableRawBufferPointer>

    init(controller: StorVSCController, identity: LUNIdentity) {
        self.controller = controller
        self.identity = identity
        chunkBytes = max(identity.blockSize, controller.maxTransferBytes / identity.blockSize * identity.blockSize)
        partialBlock = Condition(.allocate(byteCount: identity.blockSize, alignment: 64))
    }

    deinit { partialBlock.withLock { $0.deallocate() } }

    public var isRemoved: Bool { removedFlag.load(ordering: .acquiring) }
    func markRemoved() { removedFlag.store(true, ordering: .releasing) }

    private func live() throws(StorVSCError) -> StorVSCController {
        guard !isRemoved else { throw .lunRemoved(lun: lun) }
        guard let c = controller else { throw .controllerGone("the controller was released") }
        return c
    }

    private func checkRange(_ offset: UInt64, _ count: Int) throws(StorVSCError) {
        let (end, overflow) = offset.addingReportingOverflow(UInt64(count))
        guard count >= 0, !overflow, end <= capacityBytes else {
            throw .invalidArgument("\(count) bytes at \(offset) are outside the \(capacityBytes)-byte disk")
        }
    }

    /// READ(16) / WRITE(16).
    private static func rw16(write: Bool, lba: UInt64, blocks: Int, fua: Bool) -> InlineArray<16, UInt8> {
        var cdb = InlineArray<16, UInt8>(repeating: 0)
        cdb[0] = write ? SCSIOpcode.WRITE_16 : SCSIOpcode.READ_16
        if fua { cdb[1] = 0x08 }
        for i in 0..<8 { cdb[2 + i] = UInt8(truncatingIfNeeded: lba >> (56 - 8 * UInt64(i))) }
        for i in 0..<4 { cdb[10 + i] = UInt8(truncatingIfNeeded: blocks >> (24 - 8 * i)) }
        return cdb
    }

    // MARK: Read

    /// Reads `buffer.count` bytes at byte `offset`.
    public func read(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer) throws(StorVSCError) {
        try checkRange(offset, buffer.count)
        let controller = try live()
        let bs = UInt64(blockSize)
        var pos = offset
        let end = offset + UInt64(buffer.count)
        while pos < end {
            let first = pos / bs * bs
            let chunkEnd = min(end, first + UInt64(chunkBytes))
            let blocks = Int((chunkEnd - first + bs - 1) / bs)
            let length = blocks * blockSize
            let skip = Int(pos - first)
            let n = Int(chunkEnd - pos)
            let into = UnsafeMutableRawBufferPointer(rebasing: buffer[Int(pos - offset)..<(Int(pos - offset) + n)])
            try controller.withRetries(lun: lun) { () throws(StorVSCError) -> SRBCompletion in
                let c = try controller.execute(lun: lun, cdb: Self.rw16(write: false, lba: first / bs, blocks: blocks, fua: false),
                                               cdbLength: 16, direction: .read, length: length,
                                               finish: { slot, c in if c.transferred == length { slot.copyOut(into, from: skip) } })
                if c.srbStatus == .success && c.transferred != length { throw .shortTransfer(expected: length, transferred: c.transferred) }
                return c
            }
            controller.bytesRead.wrappingIncrement(by: UInt64(n), ordering: .relaxed)
            pos = chunkEnd
        }
    }

    // MARK: Write

    /// Writes `buffer` at byte `offset`. With `fua`, each request reaches stable storage before it completes.
    public func write(at offset: UInt64, from buffer: UnsafeRawBufferPointer, fua: Bool = false) throws(StorVSCError) {
        try checkRange(offset, buffer.count)
        let controller = try live()
        guard !isReadOnly else { throw .writeProtected }
        let bs = UInt64(blockSize)
        var pos = offset
        let end = offset + UInt64(buffer.count)
        while pos < end {
            let from = Int(pos - offset)
            if pos % bs != 0 || end - pos < bs {
                // A partial block: read it, patch it, write it back.
                let blockStart = pos / bs * bs
                let n = Int(min(end, blockStart + bs) - pos)
                try patchBlock(controller, lba: blockStart / bs, at: Int(pos - blockStart),
                               UnsafeRawBufferPointer(rebasing: buffer[from..<(from + n)]), fua: fua)
                pos += UInt64(n)
                continue
            }
            let runEnd = min(end / bs * bs, pos + UInt64(chunkBytes))
            let length = Int(runEnd - pos)
            try writeBlocks(controller, lba: pos / bs, UnsafeRawBufferPointer(rebasing: buffer[from..<(from + length)]), fua: fua)
            pos = runEnd
        }
    }

    /// Writes whole blocks (`data.count` a multiple of the block size, at most one chunk).
    private func writeBlocks(_ controller: StorVSCController, lba: UInt64, _ data: UnsafeRawBufferPointer, fua: Bool) throws(StorVSCError) {
        let length = data.count
        try controller.withRetries(lun: lun) { () throws(StorVSCError) -> SRBCompletion in
            let c = try controller.execute(lun: lun, cdb: Self.rw16(write: true, lba: lba, blocks: length / blockSize, fua: fua),
                                           cdbLength: 16, direction: .write, length: length,
                                           prepare: { $0.copyIn(data, at: 0) })
            if c.srbStatus == .success && c.transferred != length { throw .shortTransfer(expected: length, transferred: c.transferred) }
            return c
        }
        controller.bytesWritten.wrappingIncrement(by: UInt64(length), ordering: .relaxed)
    }

    private func patchBlock(_ controller: StorVSCController, lba: UInt64, at offset: Int, _ patch: UnsafeRawBufferPointer,
                            fua: Bool) throws(StorVSCError) {
        let r: Result<Void, StorVSCError> = partialBlock.withLock { block in
            do throws(StorVSCError) {
                try read(at: lba * UInt64(blockSize), into: block)
                if let src = patch.baseAddress, let dst = block.baseAddress { (dst + offset).copyMemory(from: src, byteCount: patch.count) }
                try writeBlocks(controller, lba: lba, UnsafeRawBufferPointer(block), fua: fua)
                return .success(())
            } catch { return .failure(error) }
        }
        try r.get()
    }

    // MARK: Reads and writes through guest memory (no bounce copy)

    /// Reads `count` bytes at byte `offset` of the disk into `buffer` from byte `at`, the host moving them into
    /// the buffer's pages directly. Whole blocks go without a copy on the guest side; a read that is not
    /// block-aligned goes through the bounce pages like ``read(at:into:)``.
    public func read(at offset: UInt64, into buffer: StorVSCBuffer, offset at: Int = 0, count: Int) throws(StorVSCError) {
        let target = try lentRange(buffer, at, count)
        guard aligned(offset, count) else { return try read(at: offset, into: target) }
        try transfer(write: false, offset, buffer, at, count, fua: false)
    }

    /// Writes `count` bytes of `buffer` from byte `at` to byte `offset` of the disk, the host taking them from
    /// the buffer's pages directly; as ``read(at:into:offset:count:)``, unaligned writes go through the bounce
    /// pages.
    public func write(at offset: UInt64, from buffer: StorVSCBuffer, offset at: Int = 0, count: Int, fua: Bool = false) throws(StorVSCError) {
        let source = try lentRange(buffer, at, count)
        guard aligned(offset, count) else { return try write(at: offset, from: UnsafeRawBufferPointer(source), fua: fua) }
        guard !isReadOnly else { throw .writeProtected }
        try transfer(write: true, offset, buffer, at, count, fua: fua)
    }

    /// Whole blocks between the disk at `offset` and `buffer` at `at`, one request per chunk, each naming the
    /// buffer's own pages.
    private func transfer(write: Bool, _ offset: UInt64, _ buffer: StorVSCBuffer, _ at: Int, _ count: Int, fua: Bool) throws(StorVSCError) {
        try checkRange(offset, count)
        let controller = try live()
        var done = 0
        while done < count {
            let n = min(chunkBytes, count - done)
            let lba = (offset + UInt64(done)) / UInt64(blockSize)
            let from = at + done
            try controller.withRetries(lun: lun) { () throws(StorVSCError) -> SRBCompletion in
                let c = try controller.execute(lun: lun, cdb: Self.rw16(write: write, lba: lba, blocks: n / blockSize, fua: fua),
                                               cdbLength: 16, direction: write ? .write : .read, length: n,
                                               lending: buffer, lentOffset: from)
                if c.srbStatus == .success && c.transferred != n { throw .shortTransfer(expected: n, transferred: c.transferred) }
                return c
            }
            (write ? controller.bytesWritten : controller.bytesRead).wrappingIncrement(by: UInt64(n), ordering: .relaxed)
            done += n
        }
    }

    /// `count` bytes of `buffer` from `at`, checked to lie inside it.
    private func lentRange(_ buffer: StorVSCBuffer, _ at: Int, _ count: Int) throws(StorVSCError) -> UnsafeMutableRawBufferPointer {
        guard at >= 0, count >= 0, at <= buffer.count, count <= buffer.count - at else {
            throw .invalidArgument("\(count) bytes at \(at) are outside the \(buffer.count)-byte buffer")
        }
        return UnsafeMutableRawBufferPointer(rebasing: buffer.bytes[at..<(at + count)])
    }

    private func aligned(_ offset: UInt64, _ count: Int) -> Bool {
        offset % UInt64(blockSize) == 0 && count % blockSize == 0
    }


    /// Starts a read of whole blocks (`offset` and `buffer.count` block multiples, at most the maximum transfer)
    /// and returns at once; `handler` is called with `tag` once the data is in `buffer`, which must stay valid
    /// until then. For callers that keep many requests in flight from few threads (benchmarks, an event
    /// loop): no retries, no timeout, one request per call.
    public func submitRead(at offset: UInt64, into buffer: UnsafeMutableRawBufferPointer, tag: UInt64,
                           handler: any StorVSCRequestHandler) throws(StorVSCError) {
        let controller = try submittable(offset, buffer.count)
        try controller.submit(lun: lun, cdb: Self.rw16(write: false, lba: offset / UInt64(blockSize), blocks: buffer.count / blockSize, fua: false),
                              cdbLength: 16, direction: .read, length: buffer.count, writeFrom: nil, readInto: buffer,
                              tag: tag, handler: handler)
    }

    /// Starts a write of whole blocks, as ``submitRead(at:into:tag:handler:)``; `buffer` is copied before this
    /// returns.
    public func submitWrite(at offset: UInt64, from buffer: UnsafeRawBufferPointer, fua: Bool = false, tag: UInt64,
                            handler: any StorVSCRequestHandler) throws(StorVSCError) {
        let controller = try submittable(offset, buffer.count)
        guard !isReadOnly else { throw .writeProtected }
        try controller.submit(lun: lun, cdb: Self.rw16(write: true, lba: offset / UInt64(blockSize), blocks: buffer.count / blockSize, fua: fua),
                              cdbLength: 16, direction: .write, length: buffer.count, writeFrom: buffer, readInto: nil,
                              tag: tag, handler: handler)
    }

    private func submittable(_ offset: UInt64, _ count: Int) throws(StorVSCError) -> StorVSCController {
        try checkRange(offset, count)
        let controller = try live()
        guard count > 0, count <= chunkBytes, offset % UInt64(blockSize) == 0, count % blockSize == 0 else {
            throw .invalidArgument("a submitted request is 1...\(chunkBytes / blockSize) whole blocks, not \(count) bytes at \(offset)")
        }
        return controller
    }

    // MARK: Flush and unmap

    /// SYNCHRONIZE CACHE: every write completed before it is on stable storage when it returns.
    public func flush() throws(StorVSCError) {
        let controller = try live()
        var cdb = InlineArray<16, UInt8>(repeating: 0)
        cdb[0] = SCSIOpcode.SYNCHRONIZE_CACHE
        try controller.withRetries(lun: lun) { () throws(StorVSCError) -> SRBCompletion in
            try controller.execute(lun: lun, cdb: cdb, cdbLength: 10, direction: .none, length: 0)
        }
    }

    /// Discards `length` bytes at `offset`: whole blocks are unmapped (they then read as zeros), the partial
    /// blocks at either end are written with zeros.
    public func unmap(at offset: UInt64, length: UInt64) throws(StorVSCError) {
        guard length <= UInt64(Int.max) else { throw .invalidArgument("unmap of \(length) bytes") }
        try checkRange(offset, Int(length))
        let controller = try live()
        guard supportsUnmap else { throw .invalidArgument("LUN \(lun) does not support UNMAP") }
        guard !isReadOnly else { throw .writeProtected }
        let bs = UInt64(blockSize)
        let end = offset + length
        let firstWhole = (offset + bs - 1) / bs * bs
        let lastWhole = end / bs * bs
        guard firstWhole < lastWhole else { return try zero(at: offset, count: Int(length)) }
        if offset < firstWhole { try zero(at: offset, count: Int(firstWhole - offset)) }
        if lastWhole < end { try zero(at: lastWhole, count: Int(end - lastWhole)) }
        var lba = firstWhole / bs
        let endLBA = lastWhole / bs
        while lba < endLBA {
            let count = UInt32(min(endLBA - lba, UInt64(identity.maxUnmapBlocks)))
            // The parameter list: an 8-byte header, then one 16-byte block descriptor.
            var list = InlineArray<24, UInt8>(repeating: 0)
            list[1] = 22
            list[3] = 16
            for i in 0..<8 { list[8 + i] = UInt8(truncatingIfNeeded: lba >> (56 - 8 * UInt64(i))) }
            for i in 0..<4 { list[16 + i] = UInt8(truncatingIfNeeded: count >> (24 - 8 * UInt32(i))) }
            var cdb = InlineArray<16, UInt8>(repeating: 0)
            cdb[0] = SCSIOpcode.UNMAP
            cdb[8] = 24
            try controller.withRetries(lun: lun) { () throws(StorVSCError) -> SRBCompletion in
                try controller.execute(lun: lun, cdb: cdb, cdbLength: 10, direction: .write, length: 24, prepare: { slot in
                    var copy = list
                    withUnsafeBytes(of: &copy) { slot.copyIn($0, at: 0) }
                })
            }
            lba += UInt64(count)
        }
    }

    private func zero(at offset: UInt64, count: Int) throws(StorVSCError) {
        let zeros = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 8)
        defer { zeros.deallocate() }
        zeros.initializeMemory(as: UInt8.self, repeating: 0)
        try write(at: offset, from: UnsafeRawBufferPointer(zeros))
    }
}
