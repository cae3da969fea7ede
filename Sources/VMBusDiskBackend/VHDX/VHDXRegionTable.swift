import VMBusWire

/// The MS-VHDX region table (64 KiB, at 192 KiB with a copy at 256 KiB): where the BAT and the metadata region
/// lie. A required region we do not know means we cannot read the file.
public struct VHDXRegionTable: Equatable, Sendable {
    public static let size = 64 << 10
    public static let signature = [UInt8].signature("regi")
    public static let maximumEntries = 2047
    public static let BAT = GUID(0x2DC27766, 0xF623, 0x4200, 0x9D64_115E_9BFD_4A08)
    public static let metadata = GUID(0x8B7CA206, 0x4790, 0x4B9A, 0xB8FE_575F_050F_886E)

    public struct Entry: Equatable, Sendable {
        public var guid: GUID
        public var fileOffset: UInt64
        public var length: UInt32
        public var isRequired: Bool
        public init(guid: GUID, fileOffset: UInt64, length: UInt32, isRequired: Bool = true) {
            self.guid = guid; self.fileOffset = fileOffset; self.length = length; self.isRequired = isRequired
        }
    }

    public var entries: [Entry]

    public init(entries: [Entry]) { self.entries = entries }

    public init(decoding b: [UInt8], at offset: UInt64) throws(BackendError) {
        func bad(_ why: String) -> BackendError { .corrupt(structure: "VHDX region table", offset: offset, why: why) }
        guard b.count == Self.size else { throw bad("\(b.count) bytes") }
        try b.verifySignatureAndChecksum("regi", bad)
        let count = Int(b.le32(8))
        guard count <= Self.maximumEntries else { throw bad("\(count) entries") }
        entries = (0..<count).map { i in
            let o = 16 + 32 * i
            return Entry(guid: b.guid(o), fileOffset: b.le64(o + 16), length: b.le32(o + 24), isRequired: b.le32(o + 28) & 1 != 0)
        }
    }

    public var encoded: [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.size)
        b.put32(Self.signature, at: 0)
        b.put32(UInt32(entries.count), at: 8)
        for (i, e) in entries.enumerated() {
            let o = 16 + 32 * i
            b.put(e.guid, at: o)
            b.put64(e.fileOffset, at: o + 16)
            b.put32(e.length, at: o + 24)
            b.put32(e.isRequired ? 1 : 0, at: o + 28)
        }
        b.put32(CRC32C.checksum(b), at: 4)
        return b
    }

    public func entry(_ guid: GUID) -> Entry? { entries.first { $0.guid == guid } }
}
