import VMBusWire

/// A differencing VHDX's parent locator (MS-VHDX 2.6.2.6): key/value pairs of UTF-16 strings naming the parent
/// ("parent_linkage": its DataWriteGuid; "relative_path", "absolute_win32_path", "volume_path").
public struct VHDXParentLocator: Equatable, Sendable {
    public static let headerSize = 20
    public static let entrySize = 12
    /// The locator type of a VHDX parent.
    public static let vhdxType = GUID(0xB04AEFB7, 0xD19E, 0x4A81, 0xB789_25B8_E944_5913)

    public var type: GUID
    /// In file order.
    public var entries: [(key: String, value: String)]

    public init(type: GUID = VHDXParentLocator.vhdxType, entries: [(key: String, value: String)]) {
        self.type = type
        self.entries = entries
    }

    public subscript(key: String) -> String? { entries.first { $0.key == key }?.value }

    /// The parent's DataWriteGuid as recorded when the child was made.
    public var linkage: GUID? { self["parent_linkage"].flatMap { GUID($0) } }

    public init(decoding b: [UInt8], at offset: UInt64) throws(BackendError) {
        func bad(_ why: String) -> BackendError { .corrupt(structure: "VHDX parent locator", offset: offset, why: why) }
        guard b.count >= Self.headerSize else { throw bad("\(b.count) bytes") }
        type = b.guid(0)
        let count = Int(b.le16(18))
        guard Self.headerSize + count * Self.entrySize <= b.count else { throw bad("\(count) entries in \(b.count) bytes") }
        func string(_ o: Int, _ length: Int) throws(BackendError) -> String {
            guard length > 0, length % 2 == 0, o >= Self.headerSize, o + length <= b.count else {
                throw bad("a string at \(o), \(length) bytes")
            }
            return String(decoding: stride(from: o, to: o + length, by: 2).map { b.le16($0) }, as: UTF16.self)
        }
        var entries: [(key: String, value: String)] = []
        for i in 0..<count {
            let e = Self.headerSize + i * Self.entrySize
            let key = try string(Int(b.le32(e)), Int(b.le16(e + 8)))
            let value = try string(Int(b.le32(e + 4)), Int(b.le16(e + 10)))
            guard !entries.contains(where: { $0.key == key }) else { throw bad("key \(key) twice") }
            entries.append((key, value))
        }
        self.entries = entries
        guard type == Self.vhdxType else { throw .unsupported("a parent of locator type \(type), not VHDX") }
        guard linkage != nil else { throw bad("no parent_linkage GUID") }
    }

    public var encoded: [UInt8] {
        var b = [UInt8](repeating: 0, count: Self.headerSize + entries.count * Self.entrySize)
        b.put(type, at: 0)
        b.put16(UInt16(entries.count), at: 18)
        for (i, (key, value)) in entries.enumerated() {
            let e = Self.headerSize + i * Self.entrySize
            for (field, s) in [(0, key), (4, value)] {
                let units = Array(s.utf16)
                b.put32(UInt32(b.count), at: e + field)
                b.put16(UInt16(units.count * 2), at: e + 8 + field / 2)
                for u in units { b += [UInt8(u & 0xFF), UInt8(u >> 8)] }
            }
        }
        return b
    }

    public static func == (a: VHDXParentLocator, b: VHDXParentLocator) -> Bool {
        a.type == b.type && a.entries.map(\.key) == b.entries.map(\.key) && a.entries.map(\.value) == b.entries.map(\.value)
    }
}
