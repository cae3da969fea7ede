import VMBusWire

/// `struct nvsp_message_init`: the guest asks for a version range. Linux sends min = max and walks its list
/// down one INIT at a time.
public struct NVSPInit: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_message_init"
    public static let wireSize = 8

    public var minProtocolVersion: NVSPProtocolVersion
    public var maxProtocolVersion: NVSPProtocolVersion

    public init(minProtocolVersion: NVSPProtocolVersion, maxProtocolVersion: NVSPProtocolVersion) {
        self.minProtocolVersion = minProtocolVersion
        self.maxProtocolVersion = maxProtocolVersion
    }

    /// What Linux sends: exactly one version.
    public init(version: NVSPProtocolVersion) { self.init(minProtocolVersion: version, maxProtocolVersion: version) }

    public init(from r: inout WireReader) throws(WireError) {
        minProtocolVersion = NVSPProtocolVersion(rawValue: try r.readUInt32())
        maxProtocolVersion = NVSPProtocolVersion(rawValue: try r.readUInt32())
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(minProtocolVersion.rawValue)
        w.writeUInt32(maxProtocolVersion.rawValue)
    }
}

/// `struct nvsp_message_init_complete`: the host's answer to INIT. Linux reads only `status`; the negotiated
/// version field is deprecated (hosts echo the version) and OpenVMM puts 34 in `max_mdl_chain_len`.
public struct NVSPInitComplete: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_message_init_complete"
    public static let wireSize = 12

    public var negotiatedProtocolVersion: NVSPProtocolVersion
    public var maxMDLChainLength: UInt32
    public var status: NVSPStatus

    public init(negotiatedProtocolVersion: NVSPProtocolVersion, maxMDLChainLength: UInt32 = 0, status: NVSPStatus) {
        self.negotiatedProtocolVersion = negotiatedProtocolVersion
        self.maxMDLChainLength = maxMDLChainLength
        self.status = status
    }

    public init(from r: inout WireReader) throws(WireError) {
        negotiatedProtocolVersion = NVSPProtocolVersion(rawValue: try r.readUInt32())
        maxMDLChainLength = try r.readUInt32()
        status = NVSPStatus(rawValue: try r.readUInt32())
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(negotiatedProtocolVersion.rawValue)
        w.writeUInt32(maxMDLChainLength)
        w.writeUInt32(status.rawValue)
    }
}
