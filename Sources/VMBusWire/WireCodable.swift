/// A value decoded from its exact C layout.
public protocol WireDecodable {
    init(from reader: inout WireReader) throws(WireError)
}

/// A value encoded in its exact C layout.
public protocol WireEncodable {
    func encode(into writer: inout WireWriter)
}

/// A fixed-size wire structure. `wireSize` is the C `sizeof`, checked against Linux's layouts by the golden tests.
public protocol WireCodable: WireDecodable, WireEncodable {
    static var wireSize: Int { get }
}

extension WireEncodable {
    /// The encoded bytes (allocates; not for hot paths).
    public var wireBytes: [UInt8] {
        var w = WireWriter()
        encode(into: &w)
        return w.bytes
    }
}

extension WireDecodable {
    /// Decodes from the start of `bytes`; trailing bytes are allowed.
    public init(wireBytes bytes: [UInt8]) throws(WireError) {
        var r = WireReader(bytes)
        self = try Self(from: &r)
    }
}
