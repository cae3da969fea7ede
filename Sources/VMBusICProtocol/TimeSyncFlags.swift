/// `ICTIMESYNCFLAG_*`: the kind of time sample. No bit set is a probe.
public struct TimeSyncFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `ICTIMESYNCFLAG_PROBE` (0): no bit.
    public static let probe: Self = []
    /// `ICTIMESYNCFLAG_SYNC`: set the clock now (after boot or restore). Linux steps its clock only for this.
    public static let sync = Self(rawValue: 1)
    /// `ICTIMESYNCFLAG_SAMPLE`: a periodic sample for the guest to discipline its clock with.
    public static let sample = Self(rawValue: 2)
}

/// Which time-sync body a negotiated service version uses.
public enum TimeSyncLayout: Hashable, Sendable {
    /// ``TimeSyncData`` (`ictimesync_data`, 25 bytes).
    case data
    /// ``TimeSyncReferenceData`` (`ictimesync_ref_data`, 22 bytes).
    case reference

    /// Linux's rule: service versions above `TS_VERSION_3` (so 4.0) carry the reference-time layout.
    public init(serviceVersion: ICVersion) {
        self = serviceVersion > .tsVersion3 ? .reference : .data
    }

    public var wireSize: Int { self == .data ? TimeSyncData.wireSize : TimeSyncReferenceData.wireSize }

    /// `WLTIMEDELTA`: 100 ns units between 1601-01-01 (the hosts' epoch) and 1970-01-01.
    public static let windowsEpochDelta: UInt64 = 0x019D_B1DE_D53E_8000
}
