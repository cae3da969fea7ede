import Atomics
import VMBusProtocol

/// The memory of ONE ring: a 4 KiB control page followed by a data area whose size is a multiple of 4096.
///
/// Two shapes exist, as in OpenVMM's `SingleMappedRingMem` and `PagedRingMem`:
/// - contiguous: control page and data area in one mapping (a guest's own ring, a flat test buffer);
/// - paged: the control page and each data page anywhere (a host mapping the pages of a GPADL). When the data
///   pages happen to be adjacent and in order, the paged form takes the contiguous fast path.
///
/// All copies into and out of the data area are done here and handle both the wrap at the end of the data area
/// and page crossings, so callers think in data offsets only. The value does not own the memory; pass the
/// owning object as `owner` to keep the mapping alive as long as any copy of this value exists.
public struct RingMemory: @unchecked Sendable {
    /// Size of the control page (`struct hv_ring_buffer` padded to a page).
    public static let controlPageSize = RingControlLayout.controlPageSize
    /// The unit of ring sizes and of paged memory.
    public static let pageSize = 4096

    /// Bytes in the data area (ring size minus the control page).
    public let dataSize: Int
    /// Whether the data area is one contiguous range (fast copies).
    public var isContiguous: Bool { dataBase != nil }

    let control: RingControl
    let controlPage: UnsafeMutableRawPointer
    /// Start of the data area when it is contiguous.
    let dataBase: UnsafeMutableRawPointer?
    /// The data pages when the data area is not contiguous (empty otherwise).
    let dataPages: [UnsafeMutableRawPointer]
    private let owner: AnyObject?

    /// A ring in one contiguous range of `totalSize` bytes starting at `base`: the control page, then the data.
    ///
    /// - Parameters:
    ///   - base: start of the control page; must be 8-byte aligned (page-aligned in practice).
    ///   - totalSize: control page plus data area; the data area must be a non-zero multiple of 4096 bytes.
    ///   - owner: an object that keeps the memory mapped (for example the `GuestMemory`); retained.
    /// - Throws: ``RingError/badMemory(_:)`` for a misaligned base or an unusable size.
    public init(contiguous base: UnsafeMutableRawPointer, totalSize: Int, owner: AnyObject? = nil) throws(RingError) {
        guard Int(bitPattern: base) % 8 == 0 else {
            throw .badMemory("ring base \(base) is not 8-byte aligned")
        }
        let data = totalSize - Self.controlPageSize
        guard data >= Self.pageSize, data % Self.pageSize == 0 else {
            throw .badMemory("ring size \(totalSize) is not a 4 KiB control page plus a non-zero multiple of 4096")
        }
        // Indices are u32 byte offsets.
        guard data <= Int(UInt32.max) - Self.pageSize else { throw .badMemory("ring size \(totalSize) is too large") }
        self.controlPage = base
        self.control = RingControl(page: base)
        self.dataSize = data
        self.dataBase = base + Self.controlPageSize
        self.dataPages = []
        self.owner = owner
    }

    /// A ring over separate 4 KiB pages: `pages[0]` is the control page, the rest are the data pages in ring
    /// order. They need not be adjacent; if the data pages are adjacent and in order, copies use the fast path.
    ///
    /// - Throws: ``RingError/badMemory(_:)`` if there is no data page or a page pointer is not page-aligned.
    public init(pages: [UnsafeMutableRawPointer], owner: AnyObject? = nil) throws(RingError) {
        guard pages.count >= 2 else {
            throw .badMemory("a ring needs a control page and at least one data page, got \(pages.count) pages")
        }
        for (i, p) in pages.enumerated() where Int(bitPattern: p) % Self.pageSize != 0 {
            throw .badMemory("ring page \(i) at \(p) is not page-aligned")
        }
        let data = (pages.count - 1) * Self.pageSize
        guard data <= Int(UInt32.max) - Self.pageSize else { throw .badMemory("ring of \(pages.count) pages is too large") }
        var contiguous = true
        for i in 2..<pages.count where pages[i] != pages[i - 1] + Self.pageSize {
            contiguous = false
            break
        }
        self.controlPage = pages[0]
        self.control = RingControl(page: pages[0])
        self.dataSize = data
        self.dataBase = contiguous ? pages[1] : nil
        self.dataPages = contiguous ? [] : Array(pages[1...])
        self.owner = owner
    }

    // MARK: Data-area access. Offsets are in [0, dataSize); counts are at most dataSize.

    /// The address of data offset `offset` (a page-local address in paged memory). Any 8-byte word at an
    /// 8-aligned offset lies inside one page, because pages and the data size are multiples of 8.
    @inline(__always)
    func address(_ offset: Int) -> UnsafeMutableRawPointer {
        if let base = dataBase { return base + offset }
        return dataPages[offset >> 12] + (offset & (Self.pageSize - 1))
    }

    /// Offset `offset + count` wrapped into the data area (`offset < dataSize`, `count <= dataSize`).
    @inline(__always)
    func advance(_ offset: Int, by count: Int) -> Int {
        let next = offset + count
        return next >= dataSize ? next - dataSize : next
    }

    /// The address of data bytes `[offset, offset + count)` when they are one plain range (contiguous memory and
    /// no wrap), so a caller can skip the wrap and page arithmetic per access; nil otherwise.
    @inline(__always)
    func contiguousRange(_ offset: Int, count: Int) -> UnsafeMutableRawPointer? {
        guard let base = dataBase, count <= dataSize - offset else { return nil }
        return base + offset
    }

    /// Stores a little-endian 64-bit word at an 8-aligned data offset (descriptor words, trailer, padding).
    @inline(__always)
    func storeWord(_ value: UInt64, at offset: Int) {
        address(offset).storeBytes(of: value.littleEndian, as: UInt64.self)
    }

    /// Loads the little-endian 64-bit word at an 8-aligned data offset: exactly one read of those 8 bytes, so a
    /// caller that checks and uses only the returned value has its own copy (the descriptor words of a packet).
    /// A relaxed atomic load (a plain `mov` on x86-64) rather than a plain one, which the compiler would be free
    /// to repeat: a second read of a peer-written word is the double fetch the copy-out rule forbids.
    @inline(__always)
    func loadWord(at offset: Int) -> UInt64 {
        let word = UnsafeAtomic<UInt64>(at: address(offset).assumingMemoryBound(to: UInt64.AtomicRepresentation.self))
        return UInt64(littleEndian: word.load(ordering: .relaxed))
    }

    /// Copies `count` bytes starting at data offset `offset` (wrapping at the end) into `destination`.
    @inline(__always)
    func copyOut(from offset: Int, into destination: UnsafeMutableRawPointer, count: Int) {
        if let base = dataBase {
            let first = min(count, dataSize - offset)
            destination.copyMemory(from: base + offset, byteCount: first)
            if first < count { (destination + first).copyMemory(from: base, byteCount: count - first) }
        } else if (offset & (Self.pageSize - 1)) + count <= Self.pageSize {
            // Within one page (the common case for small packets): no wrap is possible either.
            destination.copyMemory(from: address(offset), byteCount: count)
        } else {
            pagedCopy(offset, count) { off, done, n in (destination + done).copyMemory(from: address(off), byteCount: n) }
        }
    }

    /// Copies `count` bytes from `source` into the data area starting at data offset `offset` (wrapping).
    @inline(__always)
    func copyIn(to offset: Int, from source: UnsafeRawPointer, count: Int) {
        if let base = dataBase {
            let first = min(count, dataSize - offset)
            (base + offset).copyMemory(from: source, byteCount: first)
            if first < count { base.copyMemory(from: source + first, byteCount: count - first) }
        } else if (offset & (Self.pageSize - 1)) + count <= Self.pageSize {
            address(offset).copyMemory(from: source, byteCount: count)
        } else {
            pagedCopy(offset, count) { off, done, n in address(off).copyMemory(from: source + done, byteCount: n) }
        }
    }

    /// Splits `[offset, offset + count)` (wrapping) into page-local pieces: `body(dataOffset, doneSoFar, length)`.
    @inline(__always)
    private func pagedCopy(_ offset: Int, _ count: Int, _ body: (Int, Int, Int) -> Void) {
        var off = offset
        var done = 0
        while done < count {
            let n = min(count - done, Self.pageSize - (off & (Self.pageSize - 1)))
            body(off, done, n)
            done += n
            off = advance(off, by: n)
        }
    }
}
