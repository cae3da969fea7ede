import VMBusWire

/// `enum vmbus_packet_type`: the type field of a ring packet. Open: an unknown value survives into errors.
public struct VMBusPacketType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt16
    @inlinable public init(rawValue: UInt16) { self.rawValue = rawValue }

    // The four supported types and the descriptor accessors below are inlinable: every received packet is
    // validated against them, and a cross-module `static let` costs a call and a once-check per use
    // (Scripts/callgrind-ring).

    /// `VM_PKT_INVALID`
    public static let invalid = Self(rawValue: 0)
    /// `VM_PKT_DATA_INBAND`
    @inlinable public static var dataInband: Self { Self(rawValue: 6) }
    /// `VM_PKT_DATA_USING_XFER_PAGES`
    @inlinable public static var dataUsingXferPages: Self { Self(rawValue: 7) }
    /// `VM_PKT_DATA_USING_GPA_DIRECT`
    @inlinable public static var dataUsingGPADirect: Self { Self(rawValue: 9) }
    /// `VM_PKT_COMP`
    @inlinable public static var completion: Self { Self(rawValue: 11) }

    // Types no driver in scope uses; receivers reject them (``isSupported`` is false).
    /// `VM_PKT_SYNCH`
    public static let synch = Self(rawValue: 1)
    /// `VM_PKT_ADD_XFER_PAGESET`
    public static let addXferPageset = Self(rawValue: 2)
    /// `VM_PKT_RM_XFER_PAGESET`
    public static let rmXferPageset = Self(rawValue: 3)
    /// `VM_PKT_ESTABLISH_GPADL`
    public static let establishGPADL = Self(rawValue: 4)
    /// `VM_PKT_TEARDOWN_GPADL`
    public static let teardownGPADL = Self(rawValue: 5)
    /// `VM_PKT_DATA_USING_GPADL`
    public static let dataUsingGPADL = Self(rawValue: 8)
    /// `VM_PKT_CANCEL_REQUEST`
    public static let cancelRequest = Self(rawValue: 10)
    /// `VM_PKT_DATA_USING_ADDITIONAL_PKT`
    public static let dataUsingAdditionalPkt = Self(rawValue: 12)
    /// `VM_PKT_ADDITIONAL_DATA`
    public static let additionalData = Self(rawValue: 13)

    /// The types this stack sends and accepts; every other value is rejected, as OpenVMM does.
    @inlinable public var isSupported: Bool {
        self == .dataInband || self == .dataUsingXferPages || self == .dataUsingGPADirect || self == .completion
    }

    public var description: String {
        switch self {
        case .dataInband: return "DATA_INBAND"
        case .dataUsingXferPages: return "DATA_USING_XFER_PAGES"
        case .dataUsingGPADirect: return "DATA_USING_GPA_DIRECT"
        case .completion: return "COMP"
        default: return "type \(rawValue)"
        }
    }
}

/// `struct vmpacket_descriptor`: the 16 bytes at the start of every ring packet.
public struct PacketDescriptor: WireCodable, Equatable, Sendable {
    public static let wireSize = 16
    public static let cName = "vmpacket_descriptor"
    /// `VMBUS_DATA_PACKET_FLAG_COMPLETION_REQUESTED`
    @inlinable public static var flagCompletionRequested: UInt16 { 1 }

    public var type: VMBusPacketType
    /// Payload start in 8-byte units from the packet start.
    public var offset8: UInt16
    /// Packet length without the trailer, in 8-byte units.
    public var len8: UInt16
    public var flags: UInt16
    public var transactionID: UInt64

    @inlinable
    public init(type: VMBusPacketType, offset8: UInt16, len8: UInt16, flags: UInt16, transactionID: UInt64) {
        self.type = type; self.offset8 = offset8; self.len8 = len8; self.flags = flags
        self.transactionID = transactionID
    }

    public init(from r: inout WireReader) throws(WireError) {
        type = VMBusPacketType(rawValue: try r.readUInt16())
        offset8 = try r.readUInt16()
        len8 = try r.readUInt16()
        flags = try r.readUInt16()
        transactionID = try r.readUInt64()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt16(type.rawValue)
        w.writeUInt16(offset8)
        w.writeUInt16(len8)
        w.writeUInt16(flags)
        w.writeUInt64(transactionID)
    }

    @inlinable public var completionRequested: Bool { flags & Self.flagCompletionRequested != 0 }
    /// Bytes from the packet start to the payload.
    @inlinable public var payloadOffset: Int { Int(offset8) * 8 }
    /// Packet length in bytes, without the 8-byte trailer.
    @inlinable public var totalLength: Int { Int(len8) * 8 }
    /// Payload bytes (a multiple of 8; the device protocol carries the exact length). 0 if `len8 < offset8`.
    public var payloadLength: Int { max(0, totalLength - payloadOffset) }
    /// Where the payload sits in the packet. Empty if `len8 < offset8` (which ``validate()`` rejects).
    public var payloadRange: Range<Int> { payloadOffset..<max(payloadOffset, totalLength) }

    /// Checks the rules every receiver applies before trusting the descriptor: a known type, `offset8 >= 2`,
    /// `len8 >= offset8`, and no flag other than COMPLETION_REQUESTED.
    @inlinable @inline(__always)
    public func validate() throws(WireError) {
        guard type.isSupported else { throw .invalidValue(field: "vmpacket_descriptor.type", value: UInt64(type.rawValue)) }
        guard offset8 >= 2 else { throw .invalidValue(field: "vmpacket_descriptor.offset8", value: UInt64(offset8)) }
        guard len8 >= offset8 else { throw .invalidValue(field: "vmpacket_descriptor.len8", value: UInt64(len8)) }
        guard flags & ~Self.flagCompletionRequested == 0 else {
            throw .invalidValue(field: "vmpacket_descriptor.flags", value: UInt64(flags))
        }
    }
}
