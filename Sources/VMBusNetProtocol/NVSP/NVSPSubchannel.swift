import VMBusWire

/// `enum nvsp_subchannel_operation`
public struct NVSPSubchannelOperation: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `NVSP_SUBCHANNEL_NONE`
    public static let none = Self(rawValue: 0)
    /// `NVSP_SUBCHANNEL_ALLOCATE`
    public static let allocate = Self(rawValue: 1)
    /// `NVSP_SUBCHANNEL_MAX`
    public static let max = Self(rawValue: 2)
}

/// `struct nvsp_5_subchannel_request`: the guest asks for `num_subchannels` more channels (vRSS), with a
/// completion requested.
public struct NVSPSubchannelRequest: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_5_subchannel_request"
    public static let wireSize = 8

    public var operation: NVSPSubchannelOperation
    public var subchannelCount: UInt32

    public init(operation: NVSPSubchannelOperation = .allocate, subchannelCount: UInt32) {
        self.operation = operation
        self.subchannelCount = subchannelCount
    }

    public init(from r: inout WireReader) throws(WireError) {
        operation = NVSPSubchannelOperation(rawValue: try r.readUInt32())
        subchannelCount = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(operation.rawValue)
        w.writeUInt32(subchannelCount)
    }
}

/// `struct nvsp_5_subchannel_complete`: how many the host grants (Linux rejects more than it asked for); the
/// offers follow.
public struct NVSPSubchannelComplete: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_5_subchannel_complete"
    public static let wireSize = 8

    public var status: NVSPStatus
    public var subchannelCount: UInt32

    public init(status: NVSPStatus, subchannelCount: UInt32) {
        self.status = status
        self.subchannelCount = subchannelCount
    }

    public init(from r: inout WireReader) throws(WireError) {
        status = NVSPStatus(rawValue: try r.readUInt32())
        subchannelCount = try r.readUInt32()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(status.rawValue)
        w.writeUInt32(subchannelCount)
    }
}
