/// The MS-VHDX file type identifier at offset 0: the signature "vhdxfile" and a UTF-16 creator string
/// (diagnostic only). The header section around it is 1 MiB: identifier, two headers, two region tables.
public struct VHDXFileIdentifier: Equatable, Sendable {
    public static let signature = Array("vhdxfile".utf8)
    /// Bytes read and written: the signature and the 256 UTF-16 code units of the creator.
    public static let size = 8 + 512
    public static let headerSectionSize: UInt64 = 1 << 20
    public static let header1Offset: UInt64 = 64 << 10
    public static let header2Offset: UInt64 = 128 << 10
    public static let regionTable1Offset: UInt64 = 192 << 10
    public static let regionTable2Offset: UInt64 = 256 << 10
    /// The largest file offset a structure may name (64 PiB): far past any real image, and far enough below
    /// 2^64 that offset arithmetic on values read from the file cannot overflow.
    public static let maximumFileOffset: UInt64 = 1 << 56

    public var creator: String

    public init(creator: String) { self.creator = creator }

    public init(decoding b: [UInt8]) throws(BackendError) {
        guard b.count >= Self.size, Array(b[0..<8]) == Self.signature else {
            throw .corrupt(structure: "VHDX file identifier", offset: 0, why: "no \"vhdxfile\" signature")
        }
        var units: [UInt16] = []
        for i in 0..<256 {
            let u = b.le16(8 + 2 * i)
            if u == 0 { break }
            units.append(u)
        }
        creator = String(decoding: units, as: UTF16.self)
    }

    public var encoded: [UInt8] {
        var b = Self.signature + [UInt8](repeating: 0, count: 512)
        for (i, u) in creator.utf16.prefix(255).enumerated() { b.put16(u, at: 8 + 2 * i) }
        return b
    }
}
