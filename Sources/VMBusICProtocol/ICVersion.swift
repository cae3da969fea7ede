import VMBusWire

/// `struct ic_version`: a framework or service version in the IC framing (major, then minor, on the wire).
///
/// Linux's version tables pack a version as `major << 16 | minor` (``packed``); the wire never does.
/// Ordering compares major, then minor.
public struct ICVersion: Hashable, Comparable, Sendable, CustomStringConvertible, WireCodable {
    public static let cName = "ic_version"
    public static let wireSize = 4

    public var major: UInt16
    public var minor: UInt16

    public init(_ major: UInt16, _ minor: UInt16) {
        self.major = major
        self.minor = minor
    }

    /// From Linux's `major << 16 | minor` form.
    public init(packed: UInt32) {
        self.init(UInt16(truncatingIfNeeded: packed >> 16), UInt16(truncatingIfNeeded: packed))
    }

    /// Linux's `major << 16 | minor` form (what `nego_srv_version` holds).
    public var packed: UInt32 { UInt32(major) << 16 | UInt32(minor) }

    public init(from r: inout WireReader) throws(WireError) {
        major = try r.readUInt16()
        minor = try r.readUInt16()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt16(major)
        w.writeUInt16(minor)
    }

    public static func < (a: Self, b: Self) -> Bool { a.packed < b.packed }

    public var description: String { "\(major).\(minor)" }

    // Framework versions (include/uapi/linux/hyperv.h).

    /// `UTIL_FW_VERSION` (3.0)
    public static let utilFWVersion = ICVersion(3, 0)
    /// `UTIL_WS2K8_FW_VERSION` (1.0): Windows Server 2008 hosts.
    public static let utilWS2K8FWVersion = ICVersion(1, 0)

    // Service versions (drivers/hv/hv_util.c, hv_kvp.c, hv_snapshot.c; hv_fcopy.c before 6.10).

    /// `SD_VERSION_3_2` (3.2): shutdown with the reboot flag.
    public static let sdVersion3_2 = ICVersion(3, 2)
    /// `SD_VERSION_3_1` (3.1)
    public static let sdVersion3_1 = ICVersion(3, 1)
    /// `SD_VERSION` (3.0)
    public static let sdVersion = ICVersion(3, 0)
    /// `SD_VERSION_1` (1.0)
    public static let sdVersion1 = ICVersion(1, 0)
    /// `TS_VERSION` (4.0): the first version whose samples use `ictimesync_ref_data`.
    public static let tsVersion = ICVersion(4, 0)
    /// `TS_VERSION_3` (3.0)
    public static let tsVersion3 = ICVersion(3, 0)
    /// `TS_VERSION_1` (1.0)
    public static let tsVersion1 = ICVersion(1, 0)
    /// `HB_VERSION` (3.0)
    public static let hbVersion = ICVersion(3, 0)
    /// `HB_VERSION_1` (1.0)
    public static let hbVersion1 = ICVersion(1, 0)
    /// `WIN8_SRV_VERSION` of drivers/hv/hv_kvp.c (4.0).
    public static let kvpWin8SrvVersion = ICVersion(4, 0)
    /// `WIN7_SRV_VERSION` of drivers/hv/hv_kvp.c (3.0).
    public static let kvpWin7SrvVersion = ICVersion(3, 0)
    /// `WS2008_SRV_VERSION` of drivers/hv/hv_kvp.c (1.0).
    public static let kvpWS2008SrvVersion = ICVersion(1, 0)
    /// `VSS_VERSION` (5.0)
    public static let vssVersion = ICVersion(5, 0)
    /// `WIN8_SRV_VERSION` of tools/hv/hv_fcopy_uio_daemon.c and of drivers/hv/hv_fcopy.c before 6.10 (1.1):
    /// the same macro name as KVP's, another value.
    public static let fcopyWin8SrvVersion = ICVersion(1, 1)
}
