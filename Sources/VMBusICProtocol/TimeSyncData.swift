import VMBusWire

/// `struct ictimesync_data` (packed, 25 bytes): the ICMSGTYPE_TIMESYNC body of service versions 1.0 and 3.0.
/// Times are 100 ns units since 1601 (``TimeSyncLayout/windowsEpochDelta``).
public struct TimeSyncData: Equatable, Sendable, WireCodable {
    public static let cName = "ictimesync_data"
    public static let wireSize = 25

    /// The host's time when it sent the sample.
    public var parenttime: UInt64
    public var childtime: UInt64
    public var roundtriptime: UInt64
    public var flags: TimeSyncFlags

    public init(parenttime: UInt64, childtime: UInt64 = 0, roundtriptime: UInt64 = 0, flags: TimeSyncFlags) {
        self.parenttime = parenttime
        self.childtime = childtime
        self.roundtriptime = roundtriptime
        self.flags = flags
    }

    public init(from r: inout WireReader) throws(WireError) {
        try r.require(Self.wireSize)
        parenttime = try r.readUInt64()
        childtime = try r.readUInt64()
        roundtriptime = try r.readUInt64()
        flags = TimeSyncFlags(rawValue: try r.readUInt8())
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt64(parenttime)
        w.writeUInt64(childtime)
        w.writeUInt64(roundtriptime)
        w.writeUInt8(flags.rawValue)
    }
}
