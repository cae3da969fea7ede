import VMBusMemory
import VMBusProtocol
import VMBusStorageProtocol
import VMBusTransport
import VMBusWire

/// Who hears of a request that does not wait: the caller's handler and tag, and where a read's data goes.
struct AsyncRequest {
    let handler: any StorVSCRequestHandler
    let tag: UInt64
    let readInto: UnsafeMutableRawBufferPointer?
}

/// Hears of requests sent with ``StorVSCDisk/submitRead(at:into:tag:handler:)`` and
/// ``StorVSCDisk/submitWrite(at:from:fua:tag:handler:)``. Called on the guest's interrupt thread, or on the
/// thread calling ``StorVSCCompletionPoller/poll()``: it must not block or wait for other requests (it may
/// submit new ones only if the slot pool cannot run dry).
public protocol StorVSCRequestHandler: AnyObject, Sendable {
    /// Request `tag` is done: the bytes moved, or why not.
    func requestFinished(tag: UInt64, result: Result<Int, StorVSCError>)
}

/// One request the controller can have outstanding: its bounce pages in guest memory (the only memory the host
/// can see), the buffers its VSTOR packet and GPA range are encoded into, and its state.
///
/// A slot belongs to the thread that took it from the pool until it goes back. The completion handler only
/// touches ``state``. A request that timed out leaves its slot *abandoned*: the host may still move data into
/// the bounce pages, so the slot returns to the pool only when the host completes it or the channel goes away.
final class RequestSlot: @unchecked Sendable {
    /// idle → inFlight (sent) → completed (the host answered; the waiter takes it) → idle.
    ///
    /// A hot remove turns inFlight into failedEarly: the waiter returns the failure and leaves the slot
    /// abandoned. A timeout turns inFlight into abandoned directly. An abandoned slot goes back to idle (and
    /// to the pool) only when the host answers. Only the waiter moves a slot out of completed or failedEarly,
    /// so a slot is never reused while its waiter still looks at it.
    enum Phase: Equatable { case idle, inFlight, completed, failedEarly, abandoned }

    struct State {
        var phase: Phase = .idle
        var outcome: Result<SRBCompletion, StorVSCError>?
        /// Data bytes the request asked for: the completion may not report more.
        var requestedLength = 0
        var lun: UInt8 = 0
        /// Set for a request nobody waits for (``StorVSCController/submit``).
        var async: AsyncRequest?
        /// The caller's buffer the host moves the data through instead of the bounce pages, held until the
        /// host is done with the request (also after its caller gave up).
        var lent: StorVSCBuffer?
    }

    let index: Int
    let pages: [UInt64]
    /// Mapped base of the bounce pages when they are contiguous in guest memory (the allocator's default).
    private let base: UnsafeMutableRawPointer?
    private let pagePointers: [UnsafeMutableRawPointer]
    var capacity: Int { pages.count * GuestMemory.pageSize }
    var packet = WireWriter(capacity: VStorPacket.wireSize)
    var rangeBlock: WireWriter
    let state = Condition(State())

    init(index: Int, pages: [UInt64], memory: GuestMemory) throws(MemoryError) {
        self.index = index
        self.pages = pages
        var pointers: [UnsafeMutableRawPointer] = []
        for p in pages { pointers.append(try memory.pagePointer(p)) }
        pagePointers = pointers
        let contiguous = zip(pages, pages.dropFirst()).allSatisfy { $1 == $0 + 1 }
        base = contiguous ? pointers.first : nil
        // One PFN more than the bounce pages: a lent buffer's range may start inside a page.
        rangeBlock = WireWriter(capacity: 16 + 8 * (pages.count + 1))
    }

    /// Copies `source` into the bounce pages at `offset`.
    func copyIn(_ source: UnsafeRawBufferPointer, at offset: Int) {
        guard let src = source.baseAddress, source.count > 0 else { return }
        if let base { (base + offset).copyMemory(from: src, byteCount: source.count); return }
        var done = 0
        while done < source.count {
            let at = offset + done
            let n = min(GuestMemory.pageSize - at % GuestMemory.pageSize, source.count - done)
            (pagePointers[at / GuestMemory.pageSize] + at % GuestMemory.pageSize).copyMemory(from: src + done, byteCount: n)
            done += n
        }
    }

    /// Copies bounce bytes `offset..<offset+destination.count` out.
    func copyOut(_ destination: UnsafeMutableRawBufferPointer, from offset: Int) {
        guard let dst = destination.baseAddress, destination.count > 0 else { return }
        if let base { dst.copyMemory(from: base + offset, byteCount: destination.count); return }
        var done = 0
        while done < destination.count {
            let at = offset + done
            let n = min(GuestMemory.pageSize - at % GuestMemory.pageSize, destination.count - done)
            (dst + done).copyMemory(from: pagePointers[at / GuestMemory.pageSize] + at % GuestMemory.pageSize, byteCount: n)
            done += n
        }
    }

    /// Encodes the one GPA range covering the first `length` bytes of the bounce pages.
    func encodeRange(length: Int) {
        rangeBlock.reset()
        let n = (length + GuestMemory.pageSize - 1) / GuestMemory.pageSize
        GPARange.encodeSingleRangeBlock(byteCount: UInt32(length), byteOffset: 0, pfns: pages.prefix(n),
                                                   into: &rangeBlock)
    }

    /// Encodes the one GPA range covering `length` bytes of `buffer` from byte `offset` (in range: checked by
    /// the caller).
    func encodeRange(_ buffer: StorVSCBuffer, offset: Int, length: Int) {
        rangeBlock.reset()
        let first = offset / GuestMemory.pageSize
        let inPage = offset % GuestMemory.pageSize
        let n = (inPage + length + GuestMemory.pageSize - 1) / GuestMemory.pageSize
        GPARange.encodeSingleRangeBlock(byteCount: UInt32(length), byteOffset: UInt32(inPage),
                                        pfns: buffer.pages[first..<(first + n)], into: &rangeBlock)
    }
}
