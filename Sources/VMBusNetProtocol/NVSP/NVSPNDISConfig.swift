import VMBusWire

/// `struct nvsp_2_vsc_capability`: what the guest's VSC can do, sent in SEND_NDIS_CONFIG. Linux sets
/// IEEE 802.1Q always, SR-IOV (outside CVMs) and teaming from NVSP 5, RSC from 6.1. Without teaming the host
/// sends no link-speed updates.
public struct NVSPVSCCapability: OptionSet, Hashable, Sendable {
    public var rawValue: UInt64
    public init(rawValue: UInt64) { self.rawValue = rawValue }

    /// `vmq`
    public static let vmq = Self(rawValue: 1 << 0)
    /// `chimney`
    public static let chimney = Self(rawValue: 1 << 1)
    /// `sriov`
    public static let sriov = Self(rawValue: 1 << 2)
    /// `ieee8021q`
    public static let ieee8021q = Self(rawValue: 1 << 3)
    /// `correlation_id`
    public static let correlationID = Self(rawValue: 1 << 4)
    /// `teaming`
    public static let teaming = Self(rawValue: 1 << 5)
    /// `vsubnetid`
    public static let virtualSubnetID = Self(rawValue: 1 << 6)
    /// `rsc`
    public static let rsc = Self(rawValue: 1 << 7)
}

/// `struct nvsp_2_send_ndis_config`: MTU (Linux: interface MTU + 14) and capabilities, no completion.
public struct NVSPSendNDISConfig: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_2_send_ndis_config"
    public static let wireSize = 16

    public var mtu: UInt32
    public var capability: NVSPVSCCapability

    public init(mtu: UInt32, capability: NVSPVSCCapability) {
        self.mtu = mtu
        self.capability = capability
    }

    public init(from r: inout WireReader) throws(WireError) {
        mtu = try r.readUInt32()
        try r.skip(4)  // reserved
        capability = NVSPVSCCapability(rawValue: try r.readUInt64())
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(mtu)
        w.writeUInt32(0)
        w.writeUInt64(capability.rawValue)
    }
}
