import VMBusWire

// NVSP 6's PacketDirect API. Linux declares the layouts but never sends these; they are carried with their op
// and the raw union so a peer that does is decoded and answered, and a few members are typed.

/// `enum nvsp_6_pd_api_op`
public struct NVSPPacketDirectOperation: RawRepresentable, Hashable, Sendable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `PD_API_OP_CONFIG`
    public static let config = Self(rawValue: 1)
    /// `PD_API_OP_SW_DATAPATH`
    public static let switchDataPath = Self(rawValue: 2)
    /// `PD_API_OP_OPEN_PROVIDER`
    public static let openProvider = Self(rawValue: 3)
    /// `PD_API_OP_CLOSE_PROVIDER`
    public static let closeProvider = Self(rawValue: 4)
    /// `PD_API_OP_CREATE_QUEUE`
    public static let createQueue = Self(rawValue: 5)
    /// `PD_API_OP_FLUSH_QUEUE`
    public static let flushQueue = Self(rawValue: 6)
    /// `PD_API_OP_FREE_QUEUE`
    public static let freeQueue = Self(rawValue: 7)
    /// `PD_API_OP_ALLOC_COM_BUF`
    public static let allocateCommonBuffer = Self(rawValue: 8)
    /// `PD_API_OP_FREE_COM_BUF`
    public static let freeCommonBuffer = Self(rawValue: 9)
    /// `PD_API_OP_MAX`
    public static let max = Self(rawValue: 10)
}

/// `struct nvsp_6_pd_api_req` (packed): op and a 30-byte union, kept raw.
public struct NVSPPacketDirectRequest: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_6_pd_api_req"
    public static let wireSize = 34
    public static let unionSize = 30

    public var operation: NVSPPacketDirectOperation
    /// The union, exactly ``unionSize`` bytes.
    public private(set) var body: [UInt8]

    public init(operation: NVSPPacketDirectOperation) {
        self.operation = operation
        self.body = [UInt8](repeating: 0, count: Self.unionSize)
    }

    /// `config` (PD_API_OP_CONFIG): mmio_pa u64, mmio_len u32, num_subchn u16.
    public var config: (mmioPA: UInt64, mmioLength: UInt32, subchannelCount: UInt16) {
        get { (get64(0), get32(8), get16(12)) }
        set { body = [UInt8](repeating: 0, count: Self.unionSize); put(newValue.mmioPA, 0, 8)
              put(UInt64(newValue.mmioLength), 8, 4); put(UInt64(newValue.subchannelCount), 12, 2) }
    }

    /// `sw_dpath` (PD_API_OP_SW_DATAPATH): host_dpath_is_pd, guest_pd_enabled.
    public var switchDataPath: (hostDataPathIsPD: UInt8, guestPDEnabled: UInt8) {
        get { (body[0], body[1]) }
        set { body = [UInt8](repeating: 0, count: Self.unionSize); body[0] = newValue.0; body[1] = newValue.1 }
    }

    /// The first u32 of every provider and queue member (`prov_id`).
    public var providerID: UInt32 {
        get { get32(0) }
        set { put(UInt64(newValue), 0, 4) }
    }

    /// Reads the op and whatever of the union the message holds; missing bytes read as zero (the union is
    /// only as long as its largest member, and a peer may send less).
    public init(from r: inout WireReader) throws(WireError) {
        operation = NVSPPacketDirectOperation(rawValue: try r.readUInt32())
        body = try r.readBytes(min(r.remaining, Self.unionSize))
        body += [UInt8](repeating: 0, count: Self.unionSize - body.count)
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(operation.rawValue)
        w.writeBytes(body)
    }

    private func get16(_ o: Int) -> UInt16 { UInt16(body[o]) | UInt16(body[o + 1]) << 8 }
    private func get32(_ o: Int) -> UInt32 { UInt32(get16(o)) | UInt32(get16(o + 2)) << 16 }
    private func get64(_ o: Int) -> UInt64 { UInt64(get32(o)) | UInt64(get32(o + 4)) << 32 }
    private mutating func put(_ v: UInt64, _ o: Int, _ n: Int) {
        for i in 0..<n { body[o + i] = UInt8(truncatingIfNeeded: v >> (8 * UInt64(i))) }
    }
}

/// `struct nvsp_6_pd_api_comp` (packed): op, status and a 28-byte union, kept raw.
public struct NVSPPacketDirectComplete: WireCodable, Equatable, Sendable {
    public static let cName = "nvsp_6_pd_api_comp"
    public static let wireSize = 36
    public static let unionSize = 28

    public var operation: NVSPPacketDirectOperation
    public var status: NVSPStatus
    /// The union, exactly ``unionSize`` bytes.
    public private(set) var body: [UInt8]

    public init(operation: NVSPPacketDirectOperation, status: NVSPStatus) {
        self.operation = operation
        self.status = status
        self.body = [UInt8](repeating: 0, count: Self.unionSize)
    }

    /// `config`: num_pd_q u16, num_rss_q u8, is_supported u8, is_enabled u8.
    public var config: (pdQueueCount: UInt16, rssQueueCount: UInt8, isSupported: UInt8, isEnabled: UInt8) {
        get { (UInt16(body[0]) | UInt16(body[1]) << 8, body[2], body[3], body[4]) }
        set {
            body = [UInt8](repeating: 0, count: Self.unionSize)
            body[0] = UInt8(truncatingIfNeeded: newValue.0); body[1] = UInt8(truncatingIfNeeded: newValue.0 >> 8)
            body[2] = newValue.1; body[3] = newValue.2; body[4] = newValue.3
        }
    }

    public init(from r: inout WireReader) throws(WireError) {
        operation = NVSPPacketDirectOperation(rawValue: try r.readUInt32())
        status = NVSPStatus(rawValue: try r.readUInt32())
        body = try r.readBytes(min(r.remaining, Self.unionSize))
        body += [UInt8](repeating: 0, count: Self.unionSize - body.count)
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(operation.rawValue)
        w.writeUInt32(status.rawValue)
        w.writeBytes(body)
    }
}
