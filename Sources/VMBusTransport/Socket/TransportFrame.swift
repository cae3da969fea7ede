import VMBusProtocol
import VMBusWire

/// One frame of the socket transport (docs/TRANSPORT.md): the 16-byte SynIC message header
/// (`struct hv_message_header`) followed by `payload_size` bytes. A frame is exactly one SOCK_SEQPACKET
/// message, so frame boundaries are the socket's.
public struct TransportFrame: Equatable, Sendable {
    /// Frame types. 1 is the SynIC VMBus message type; transport-only frames use 0x5642_00xx ("VB").
    public struct FrameType: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        /// `HVMSG_VMBUS`-style channel message: a VMBus channel message of at most 240 bytes.
        public static let channelMessage = Self(rawValue: 1)
        /// G→H: transport version, guest memory size, event-flags page; carries the memfd and the SINT signal socket.
        public static let hello = Self(rawValue: 0x5642_0001)
        /// H→G: the host's transport version, a status and the partition id.
        public static let helloReply = Self(rawValue: 0x5642_0002)
        /// H→G: the doorbell (a signal socket's sending end) for one connection id (HvSignalEvent's target).
        public static let doorbell = Self(rawValue: 0x5642_0003)
        /// H→G: a connection id's doorbell is withdrawn; the guest closes its descriptor.
        public static let doorbellRevoke = Self(rawValue: 0x5642_0004)

        public var isTransportFrame: Bool { rawValue & 0xFFFF_FF00 == 0x5642_0000 }
        public var description: String {
            switch self {
            case .channelMessage: return "CHANNEL_MESSAGE"
            case .hello: return "HELLO"
            case .helloReply: return "HELLO_REPLY"
            case .doorbell: return "DOORBELL"
            case .doorbellRevoke: return "DOORBELL_REVOKE"
            default: return "frame type 0x\(String(rawValue, radix: 16))"
            }
        }
    }

    public static let headerSize = 16
    /// `HV_MESSAGE_PAYLOAD_BYTE_COUNT`
    public static let maxPayload = VMBusSynIC.messagePayloadByteCount
    public static let maxFrameSize = headerSize + maxPayload

    public var type: FrameType
    /// Channel messages G→H: the connection id (HvPostMessage's); otherwise 0.
    public var port: UInt64
    public var payload: [UInt8]

    public init(type: FrameType, port: UInt64 = 0, payload: [UInt8]) {
        self.type = type
        self.port = port
        self.payload = payload
    }

    public var bytes: [UInt8] {
        precondition(payload.count <= Self.maxPayload, "a transport frame carries at most 240 payload bytes")
        var w = WireWriter(capacity: Self.headerSize + payload.count)
        w.writeUInt32(type.rawValue)
        w.writeUInt8(UInt8(payload.count))
        w.writeUInt8(0)  // message_flags: no "message pending" over a socket
        w.writeUInt16(0)
        w.writeUInt64(port)
        w.writeBytes(payload)
        return w.bytes
    }

    /// Parses one received frame; the length must match the header exactly.
    public init(bytes: [UInt8]) throws(TransportError) {
        var r = WireReader(bytes)
        do {
            type = FrameType(rawValue: try r.readUInt32())
            let size = Int(try r.readUInt8())
            _ = try r.readUInt8()
            _ = try r.readUInt16()
            port = try r.readUInt64()
            guard size <= Self.maxPayload, r.remaining == size else {
                throw TransportError.protocolViolation("frame of \(bytes.count) bytes declares a \(size)-byte payload")
            }
            payload = try r.readBytes(size)
        } catch let e as TransportError {
            throw e
        } catch {
            throw .protocolViolation("short frame (\(bytes.count) bytes)")
        }
    }
}

/// The host answered HELLO with a HELLO_REPLY status other than ok.
public struct TransportRefused: Error, Equatable, Sendable, CustomStringConvertible {
    public var status: TransportHelloReply.Status
    public init(status: TransportHelloReply.Status) { self.status = status }
    public var description: String { "the host refused the connection: \(status)" }
}

/// HELLO's payload.
public struct TransportHello: Equatable, Sendable {
    /// The transport protocol version docs/TRANSPORT.md describes. 2: signal sockets instead of eventfds.
    public static let currentVersion: UInt32 = 2
    public static let size = 24

    public var version: UInt32
    public var memoryBytes: UInt64
    /// Guest page holding the SynIC event flags (SINT2's 256 bytes start at byte 512 of it).
    public var eventFlagsPFN: UInt64

    public init(version: UInt32 = currentVersion, memoryBytes: UInt64, eventFlagsPFN: UInt64) {
        self.version = version; self.memoryBytes = memoryBytes; self.eventFlagsPFN = eventFlagsPFN
    }

    public var bytes: [UInt8] {
        var w = WireWriter(capacity: Self.size)
        w.writeUInt32(version); w.writeUInt32(0); w.writeUInt64(memoryBytes); w.writeUInt64(eventFlagsPFN)
        return w.bytes
    }

    public init(bytes: [UInt8]) throws(WireError) {
        var r = WireReader(bytes)
        version = try r.readUInt32(); _ = try r.readUInt32()
        memoryBytes = try r.readUInt64(); eventFlagsPFN = try r.readUInt64()
    }
}

/// HELLO_REPLY's payload.
public struct TransportHelloReply: Equatable, Sendable {
    public struct Status: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
        public var rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let ok = Self(rawValue: 0)
        public static let versionUnsupported = Self(rawValue: 1)
        public static let permissionDenied = Self(rawValue: 2)
        public static let badMemory = Self(rawValue: 3)
        public static let tooManyPartitions = Self(rawValue: 4)
        public static let protocolViolation = Self(rawValue: 5)
        public static let badSignalSocket = Self(rawValue: 6)
        /// Version 1's name for ``badSignalSocket``.
        public static let badEventFD = badSignalSocket
        public static let hostOutOfResources = Self(rawValue: 7)
        public var description: String {
            switch self {
            case .ok: return "ok"
            case .versionUnsupported: return "transport version not supported"
            case .permissionDenied: return "permission denied (peer uid not allowed)"
            case .badMemory: return "guest memory refused (not a sealed memfd of the declared size)"
            case .tooManyPartitions: return "the host serves no more partitions"
            case .protocolViolation: return "transport protocol violation"
            case .badSignalSocket: return "the SINT descriptor is not an AF_UNIX SOCK_STREAM socket"
            case .hostOutOfResources: return "the host is out of resources (threads, descriptors, handshakes)"
            default: return "status \(rawValue)"
            }
        }
    }
    public static let size = 16

    public var version: UInt32
    public var status: Status
    public var partitionID: UInt32

    public init(version: UInt32 = TransportHello.currentVersion, status: Status, partitionID: UInt32) {
        self.version = version; self.status = status; self.partitionID = partitionID
    }

    public var bytes: [UInt8] {
        var w = WireWriter(capacity: Self.size)
        w.writeUInt32(version); w.writeUInt32(status.rawValue); w.writeUInt32(partitionID); w.writeUInt32(0)
        return w.bytes
    }

    public init(bytes: [UInt8]) throws(WireError) {
        var r = WireReader(bytes)
        version = try r.readUInt32(); status = Status(rawValue: try r.readUInt32()); partitionID = try r.readUInt32()
    }
}

/// The payload of DOORBELL and DOORBELL_REVOKE: `connection_id u32 @0, reserved u32 @4`.
public struct TransportDoorbell: Equatable, Sendable {
    public static let size = 8
    public var connectionID: UInt32

    public init(connectionID: UInt32) { self.connectionID = connectionID }

    public var bytes: [UInt8] {
        var w = WireWriter(capacity: Self.size)
        w.writeUInt32(connectionID); w.writeUInt32(0)
        return w.bytes
    }

    /// Accepts the 4-byte form too: only `connection_id` carries meaning.
    public init(bytes: [UInt8]) throws(WireError) {
        connectionID = try WireReader(bytes).getUInt32(at: 0)
    }
}
