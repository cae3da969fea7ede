import VMBusWire

/// `struct nvsp_1_message_send_ndis_version`: the NDIS version the guest's RNDIS speaks. Linux sends 6.1 for
/// NVSP ≤ 4 and 6.30 after; it requests no completion.
public struct NVSPSendNDISVersion: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_1_message_send_ndis_version"
    public static let wireSize = 8

    public var ndisMajorVersion: UInt32
    public var ndisMinorVersion: UInt32

    public init(ndisMajorVersion: UInt32, ndisMinorVersion: UInt32) {
        self.ndisMajorVersion = ndisMajorVersion
        self.ndisMinorVersion = ndisMinorVersion
    }

    /// NDIS 6.1, what Linux announces up to NVSP 4.
    public static let ndis6_1 = Self(ndisMajorVersion: 6, ndisMinorVersion: 1)
    /// NDIS 6.30, what Linux announces from NVSP 5 on.
    public static let ndis6_30 = Self(ndisMajorVersion: 6, ndisMinorVersion: 30)

    /// Linux's choice for a negotiated NVSP version.
    public static func linuxChoice(for version: NVSPProtocolVersion) -> Self {
        version <= .v4 ? .ndis6_1 : .ndis6_30
    }

    public init(from r: inout WireReader) throws(WireError) {
        ndisMajorVersion = try r.readUInt32()
        ndisMinorVersion = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(ndisMajorVersion)
        w.writeUInt32(ndisMinorVersion)
    }
}
