import VMBusWire

/// SynIC facts VMBus depends on (Hyper-V TLFS; Linux `include/asm-generic/hyperv-tlfs.h`, `drivers/hv/hyperv_vmbus.h`).
public enum VMBusSynIC {
    /// `VMBUS_MESSAGE_SINT`: the SINT carrying VMBus control messages and channel events.
    public static let messageSINT: UInt8 = 2
    /// `HV_SYNIC_SINT_COUNT`
    public static let sintCount = 16
    /// `HV_MESSAGE_SIZE`: one message slot.
    public static let messageSize = 256
    /// `HV_MESSAGE_PAYLOAD_BYTE_COUNT`
    public static let messagePayloadByteCount = 240
    /// `HV_EVENT_FLAGS_COUNT`: event flags per SINT (bit n = relid n).
    public static let eventFlagsCount = 2048
    /// `HVCALL_POST_MESSAGE`
    public static let hypercallPostMessage: UInt16 = 0x5C
    /// `HVCALL_SIGNAL_EVENT`
    public static let hypercallSignalEvent: UInt16 = 0x5D
}

/// `enum hv_message_type`: the `message_type` of a SynIC message slot. Open.
public struct HvMessageType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// `HVMSG_NONE`: the slot is empty.
    public static let none = Self(rawValue: 0)
    /// A VMBus channel message. Linux has no name for it: `vmbus_post_msg` passes the literal 1 to
    /// `hv_post_message`, and the guest ISR accepts any type other than the timer message in SINT 2.
    public static let vmbusChannelMessage = Self(rawValue: 1)
    /// `HVMSG_UNMAPPED_GPA`
    public static let unmappedGPA = Self(rawValue: 0x8000_0000)
    /// `HVMSG_GPA_INTERCEPT`
    public static let gpaIntercept = Self(rawValue: 0x8000_0001)
    /// `HVMSG_TIMER_EXPIRED`: legacy synthetic timers, delivered on the VMBus SINT too.
    public static let timerExpired = Self(rawValue: 0x8000_0010)
    /// `HVMSG_INVALID_VP_REGISTER_VALUE`
    public static let invalidVPRegisterValue = Self(rawValue: 0x8000_0020)
    /// `HVMSG_UNRECOVERABLE_EXCEPTION`
    public static let unrecoverableException = Self(rawValue: 0x8000_0021)
    /// `HVMSG_UNSUPPORTED_FEATURE`
    public static let unsupportedFeature = Self(rawValue: 0x8000_0022)
    /// `HVMSG_EVENTLOG_BUFFERCOMPLETE`
    public static let eventlogBuffercomplete = Self(rawValue: 0x8000_0040)
    /// `HVMSG_X64_IOPORT_INTERCEPT`
    public static let x64IOPortIntercept = Self(rawValue: 0x8001_0000)
    /// `HVMSG_X64_MSR_INTERCEPT`
    public static let x64MSRIntercept = Self(rawValue: 0x8001_0001)
    /// `HVMSG_X64_CPUID_INTERCEPT`
    public static let x64CPUIDIntercept = Self(rawValue: 0x8001_0002)
    /// `HVMSG_X64_EXCEPTION_INTERCEPT`
    public static let x64ExceptionIntercept = Self(rawValue: 0x8001_0003)
    /// `HVMSG_X64_APIC_EOI`
    public static let x64APICEOI = Self(rawValue: 0x8001_0004)
    /// `HVMSG_X64_LEGACY_FP_ERROR`
    public static let x64LegacyFPError = Self(rawValue: 0x8001_0005)

    public var description: String {
        switch self {
        case .none: return "HVMSG_NONE"
        case .vmbusChannelMessage: return "VMBus channel message"
        case .timerExpired: return "HVMSG_TIMER_EXPIRED"
        default: return "message type 0x\(String(rawValue, radix: 16))"
        }
    }
}

/// `union hv_message_flags`
public struct HvMessageFlags: OptionSet, Hashable, Sendable {
    public var rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// `msg_pending`: more messages are queued behind this one; write EOM after freeing the slot.
    public static let messagePending = Self(rawValue: 0x1)
}

/// `struct hv_message_header` (16 bytes).
public struct HvMessageHeader: WireCodable, Equatable, Sendable {
    public static let wireSize = 16
    public static let cName = "hv_message_header"

    /// `message_type`
    public var messageType: HvMessageType
    /// `payload_size`: valid payload bytes (≤ 240 from a well-behaved sender).
    public var payloadSize: UInt8
    /// `message_flags`
    public var messageFlags: HvMessageFlags
    /// `sender` (union with `port`; VMBus clients do not use it).
    public var sender: UInt64

    public init(messageType: HvMessageType, payloadSize: UInt8, messageFlags: HvMessageFlags = [], sender: UInt64 = 0) {
        self.messageType = messageType
        self.payloadSize = payloadSize
        self.messageFlags = messageFlags
        self.sender = sender
    }

    /// `port.u.id`: the low 24 bits of ``sender``.
    public var portID: UInt32 { UInt32(truncatingIfNeeded: sender) & 0x00FF_FFFF }

    public init(from r: inout WireReader) throws(WireError) {
        messageType = HvMessageType(rawValue: try r.readUInt32())
        payloadSize = try r.readUInt8()
        messageFlags = HvMessageFlags(rawValue: try r.readUInt8())
        try r.skip(2)  // reserved
        sender = try r.readUInt64()
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(messageType.rawValue)
        w.writeUInt8(payloadSize)
        w.writeUInt8(messageFlags.rawValue)
        w.writeUInt16(0)
        w.writeUInt64(sender)
    }
}

/// `struct hv_message` (256 bytes): one SynIC message slot.
public struct HvMessage: WireCodable, Equatable, Sendable {
    public static let wireSize = 256
    public static let cName = "hv_message"
    /// `HV_MESSAGE_PAYLOAD_BYTE_COUNT`
    public static let payloadByteCount = 240

    public var header: HvMessageHeader
    /// `u.payload`: always exactly 240 bytes (assignments are padded with zeros or truncated).
    public var payload: [UInt8] {
        didSet { if payload.count != VMBusSynIC.messagePayloadByteCount { payload = exactly(VMBusSynIC.messagePayloadByteCount, payload) } }
    }

    public init(header: HvMessageHeader, payload: [UInt8]) {
        self.header = header
        self.payload = exactly(VMBusSynIC.messagePayloadByteCount, payload)
    }

    /// A VMBus channel message slot carrying `message` (≤ 240 bytes, the caller's responsibility).
    public init(channelMessage message: [UInt8], pending: Bool = false, sender: UInt64 = 0) {
        precondition(message.count <= VMBusSynIC.messagePayloadByteCount, "channel message longer than 240 bytes")
        self.init(
            header: HvMessageHeader(
                messageType: .vmbusChannelMessage, payloadSize: UInt8(message.count),
                messageFlags: pending ? .messagePending : [], sender: sender),
            payload: message)
    }

    /// The first `payload_size` bytes of the payload; throws if `payload_size` exceeds 240 (Linux discards
    /// such messages).
    public func validPayload() throws(WireError) -> [UInt8] {
        let size = Int(header.payloadSize)
        guard size <= VMBusSynIC.messagePayloadByteCount else {
            throw .countTooLarge(field: "hv_message_header.payload_size", count: size, limit: VMBusSynIC.messagePayloadByteCount)
        }
        return Array(payload[0..<size])
    }

    public init(from r: inout WireReader) throws(WireError) {
        header = try HvMessageHeader(from: &r)
        payload = try r.readBytes(VMBusSynIC.messagePayloadByteCount)
    }

    public func encode(into w: inout WireWriter) {
        header.encode(into: &w)
        w.writeBytes(exactly(VMBusSynIC.messagePayloadByteCount, payload))
    }
}

/// `struct hv_input_post_message` (256 bytes): the input page of `HvPostMessage`.
public struct HvInputPostMessage: WireCodable, Equatable, Sendable {
    public static let wireSize = 256
    public static let cName = "hv_input_post_message"

    /// `connectionid` (`union hv_connection_id`; the hypervisor uses the low 24 bits).
    public var connectionID: UInt32
    /// `message_type`: always ``HvMessageType/vmbusChannelMessage`` for VMBus.
    public var messageType: HvMessageType
    /// `payload_size`: ≤ 240.
    public var payloadSize: UInt32
    /// `payload`: always exactly 240 bytes (assignments are padded with zeros or truncated).
    public var payload: [UInt8] {
        didSet { if payload.count != VMBusSynIC.messagePayloadByteCount { payload = exactly(VMBusSynIC.messagePayloadByteCount, payload) } }
    }

    public init(connectionID: UInt32, messageType: HvMessageType = .vmbusChannelMessage, payloadSize: UInt32, payload: [UInt8]) {
        self.connectionID = connectionID
        self.messageType = messageType
        self.payloadSize = payloadSize
        self.payload = exactly(VMBusSynIC.messagePayloadByteCount, payload)
    }

    /// Posts `message` (≤ 240 bytes, the caller's responsibility) as a VMBus channel message.
    public init(connectionID: UInt32, channelMessage message: [UInt8]) {
        precondition(message.count <= VMBusSynIC.messagePayloadByteCount, "channel message longer than 240 bytes")
        self.init(connectionID: connectionID, payloadSize: UInt32(message.count), payload: message)
    }

    /// The first `payload_size` bytes; throws if `payload_size` exceeds 240 (the hypervisor fails such a post).
    public func validPayload() throws(WireError) -> [UInt8] {
        guard payloadSize <= UInt32(VMBusSynIC.messagePayloadByteCount) else {
            throw .countTooLarge(field: "hv_input_post_message.payload_size", count: Int(payloadSize), limit: VMBusSynIC.messagePayloadByteCount)
        }
        return Array(payload[0..<Int(payloadSize)])
    }

    public init(from r: inout WireReader) throws(WireError) {
        connectionID = try r.readUInt32()
        try r.skip(4)  // reserved
        messageType = HvMessageType(rawValue: try r.readUInt32())
        payloadSize = try r.readUInt32()
        payload = try r.readBytes(VMBusSynIC.messagePayloadByteCount)
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(connectionID)
        w.writeUInt32(0)
        w.writeUInt32(messageType.rawValue)
        w.writeUInt32(payloadSize)
        w.writeBytes(exactly(VMBusSynIC.messagePayloadByteCount, payload))
    }
}
