/// A storage protocol version as carried in `vmstorage_protocol_version.major_minor` (`major << 8 | minor`;
/// not the VMBus `major << 16` form).
public struct StorageProtocolVersion: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// `VMSTOR_PROTO_VERSION_WIN6` (2.0, Vista / Windows Server 2008)
    public static let win6 = Self(rawValue: 0x0200)
    /// `VMSTOR_PROTO_VERSION_WIN7` (4.2)
    public static let win7 = Self(rawValue: 0x0402)
    /// `VMSTOR_PROTO_VERSION_WIN8` (5.1): the first with the 52-byte SRB and multi-channel.
    public static let win8 = Self(rawValue: 0x0501)
    /// `VMSTOR_PROTO_VERSION_WIN8_1` (6.0)
    public static let win8_1 = Self(rawValue: 0x0600)
    /// `VMSTOR_PROTO_VERSION_WIN10` (6.2)
    public static let win10 = Self(rawValue: 0x0602)

    /// `protocol_version[]` in Linux `storvsc_drv.c`: what a Linux 6.12 guest asks for, newest first.
    public static let linuxTryOrder: [StorageProtocolVersion] = [.win10, .win8_1, .win8]
    /// Every version a host may accept, oldest first.
    public static let all: [StorageProtocolVersion] = [.win6, .win7, .win8, .win8_1, .win10]

    public var major: UInt8 { UInt8(truncatingIfNeeded: rawValue >> 8) }
    public var minor: UInt8 { UInt8(truncatingIfNeeded: rawValue) }

    /// Pre-Win8 protocols use the 36-byte SRB (no Win8 extension) and a 48-byte packet: Linux's
    /// `vmscsi_size_delta`.
    public var usesWin8Extension: Bool { self >= .win8 }
    /// The size of a VSTOR packet at this version (64, or 48 before Win8).
    public var packetSize: Int { usesWin8Extension ? VStorPacket.wireSize : VStorPacket.wireSize - VMSCSIRequest.win8ExtensionSize }
    /// Sub-channels need 5.1 or later.
    public var supportsMultiChannel: Bool { self >= .win8 }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    public var description: String { "\(major).\(minor)" }
}
