import VMBusWire

/// `struct ictimesync_ref_data` (packed, 22 bytes): the ICMSGTYPE_TIMESYNC body from service version 4.0
/// (`TS_VERSION`). It adds the partition reference time at which the host took the sample, so the guest can
/// correct for the delay before it reads the message.
public struct TimeSyncReferenceData: Equatable, Sendable, WireCodable {
    public static let cName = "ictimesync_ref_data"
    public static let wireSize = 22

    /// The host's time (100 ns since 1601).
    public var parenttime: UInt64
    /// The partition reference counter (100 ns ticks) when `parenttime` was read.
    public var vmreferencetime: UInt64
    public var flags: TimeSyncFlags
    /// `leapflags` (C `char`); Linux ignores it.
    public var leapflags: Int8
    /// `stratum` (C `char`); Linux ignores it.
    public var stratum: Int8
    /// `reserved[3]`: written as zero unless set.
    public var reserved: (UInt8, UInt8, UInt8)

    public init(parenttime: UInt64, vmreferencetime: UInt64, flags: TimeSyncFlags, leapflags: Int8 = 0,
                stratum: Int8 = 0, reserved: (UInt8, UInt8, UInt8) = (0, 0, 0)) {
        self.parenttime = parenttime
        self.vmreferencetime = vmreferencetime
        self.flags = flags
        self.leapflags = leapflags
        self.stratum = stratum
        self.reserved = reserved
    }

    public init(from r: inout WireReader) throws(WireError) {
        try r.require(Self.wireSize)
        parenttime = try r.readUInt64()
        vmreferencetime = try r.readUInt64()
        flags = TimeSyncFlags(rawValue: try r.readUInt8())
        leapflags = Int8(bitPattern: try r.readUInt8())
        stratum = Int8(bitPattern: try r.readUInt8())
        reserved = (try r.readUInt8(), try r.readUInt8(), try r.readUInt8())
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt64(parenttime)
        w.writeUInt64(vmreferencetime)
        w.writeUInt8(flags.rawValue)
        w.writeUInt8(UInt8(bitPattern: leapflags))
        w.writeUInt8(UInt8(bitPattern: stratum))
        w.writeUInt8(reserved.0)
        w.writeUInt8(reserved.1)
        w.writeUInt8(reserved.2)
    }

    public static func == (a: Self, b: Self) -> Bool {
        a.parenttime == b.parenttime && a.vmreferencetime == b.vmreferencetime && a.flags == b.flags
            && a.leapflags == b.leapflags && a.stratum == b.stratum && a.reserved.0 == b.reserved.0
            && a.reserved.1 == b.reserved.1 && a.reserved.2 == b.reserved.2
    }
}
