import VMBusWire

/// `struct ndis_recv_scale_param` and what follows it: the value of SET OID_GEN_RECEIVE_SCALE_PARAMETERS.
/// The indirection table (u32 channel indices; `indirect_tabsize` counts bytes) and the hash key lie at the
/// offsets the struct declares, counted from its start. Linux puts the table right after the 40 bytes and the
/// 40-byte key after the table, and sends the OID twice: once with DISABLE_RSS, then enabled.
public struct NDISReceiveScaleParameters: WireDecodable, WireEncodable, Equatable, Sendable {
    public static let cName = "ndis_recv_scale_param"
    /// The fixed part.
    public static let wireSize = 40
    /// `NDIS_RECEIVE_SCALE_PARAMETERS_REVISION_2`
    public static let revision2: UInt8 = 2
    /// `ITAB_NUM_MAX`: Linux's largest table; more entries from a peer are refused.
    public static let maxIndirectionTableEntries = 256
    /// `ITAB_NUM`: Linux's default table size.
    public static let linuxIndirectionTableEntries = 128
    /// `NDIS_RSS_HASH_SECRET_KEY_MAX_SIZE_REVISION_2` (= `NETVSC_HASH_KEYLEN`)
    public static let maxHashKeySize = 40

    // `flag` bits (`NDIS_RSS_PARAM_FLAG_*`).
    /// `NDIS_RSS_PARAM_FLAG_BASE_CPU_UNCHANGED`
    public static let flagBaseCPUUnchanged: UInt16 = 0x1
    /// `NDIS_RSS_PARAM_FLAG_HASH_INFO_UNCHANGED`
    public static let flagHashInfoUnchanged: UInt16 = 0x2
    /// `NDIS_RSS_PARAM_FLAG_ITABLE_UNCHANGED`
    public static let flagIndirectionTableUnchanged: UInt16 = 0x4
    /// `NDIS_RSS_PARAM_FLAG_HASH_KEY_UNCHANGED`
    public static let flagHashKeyUnchanged: UInt16 = 0x8
    /// `NDIS_RSS_PARAM_FLAG_DISABLE_RSS`
    public static let flagDisableRSS: UInt16 = 0x10

    /// `netvsc_hash_key`: the Toeplitz key Linux sends by default (the well-known Microsoft RSS key).
    public static let linuxHashKey: [UInt8] = [
        0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2, 0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
        0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4, 0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
        0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
    ]

    public var header: NDISObjectHeader
    public var flags: UInt16
    public var baseCPUNumber: UInt16
    public var hashInfo: NDISHashInfo
    public var indirectionTable: [UInt32]
    public var hashKey: [UInt8]
    public var processorMasksOffset: UInt32
    public var processorMaskCount: UInt32
    public var processorMasksEntrySize: UInt32

    public init(header: NDISObjectHeader = .init(type: NDISObjectHeader.typeRSSParameters,
                                                 revision: NDISReceiveScaleParameters.revision2,
                                                 size: UInt16(NDISReceiveScaleParameters.wireSize)),
                flags: UInt16 = 0, baseCPUNumber: UInt16 = 0, hashInfo: NDISHashInfo = .linuxRSS,
                indirectionTable: [UInt32], hashKey: [UInt8] = NDISReceiveScaleParameters.linuxHashKey,
                processorMasksOffset: UInt32 = 0, processorMaskCount: UInt32 = 0,
                processorMasksEntrySize: UInt32 = 0) {
        self.header = header
        self.flags = flags
        self.baseCPUNumber = baseCPUNumber
        self.hashInfo = hashInfo
        self.indirectionTable = indirectionTable
        self.hashKey = hashKey
        self.processorMasksOffset = processorMasksOffset
        self.processorMaskCount = processorMaskCount
        self.processorMasksEntrySize = processorMasksEntrySize
    }

    /// The bytes ``encode(into:)`` writes.
    public var encodedLength: Int { Self.wireSize + 4 * indirectionTable.count + hashKey.count }

    /// Decodes from an info buffer that runs to the end of `r`. The header must name RSS parameters; the table
    /// size must be whole u32s, at most ``maxIndirectionTableEntries``; the key at most
    /// ``maxHashKeySize``; both must lie inside the buffer and past the fixed fields.
    public init(from r: inout WireReader) throws(WireError) {
        let s = try r.readSubReader(r.remaining)
        var b = s
        header = try NDISObjectHeader(from: &b)
        guard header.type == NDISObjectHeader.typeRSSParameters else {
            throw .invalidValue(field: "hdr.type", value: UInt64(header.type))
        }
        flags = try b.readUInt16()
        baseCPUNumber = try b.readUInt16()
        hashInfo = NDISHashInfo(rawValue: try b.readUInt32())
        let tableSize = Int(try b.readUInt16())
        try b.skip(2)
        let tableOffset = Int(try b.readUInt32())
        let keySize = Int(try b.readUInt16())
        try b.skip(2)
        let keyOffset = Int(try b.readUInt32())
        processorMasksOffset = try b.readUInt32()
        processorMaskCount = try b.readUInt32()
        processorMasksEntrySize = try b.readUInt32()

        guard tableSize % 4 == 0 else { throw .invalidValue(field: "indirect_tabsize", value: UInt64(tableSize)) }
        guard tableSize / 4 <= Self.maxIndirectionTableEntries else {
            throw .countTooLarge(field: "indirect_tabsize", count: tableSize / 4, limit: Self.maxIndirectionTableEntries)
        }
        guard keySize <= Self.maxHashKeySize else {
            throw .countTooLarge(field: "hashkey_size", count: keySize, limit: Self.maxHashKeySize)
        }
        guard tableSize == 0 || tableOffset >= Self.wireSize else {
            throw .invalidValue(field: "indirect_taboffset", value: UInt64(tableOffset))
        }
        guard keySize == 0 || keyOffset >= Self.wireSize else {
            throw .invalidValue(field: "hashkey_offset", value: UInt64(keyOffset))
        }
        var table = try s.region(at: tableSize == 0 ? 0 : tableOffset, count: tableSize)
        var entries: [UInt32] = []
        entries.reserveCapacity(tableSize / 4)
        for _ in 0..<(tableSize / 4) { entries.append(try table.readUInt32()) }
        indirectionTable = entries
        hashKey = try s.region(at: keySize == 0 ? 0 : keyOffset, count: keySize).windowBytes()
    }

    /// Writes the fixed part, the table at 40 and the key after it (Linux's layout). Sizes are ours and small.
    public func encode(into w: inout WireWriter) {
        let tableSize = 4 * indirectionTable.count
        header.encode(into: &w)
        w.writeUInt16(flags)
        w.writeUInt16(baseCPUNumber)
        w.writeUInt32(hashInfo.rawValue)
        w.writeUInt16(UInt16(truncatingIfNeeded: tableSize))
        w.writeUInt16(0)
        w.writeUInt32(UInt32(Self.wireSize))
        w.writeUInt16(UInt16(truncatingIfNeeded: hashKey.count))
        w.writeUInt16(0)
        w.writeUInt32(UInt32(truncatingIfNeeded: Self.wireSize + tableSize))
        w.writeUInt32(processorMasksOffset)
        w.writeUInt32(processorMaskCount)
        w.writeUInt32(processorMasksEntrySize)
        for e in indirectionTable { w.writeUInt32(e) }
        w.writeBytes(hashKey)
    }
}
