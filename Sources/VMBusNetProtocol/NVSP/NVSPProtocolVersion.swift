/// An NVSP protocol version as INIT carries it (`NVSP_PROTOCOL_VERSION_*`: major in the high 16 bits, except
/// version 1, which is 2). Comparable by raw value, which orders the versions Linux knows correctly.
public struct NVSPProtocolVersion: RawRepresentable, Hashable, Comparable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `NVSP_PROTOCOL_VERSION_1`
    public static let v1 = Self(rawValue: 0x0000_0002)
    /// `NVSP_PROTOCOL_VERSION_2`
    public static let v2 = Self(rawValue: 0x0003_0002)
    /// `NVSP_PROTOCOL_VERSION_4`
    public static let v4 = Self(rawValue: 0x0004_0000)
    /// `NVSP_PROTOCOL_VERSION_5`
    public static let v5 = Self(rawValue: 0x0005_0000)
    /// `NVSP_PROTOCOL_VERSION_6`
    public static let v6 = Self(rawValue: 0x0006_0000)
    /// `NVSP_PROTOCOL_VERSION_61`
    public static let v61 = Self(rawValue: 0x0006_0001)
    /// `NVSP_INVALID_PROTOCOL_VERSION`
    public static let invalid = Self(rawValue: 0xFFFF_FFFF)

    /// Every version Linux 6.12 knows, oldest first (`ver_list` in `netvsc_connect_vsp()`).
    public static let all: [Self] = [.v1, .v2, .v4, .v5, .v6, .v61]
    /// The order Linux offers them in: it walks `ver_list` from the end, one INIT per version, until the host
    /// completes one with SUCCESS.
    public static let linuxTryOrder: [Self] = all.reversed()

    /// The size Linux gives every NVSP message it sends: `sizeof(struct nvsp_message)`, its 6.1 layout.
    /// OpenVMM sizes its own messages by the negotiated version (``messageSize``); both are accepted by Linux.
    public static let linuxMessageSize = NVSPMessage.wireSize

    /// The size of a message of this version's layout: 40 bytes from 6.1 on (the PacketDirect union), 28 before.
    public var messageSize: Int { self >= .v61 ? NVSPMessage.wireSize : NVSPMessage.legacyWireSize }

    public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }

    public var description: String {
        switch self {
        case .v1: return "1"
        case .v2: return "2"
        case .v61: return "6.1"
        default:
            let major = rawValue >> 16, minor = rawValue & 0xFFFF
            return minor == 0 ? "\(major)" : "\(major).\(minor)"
        }
    }
}
