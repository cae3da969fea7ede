import VMBusWire

/// The MS-VHDX metadata region: a table (signature "metadata", up to 2047 entries) of items, each an offset and
/// length inside the region. The items every disk has (file parameters, sizes, disk ID) and a differencing disk's
/// parent locator are decoded; an unknown item marked required refuses the file.
public struct VHDXMetadata: Equatable, Sendable {
    public static let tableSize = 64 << 10
    public static let signature = Array("metadata".utf8)
    public static let maximumEntries = 2047

    public static let fileParameters = GUID(0xCAA16737, 0xFA36, 0x4D43, 0xB3B6_33F0_AA44_E76B)
    public static let virtualDiskSize = GUID(0x2FA54224, 0xCD1B, 0x4876, 0xB211_5DBE_D83B_F4B8)
    public static let page83Data = GUID(0xBECA12AB, 0xB2E6, 0x4523, 0x93EF_C309_E000_C746)
    public static let logicalSectorSize = GUID(0x8141BF1D, 0xA96F, 0x4709, 0xBA47_F233_A8FA_AB5F)
    public static let physicalSectorSize = GUID(0xCDA348C7, 0x445D, 0x4471, 0x9CC9_E988_5251_C556)
    public static let parentLocator = GUID(0xA8D35F2D, 0xB30B, 0x454D, 0xABF7_D3D8_4834_AB0C)

    /// Entry flags.
    static let isUser: UInt32 = 1, isVirtualDisk: UInt32 = 2, isRequired: UInt32 = 4

    /// File parameters: blocks stay allocated (a fixed disk).
    static let leaveBlocksAllocated: UInt32 = 1
    /// File parameters: a differencing disk.
    static let hasParent: UInt32 = 2

    public static let minimumBlockSize: UInt32 = 1 << 20
    public static let maximumBlockSize: UInt32 = 256 << 20
    /// The largest virtual disk the format allows: 64 TiB.
    public static let maximumDiskSize: UInt64 = 64 << 40

    public var blockSize: UInt32
    public var leaveBlocksAllocated: Bool
    public var hasParent: Bool
    public var diskSize: UInt64
    /// Page 0x83 identifier of the virtual disk.
    public var diskID: GUID
    public var logicalSectorSize: UInt32
    public var physicalSectorSize: UInt32
    public var parent: VHDXParentLocator?

    public init(blockSize: UInt32, leaveBlocksAllocated: Bool, diskSize: UInt64, diskID: GUID,
                logicalSectorSize: UInt32, physicalSectorSize: UInt32, parent: VHDXParentLocator? = nil) {
        self.blockSize = blockSize
        self.leaveBlocksAllocated = leaveBlocksAllocated
        hasParent = parent != nil
        self.diskSize = diskSize
        self.diskID = diskID
        self.logicalSectorSize = logicalSectorSize
        self.physicalSectorSize = physicalSectorSize
        self.parent = parent
    }

    /// Decodes the region (all `regionLength` bytes of it, read from `offset`) and checks every value the
    /// specification constrains.
    public init(decoding b: [UInt8], at offset: UInt64) throws(BackendError) {
        func bad(_ at: Int, _ why: String) -> BackendError {
            .corrupt(structure: "VHDX metadata", offset: offset + UInt64(at), why: why)
        }
        guard b.count >= Self.tableSize else { throw bad(0, "a region of \(b.count) bytes") }
        guard Array(b[0..<8]) == Self.signature else { throw bad(0, "no \"metadata\" signature") }
        let count = Int(b.le16(10))
        guard count <= Self.maximumEntries else { throw bad(10, "\(count) entries") }
        var items: [GUID: [UInt8]] = [:]
        var spans: [(Int, Int, Int)] = []
        for i in 0..<count {
            let o = 32 + 32 * i
            let id = b.guid(o), itemOffset = Int(b.le32(o + 16)), length = Int(b.le32(o + 20)), flags = b.le32(o + 24)
            if length == 0 { continue }
            guard itemOffset >= Self.tableSize, itemOffset + length <= b.count, length <= 1 << 20 else {
                throw bad(o, "item \(id) at \(itemOffset), \(length) bytes, outside the region")
            }
            guard items[id] == nil else { throw bad(o, "item \(id) twice") }
            let known = [Self.fileParameters, Self.virtualDiskSize, Self.page83Data, Self.logicalSectorSize,
                         Self.physicalSectorSize, Self.parentLocator].contains(id)
            guard known || flags & Self.isRequired == 0 else { throw bad(o, "required item \(id) is unknown") }
            items[id] = Array(b[itemOffset..<(itemOffset + length)])
            spans.append((itemOffset, itemOffset + length, o))
        }
        spans.sort { $0.0 < $1.0 }
        for (x, y) in zip(spans, spans.dropFirst()) where y.0 < x.1 { throw bad(y.2, "items overlap") }
        func item(_ id: GUID, _ name: String, _ size: Int) throws(BackendError) -> [UInt8] {
            guard let v = items[id] else { throw bad(0, "no \(name) item") }
            guard v.count >= size else { throw bad(0, "\(name) item of \(v.count) bytes") }
            return v
        }
        let params = try item(Self.fileParameters, "file parameters", 8)
        blockSize = params.le32(0)
        leaveBlocksAllocated = params.le32(4) & Self.leaveBlocksAllocated != 0
        hasParent = params.le32(4) & Self.hasParent != 0
        diskSize = try item(Self.virtualDiskSize, "virtual disk size", 8).le64(0)
        diskID = try item(Self.page83Data, "page 83 data", 16).guid(0)
        logicalSectorSize = try item(Self.logicalSectorSize, "logical sector size", 4).le32(0)
        physicalSectorSize = try item(Self.physicalSectorSize, "physical sector size", 4).le32(0)
        guard blockSize >= Self.minimumBlockSize, blockSize <= Self.maximumBlockSize, blockSize & (blockSize - 1) == 0 else {
            throw bad(0, "block size \(blockSize)")
        }
        guard logicalSectorSize == 512 || logicalSectorSize == 4096 else { throw bad(0, "logical sector size \(logicalSectorSize)") }
        guard physicalSectorSize == 512 || physicalSectorSize == 4096 else { throw bad(0, "physical sector size \(physicalSectorSize)") }
        guard diskSize > 0, diskSize <= Self.maximumDiskSize, diskSize % UInt64(logicalSectorSize) == 0 else {
            throw bad(0, "virtual disk size \(diskSize)")
        }
        if hasParent {
            let raw = try item(Self.parentLocator, "parent locator", VHDXParentLocator.headerSize)
            parent = try VHDXParentLocator(decoding: raw, at: offset)
        } else {
            parent = nil
        }
    }

    /// The region's bytes, `length` long (a multiple of 1 MiB): the table, then each item from 64 KiB on.
    public func encoded(length: Int) -> [UInt8] {
        var b = [UInt8](repeating: 0, count: length)
        for (i, c) in Self.signature.enumerated() { b[i] = c }
        var params = [UInt8](repeating: 0, count: 8)
        params.put32(blockSize, at: 0)
        params.put32((leaveBlocksAllocated ? Self.leaveBlocksAllocated : 0) | (hasParent ? Self.hasParent : 0), at: 4)
        var size = [UInt8](repeating: 0, count: 8); size.put64(diskSize, at: 0)
        var id = [UInt8](repeating: 0, count: 16); id.put(diskID, at: 0)
        var logical = [UInt8](repeating: 0, count: 4); logical.put32(logicalSectorSize, at: 0)
        var physical = [UInt8](repeating: 0, count: 4); physical.put32(physicalSectorSize, at: 0)
        var items: [(GUID, [UInt8], UInt32)] = [
            (Self.fileParameters, params, Self.isRequired),
            (Self.virtualDiskSize, size, Self.isRequired | Self.isVirtualDisk),
            (Self.page83Data, id, Self.isRequired | Self.isVirtualDisk),
            (Self.logicalSectorSize, logical, Self.isRequired | Self.isVirtualDisk),
            (Self.physicalSectorSize, physical, Self.isRequired | Self.isVirtualDisk),
        ]
        if let parent { items.append((Self.parentLocator, parent.encoded, Self.isRequired)) }
        b.put16(UInt16(items.count), at: 10)
        var at = Self.tableSize
        for (i, (guid, bytes, flags)) in items.enumerated() {
            let o = 32 + 32 * i
            b.put(guid, at: o)
            b.put32(UInt32(at), at: o + 16)
            b.put32(UInt32(bytes.count), at: o + 20)
            b.put32(flags, at: o + 24)
            for (j, c) in bytes.enumerated() { b[at + j] = c }
            at += (bytes.count + 7) / 8 * 8
        }
        return b
    }
}
