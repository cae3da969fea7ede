import VMBusWire

/// `struct rndis_initialize_request`: the first RNDIS message. Linux sends version 1.0 and a 16 KiB
/// `max_xfer_size`.
public struct RNDISInitializeRequest: WireCodable, Equatable, Sendable {
    public static let cName = "rndis_initialize_request"
    public static let wireSize = 16
    /// `RNDIS_MAJOR_VERSION`, `RNDIS_MINOR_VERSION`
    public static let majorVersion: UInt32 = 1
    public static let minorVersion: UInt32 = 0

    public var requestID: UInt32
    public var majorVersion: UInt32
    public var minorVersion: UInt32
    public var maxTransferSize: UInt32

    public init(requestID: UInt32, majorVersion: UInt32 = RNDISInitializeRequest.majorVersion,
                minorVersion: UInt32 = RNDISInitializeRequest.minorVersion, maxTransferSize: UInt32 = 0x4000) {
        self.requestID = requestID
        self.majorVersion = majorVersion
        self.minorVersion = minorVersion
        self.maxTransferSize = maxTransferSize
    }

    public init(from r: inout WireReader) throws(WireError) {
        requestID = try r.readUInt32()
        majorVersion = try r.readUInt32()
        minorVersion = try r.readUInt32()
        maxTransferSize = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(requestID)
        w.writeUInt32(majorVersion)
        w.writeUInt32(minorVersion)
        w.writeUInt32(maxTransferSize)
    }
}

/// `struct rndis_initialize_complete`. The guest batches up to `max_pkt_per_msg` PACKET messages per send
/// section, each aligned to `1 << pkt_alignment_factor` (OpenVMM: 8 and 3).
public struct RNDISInitializeComplete: WireCodable, Equatable, Sendable {
    public static let cName = "rndis_initialize_complete"
    public static let wireSize = 44
    /// `RNDIS_DF_CONNECTIONLESS`
    public static let deviceFlagConnectionless: UInt32 = 0x1
    /// `RNDIS_MEDIUM_802_3`
    public static let medium802_3: UInt32 = 0

    public var requestID: UInt32
    public var status: RNDISStatus
    public var majorVersion: UInt32
    public var minorVersion: UInt32
    public var deviceFlags: UInt32
    public var medium: UInt32
    public var maxPacketsPerMessage: UInt32
    public var maxTransferSize: UInt32
    public var packetAlignmentFactor: UInt32
    public var afListOffset: UInt32
    public var afListSize: UInt32

    public init(requestID: UInt32, status: RNDISStatus, majorVersion: UInt32 = RNDISInitializeRequest.majorVersion,
                minorVersion: UInt32 = RNDISInitializeRequest.minorVersion,
                deviceFlags: UInt32 = RNDISInitializeComplete.deviceFlagConnectionless,
                medium: UInt32 = RNDISInitializeComplete.medium802_3, maxPacketsPerMessage: UInt32,
                maxTransferSize: UInt32, packetAlignmentFactor: UInt32, afListOffset: UInt32 = 0,
                afListSize: UInt32 = 0) {
        self.requestID = requestID
        self.status = status
        self.majorVersion = majorVersion
        self.minorVersion = minorVersion
        self.deviceFlags = deviceFlags
        self.medium = medium
        self.maxPacketsPerMessage = maxPacketsPerMessage
        self.maxTransferSize = maxTransferSize
        self.packetAlignmentFactor = packetAlignmentFactor
        self.afListOffset = afListOffset
        self.afListSize = afListSize
    }

    public init(from r: inout WireReader) throws(WireError) {
        requestID = try r.readUInt32()
        status = RNDISStatus(rawValue: try r.readUInt32())
        majorVersion = try r.readUInt32()
        minorVersion = try r.readUInt32()
        deviceFlags = try r.readUInt32()
        medium = try r.readUInt32()
        maxPacketsPerMessage = try r.readUInt32()
        maxTransferSize = try r.readUInt32()
        packetAlignmentFactor = try r.readUInt32()
        afListOffset = try r.readUInt32()
        afListSize = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        for v in [requestID, status.rawValue, majorVersion, minorVersion, deviceFlags, medium, maxPacketsPerMessage,
                  maxTransferSize, packetAlignmentFactor, afListOffset, afListSize] { w.writeUInt32(v) }
    }
}
