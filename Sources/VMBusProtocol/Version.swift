/// A VMBus protocol version as carried in `vmbus_version_requested` (`major << 16 | minor`).
///
/// Open: any 32-bit value is representable, so an unknown version a peer asks for survives into logs and
/// errors. Ordering is numeric, which is also chronological for every version Hyper-V has shipped.
public struct VMBusVersion: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    public init(major: UInt16, minor: UInt16) { self.rawValue = UInt32(major) << 16 | UInt32(minor) }

    public var major: UInt16 { UInt16(truncatingIfNeeded: rawValue >> 16) }
    public var minor: UInt16 { UInt16(truncatingIfNeeded: rawValue) }

    /// `VERSION_WS2008` (0.13)
    public static let ws2008 = Self(rawValue: 0x0000_000D)
    /// `VERSION_WIN7` (1.1)
    public static let win7 = Self(rawValue: 0x0001_0001)
    /// `VERSION_WIN8` (2.4)
    public static let win8 = Self(rawValue: 0x0002_0004)
    /// `VERSION_WIN8_1` (3.0)
    public static let win8_1 = Self(rawValue: 0x0003_0000)
    /// `VERSION_WIN10` (4.0)
    public static let win10 = Self(rawValue: 0x0004_0000)
    /// `VERSION_WIN10_V4_1` (4.1)
    public static let win10_v4_1 = Self(rawValue: 0x0004_0001)
    /// `VERSION_WIN10_V5` (5.0)
    public static let win10_v5 = Self(rawValue: 0x0005_0000)
    /// `VERSION_WIN10_V5_1` (5.1)
    public static let win10_v5_1 = Self(rawValue: 0x0005_0001)
    /// `VERSION_WIN10_V5_2` (5.2)
    public static let win10_v5_2 = Self(rawValue: 0x0005_0002)
    /// `VERSION_WIN10_V5_3` (5.3)
    public static let win10_v5_3 = Self(rawValue: 0x0005_0003)
    /// 6.0. Linux has no name for it; OpenVMM calls it `Version::Copper` (vmbus_core `protocol.rs`).
    public static let copper = Self(rawValue: 0x0006_0000)

    /// 65535.65535: above every real version; the minimum version of message types nobody may send.
    public static let never = Self(rawValue: 0xFFFF_FFFF)

    /// `vmbus_versions` (Linux `drivers/hv/connection.c`): what a Linux 6.12 guest asks for, one
    /// INITIATE_CONTACT per entry, newest first.
    public static let linuxTryOrder: [VMBusVersion] = [
        .win10_v5_3, .win10_v5_2, .win10_v5_1, .win10_v5, .win10_v4_1, .win10, .win8_1, .win8,
    ]

    /// Every version a host may accept, oldest first (OpenVMM's server accepts exactly these).
    public static let all: [VMBusVersion] = [
        .ws2008, .win7, .win8, .win8_1, .win10, .win10_v4_1, .win10_v5, .win10_v5_1, .win10_v5_2, .win10_v5_3,
        .copper,
    ]

    /// Whether this is one of ``all``.
    public var isKnown: Bool { Self.all.contains(self) }

    /// The connection id INITIATE_CONTACT is posted to for this version: `VMBUS_MESSAGE_CONNECTION_ID_4` from
    /// 5.0 on, `VMBUS_MESSAGE_CONNECTION_ID` before (Linux `vmbus_negotiate_version`).
    public var initiateContactConnectionID: UInt32 {
        self >= .win10_v5 ? VMBusConnectionID.message4 : VMBusConnectionID.message
    }

    /// From 5.0 the 8 bytes at offset 16 of INITIATE_CONTACT are `msg_sint`/`msg_vtl` instead of `interrupt_page`,
    /// and VERSION_RESPONSE carries the connection id for later messages.
    public var usesMessageConnectionID: Bool { self >= .win10_v5 }

    /// "5.3"
    public var description: String { "\(major).\(minor)" }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
}

/// The fixed SynIC connection ids VMBus uses (`union hv_connection_id`; the hypervisor looks at the low 24 bits).
/// Per-channel doorbells come from the offer's `connection_id` instead.
public enum VMBusConnectionID {
    /// `VMBUS_MESSAGE_CONNECTION_ID`: control messages before 5.0, and what most hosts return afterwards.
    public static let message: UInt32 = 1
    /// `VMBUS_EVENT_CONNECTION_ID`: the legacy shared guest-to-host event port.
    public static let event: UInt32 = 2
    /// `VMBUS_MONITOR_CONNECTION_ID`
    public static let monitor: UInt32 = 3
    /// `VMBUS_MESSAGE_CONNECTION_ID_4`: INITIATE_CONTACT from 5.0 on.
    public static let message4: UInt32 = 4
    /// `VMBUS_MESSAGE_CONNECTION_ID_REDIRECT`: tried first by a Linux guest running in VTL2.
    public static let messageRedirect: UInt32 = 0x80_0074
    /// `VMBUS_MESSAGE_SINT`: the SINT carrying VMBus control messages and channel events (also
    /// ``VMBusSynIC/messageSINT``).
    public static let messageSINT: UInt8 = 2
    /// Mask of the bits the hypervisor uses (`hv_connection_id.u.id`, 24 bits).
    public static let idMask: UInt32 = 0x00FF_FFFF
}
