import VMBusWire

/// `struct vmstorage_channel_properties`: the host's answer to QUERY_PROPERTIES, at packet offset 12.
public struct StorageChannelProperties: WireCodable, Equatable, Sendable {
    public static let cName = "vmstorage_channel_properties"
    public static let wireSize = 24
    /// `STORAGE_CHANNEL_SUPPORTS_MULTI_CHANNEL`
    public static let flagSupportsMultiChannel: UInt32 = 0x1

    public var reserved: UInt32 = 0
    /// `max_channel_cnt`: the most sub-channels the guest may ask for.
    public var maxChannelCount: UInt16
    public var reserved1: UInt16 = 0
    public var flags: UInt32
    /// `max_transfer_bytes`: Linux rounds it down to 4 KiB and derives max_sectors and sg_tablesize from it.
    public var maxTransferBytes: UInt32
    public var reserved2: UInt64 = 0

    public init(maxChannelCount: UInt16, flags: UInt32, maxTransferBytes: UInt32) {
        self.maxChannelCount = maxChannelCount
        self.flags = flags
        self.maxTransferBytes = maxTransferBytes
    }

    public var supportsMultiChannel: Bool { flags & Self.flagSupportsMultiChannel != 0 }

    public init(from r: inout WireReader) throws(WireError) {
        reserved = try r.readUInt32()
        maxChannelCount = try r.readUInt16()
        reserved1 = try r.readUInt16()
        flags = try r.readUInt32()
        maxTransferBytes = try r.readUInt32()
        reserved2 = try r.readUInt64()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(reserved)
        w.writeUInt16(maxChannelCount)
        w.writeUInt16(reserved1)
        w.writeUInt32(flags)
        w.writeUInt32(maxTransferBytes)
        w.writeUInt64(reserved2)
    }
}

/// `struct vmstorage_protocol_version`: the body of QUERY_PROTOCOL_VERSION.
public struct StorageVersionBody: WireCodable, Equatable, Sendable {
    public static let cName = "vmstorage_protocol_version"
    public static let wireSize = 4
    public var majorMinor: StorageProtocolVersion
    /// Linux sends 0.
    public var revision: UInt16

    public init(_ version: StorageProtocolVersion, revision: UInt16 = 0) {
        self.majorMinor = version
        self.revision = revision
    }

    public init(from r: inout WireReader) throws(WireError) {
        majorMinor = StorageProtocolVersion(rawValue: try r.readUInt16())
        revision = try r.readUInt16()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt16(majorMinor.rawValue)
        w.writeUInt16(revision)
    }
}

/// `struct hv_fc_wwn_packet`: Fibre Channel port and node names (FCHBA_DATA). We offer no FC controller; the
/// type is here so that a packet carrying it decodes.
public struct FCWWNPacket: WireCodable, Equatable, Sendable {
    public static let cName = "hv_fc_wwn_packet"
    public static let wireSize = 36
    public var primaryActive: UInt8 = 0
    public var primaryPortWWN: UInt64 = 0
    public var primaryNodeWWN: UInt64 = 0
    public var secondaryPortWWN: UInt64 = 0
    public var secondaryNodeWWN: UInt64 = 0

    public init() {}

    // WWNs are 8 raw bytes on the wire; kept as big-endian numbers, the way they are written.
    public init(from r: inout WireReader) throws(WireError) {
        primaryActive = try r.readUInt8()
        try r.skip(3)
        primaryPortWWN = try Self.readWWN(&r)
        primaryNodeWWN = try Self.readWWN(&r)
        secondaryPortWWN = try Self.readWWN(&r)
        secondaryNodeWWN = try Self.readWWN(&r)
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt8(primaryActive)
        w.writeZeros(3)
        for v in [primaryPortWWN, primaryNodeWWN, secondaryPortWWN, secondaryNodeWWN] { w.writeUInt64(v.byteSwapped) }
    }

    private static func readWWN(_ r: inout WireReader) throws(WireError) -> UInt64 { try r.readUInt64().byteSwapped }
}
