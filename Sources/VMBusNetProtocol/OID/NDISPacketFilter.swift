/// The value of OID_GEN_CURRENT_PACKET_FILTER (`NDIS_PACKET_TYPE_*` of `hyperv_net.h`). Linux sets
/// DIRECTED | ALL_MULTICAST | BROADCAST on open, PROMISCUOUS on demand, and 0 on close: after 0 the host must
/// deliver nothing.
public struct NDISPacketFilter: OptionSet, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `NDIS_PACKET_TYPE_DIRECTED`
    public static let directed = Self(rawValue: 0x0000_0001)
    /// `NDIS_PACKET_TYPE_MULTICAST`
    public static let multicast = Self(rawValue: 0x0000_0002)
    /// `NDIS_PACKET_TYPE_ALL_MULTICAST`
    public static let allMulticast = Self(rawValue: 0x0000_0004)
    /// `NDIS_PACKET_TYPE_BROADCAST`
    public static let broadcast = Self(rawValue: 0x0000_0008)
    /// `NDIS_PACKET_TYPE_SOURCE_ROUTING`
    public static let sourceRouting = Self(rawValue: 0x0000_0010)
    /// `NDIS_PACKET_TYPE_PROMISCUOUS`
    public static let promiscuous = Self(rawValue: 0x0000_0020)
    /// `NDIS_PACKET_TYPE_SMT`
    public static let smt = Self(rawValue: 0x0000_0040)
    /// `NDIS_PACKET_TYPE_ALL_LOCAL`
    public static let allLocal = Self(rawValue: 0x0000_0080)
    /// `NDIS_PACKET_TYPE_GROUP`
    public static let group = Self(rawValue: 0x0000_0100)
    /// `NDIS_PACKET_TYPE_ALL_FUNCTIONAL`
    public static let allFunctional = Self(rawValue: 0x0000_0200)
    /// `NDIS_PACKET_TYPE_FUNCTIONAL`
    public static let functional = Self(rawValue: 0x0000_0400)
    /// `NDIS_PACKET_TYPE_MAC_FRAME`
    public static let macFrame = Self(rawValue: 0x0000_0800)

    /// What Linux sets when the interface comes up.
    public static let linuxDefault: Self = [.directed, .allMulticast, .broadcast]
}

/// The value of OID_GEN_MEDIA_CONNECT_STATUS (`RNDIS_MEDIA_STATE_*`).
public struct RNDISMediaState: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `RNDIS_MEDIA_STATE_CONNECTED`
    public static let connected = Self(rawValue: 0)
    /// `RNDIS_MEDIA_STATE_DISCONNECTED`
    public static let disconnected = Self(rawValue: 1)
}
