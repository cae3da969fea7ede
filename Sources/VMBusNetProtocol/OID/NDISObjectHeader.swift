import VMBusWire

/// `struct ndis_object_header` (and its twin `struct ndis_obj_header`, whose second field is called `rev`):
/// the head of every versioned NDIS structure. `size` is the structure's size for that revision, which is how
/// old and new layouts of one OID tell each other apart.
public struct NDISObjectHeader: WireCodable, Equatable, Sendable {
    public static let cName = "ndis_object_header"
    public static let wireSize = 4

    /// `NDIS_OBJECT_TYPE_DEFAULT`: offload parameters.
    public static let typeDefault: UInt8 = 0x80
    /// `NDIS_OBJECT_TYPE_RSS_CAPABILITIES`
    public static let typeRSSCapabilities: UInt8 = 0x88
    /// `NDIS_OBJECT_TYPE_RSS_PARAMETERS`
    public static let typeRSSParameters: UInt8 = 0x89
    /// `NDIS_OBJECT_TYPE_OFFLOAD`
    public static let typeOffload: UInt8 = 0xA7

    public var type: UInt8
    public var revision: UInt8
    public var size: UInt16

    public init(type: UInt8, revision: UInt8, size: UInt16) {
        self.type = type
        self.revision = revision
        self.size = size
    }

    public init(from r: inout WireReader) throws(WireError) {
        type = try r.readUInt8()
        revision = try r.readUInt8()
        size = try r.readUInt16()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt8(type)
        w.writeUInt8(revision)
        w.writeUInt16(size)
    }

    /// Throws unless the header names `type` and a `size` between `minimumSize` and the bytes available.
    func check(type expected: UInt8, minimumSize: Int, available: Int) throws(WireError) {
        guard type == expected else { throw .invalidValue(field: "header.type", value: UInt64(type)) }
        guard Int(size) >= minimumSize else { throw .invalidValue(field: "header.size", value: UInt64(size)) }
        guard Int(size) <= available else {
            throw .truncated(offset: 0, needed: Int(size), available: available)
        }
    }
}
