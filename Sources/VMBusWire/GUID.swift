/// A GUID as Hyper-V puts it on the wire (`guid_t`): the first three fields little-endian, the last eight bytes
/// in order. The string form is the usual `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`.
public struct GUID: Hashable, Sendable, Comparable, CustomStringConvertible, WireCodable {
    public static let wireSize = 16

    public var data1: UInt32
    public var data2: UInt16
    public var data3: UInt16
    /// Bytes 8...15, in order.
    public var data4: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)

    public static let zero = GUID(data1: 0, data2: 0, data3: 0, data4: (0, 0, 0, 0, 0, 0, 0, 0))

    public init(data1: UInt32, data2: UInt16, data3: UInt16,
                data4: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8)) {
        self.data1 = data1; self.data2 = data2; self.data3 = data3; self.data4 = data4
    }

    /// Parses `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`, with or without braces; `nil` if malformed.
    public init?(_ string: String) {
        var s = Substring(string)
        if s.hasPrefix("{") && s.hasSuffix("}") { s = s.dropFirst().dropLast() }
        let parts = s.split(separator: "-", omittingEmptySubsequences: false)
        guard parts.count == 5, parts[0].count == 8, parts[1].count == 4, parts[2].count == 4,
              parts[3].count == 4, parts[4].count == 12,
              // UInt32(_:radix:) would also accept a leading "+", so check the digits first.
              parts.allSatisfy({ $0.allSatisfy(\.isHexDigit) }),
              let d1 = UInt32(parts[0], radix: 16), let d2 = UInt16(parts[1], radix: 16),
              let d3 = UInt16(parts[2], radix: 16) else { return nil }
        let tail = Array(parts[3] + parts[4])
        var b = [UInt8]()
        for i in stride(from: 0, to: 16, by: 2) {
            guard let v = UInt8(String(tail[i..<(i + 2)]), radix: 16) else { return nil }
            b.append(v)
        }
        self.init(data1: d1, data2: d2, data3: d3, data4: (b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]))
    }

    /// Builds a GUID from its 16 wire bytes.
    public init(wireBytes b: [UInt8]) throws(WireError) {
        var r = WireReader(b)
        self = try GUID(from: &r)
    }

    public init(from r: inout WireReader) throws(WireError) {
        data1 = try r.readUInt32()
        data2 = try r.readUInt16()
        data3 = try r.readUInt16()
        data4 = (try r.readUInt8(), try r.readUInt8(), try r.readUInt8(), try r.readUInt8(),
                 try r.readUInt8(), try r.readUInt8(), try r.readUInt8(), try r.readUInt8())
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(data1)
        w.writeUInt16(data2)
        w.writeUInt16(data3)
        for b in tailBytes { w.writeUInt8(b) }
    }

    public var tailBytes: [UInt8] { [data4.0, data4.1, data4.2, data4.3, data4.4, data4.5, data4.6, data4.7] }

    public var description: String {
        func hex<T: BinaryInteger>(_ v: T, _ width: Int) -> String {
            let s = String(v, radix: 16)
            return String(repeating: "0", count: max(0, width - s.count)) + s
        }
        let t = tailBytes.map { hex($0, 2) }
        return "\(hex(data1, 8))-\(hex(data2, 4))-\(hex(data3, 4))-\(t[0])\(t[1])-\(t[2...].joined())"
    }

    public static func == (a: GUID, b: GUID) -> Bool {
        a.data1 == b.data1 && a.data2 == b.data2 && a.data3 == b.data3 && a.tailBytes == b.tailBytes
    }

    public func hash(into h: inout Hasher) {
        h.combine(data1); h.combine(data2); h.combine(data3)
        for b in tailBytes { h.combine(b) }
    }

    /// Orders by wire bytes, the order OpenVMM sorts offers in.
    public static func < (a: GUID, b: GUID) -> Bool { a.wireBytes.lexicographicallyPrecedes(b.wireBytes) }
}
