import VMBusWire

/// A wire struct that is nothing but u32 fields in wire order (most of the NDIS offload parts). The field list
/// is declared once, as key paths, and decode and encode follow from it, so the order cannot drift between
/// the two. Control-path only: the list is rebuilt on each use.
public protocol WireUInt32Fields: WireCodable {
    init()
    /// The fields in wire order.
    static var fields: [WritableKeyPath<Self, UInt32>] { get }
}

extension WireUInt32Fields {
    public init(from r: inout WireReader) throws(WireError) {
        self.init()
        for f in Self.fields { self[keyPath: f] = try r.readUInt32() }
    }

    public func encode(into w: inout WireWriter) {
        for f in Self.fields { w.writeUInt32(self[keyPath: f]) }
    }
}
