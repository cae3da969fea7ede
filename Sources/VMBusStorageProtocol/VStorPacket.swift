import VMBusWire

/// `struct vstor_packet` (packed): the one message of the storage protocol, 64 bytes from Win8 on (48 before).
///
/// The 52 bytes after the header are a union whose meaning the operation (or, for a completion, the request it
/// completes) decides; they are kept raw in ``body`` and read through the typed accessors. Fixed-size storage:
/// the data path encodes and decodes packets without allocating.
public struct VStorPacket: Equatable, Sendable {
    public static let cName = "vstor_packet"
    public static let wireSize = 64
    /// operation, flags, status.
    public static let headerSize = 12
    public static let bodySize = 52
    /// `REQUEST_COMPLETION_FLAG`: Linux sets it on every request.
    public static let requestCompletionFlag: UInt32 = 0x1

    public var operation: VStorOperation
    public var flags: UInt32
    /// NTSTATUS from the host (0 = success).
    public var status: NTStatus
    /// The union, raw.
    public var body: InlineArray<52, UInt8>

    public init(operation: VStorOperation, flags: UInt32 = VStorPacket.requestCompletionFlag,
                status: NTStatus = .success) {
        self.operation = operation
        self.flags = flags
        self.status = status
        self.body = .init(repeating: 0)
    }

    /// A request carrying an SRB (EXECUTE_SRB) or a completion of one (COMPLETE_IO).
    public init(operation: VStorOperation, flags: UInt32 = VStorPacket.requestCompletionFlag,
                status: NTStatus = .success, srb: VMSCSIRequest) {
        self.init(operation: operation, flags: flags, status: status)
        self.srb = srb
    }

    // MARK: The union

    /// `vm_srb`
    public var srb: VMSCSIRequest {
        get { VMSCSIRequest(raw: body) }
        set { body = newValue.raw }
    }

    /// `storage_channel_properties`
    public var properties: StorageChannelProperties {
        get {
            StorageChannelProperties(maxChannelCount: u16(4), flags: u32(8), maxTransferBytes: u32(12))
        }
        set {
            body = .init(repeating: 0)
            put16(newValue.maxChannelCount, at: 4)
            put32(newValue.flags, at: 8)
            put32(newValue.maxTransferBytes, at: 12)
        }
    }

    /// `version`
    public var version: StorageVersionBody {
        get { StorageVersionBody(StorageProtocolVersion(rawValue: u16(0)), revision: u16(2)) }
        set {
            body = .init(repeating: 0)
            put16(newValue.majorMinor.rawValue, at: 0)
            put16(newValue.revision, at: 2)
        }
    }

    /// `sub_channel_count`
    public var subChannelCount: UInt16 {
        get { u16(0) }
        set {
            body = .init(repeating: 0)
            put16(newValue, at: 0)
        }
    }

    // MARK: Encoding

    /// Decodes a packet from the payload in `r`. A shorter payload (a pre-Win8 48-byte packet, or a short one
    /// from a careless peer) reads as zeros past its end, as Hyper-V does; at least the 12-byte header must be
    /// there. Returns the packet; `r` is left after the bytes read.
    public init(from r: inout WireReader) throws(WireError) {
        operation = VStorOperation(rawValue: try r.readUInt32())
        flags = try r.readUInt32()
        status = NTStatus(rawValue: try r.readUInt32())
        body = .init(repeating: 0)
        let n = min(r.remaining, Self.bodySize)
        for i in 0..<n { body[i] = try r.readUInt8() }
    }

    /// Encodes `size` bytes (64, or 48 before Win8; a completion must be exactly as long as its request, so a
    /// host passes the request's length). Longer sizes are zero-padded.
    public func encode(into w: inout WireWriter, size: Int = VStorPacket.wireSize) {
        w.writeUInt32(operation.rawValue)
        w.writeUInt32(flags)
        w.writeUInt32(status.rawValue)
        let n = max(0, min(size - Self.headerSize, Self.bodySize))
        for i in 0..<n { w.writeUInt8(body[i]) }
        if size > Self.wireSize { w.writeZeros(size - Self.wireSize) }
    }

    public var wireBytes: [UInt8] {
        var w = WireWriter(capacity: Self.wireSize)
        encode(into: &w)
        return w.bytes
    }

    public init(wireBytes bytes: [UInt8]) throws(WireError) {
        var r = WireReader(bytes)
        self = try Self(from: &r)
    }

    public static func == (a: Self, b: Self) -> Bool {
        guard a.operation == b.operation, a.flags == b.flags, a.status == b.status else { return false }
        for i in 0..<bodySize where a.body[i] != b.body[i] { return false }
        return true
    }

    // MARK: Body helpers

    private func u16(_ o: Int) -> UInt16 { UInt16(body[o]) | UInt16(body[o + 1]) << 8 }
    private func u32(_ o: Int) -> UInt32 { UInt32(u16(o)) | UInt32(u16(o + 2)) << 16 }
    private mutating func put16(_ v: UInt16, at o: Int) {
        body[o] = UInt8(truncatingIfNeeded: v)
        body[o + 1] = UInt8(truncatingIfNeeded: v >> 8)
    }
    private mutating func put32(_ v: UInt32, at o: Int) {
        put16(UInt16(truncatingIfNeeded: v), at: o)
        put16(UInt16(truncatingIfNeeded: v >> 16), at: o + 2)
    }
}
