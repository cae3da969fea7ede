import VMBusWire

/// Which side of Linux's KVP driver a message is on.
///
/// On VMBus the IP operations carry ``KVPIPMessage`` (settings at byte 2) and strings are UTF-16LE;
/// through /dev/vmbus/hv_kvp every operation is an ``KVPMessage`` (settings at byte 4) with UTF-8 strings.
public enum KVPMessageForm: Sendable, Hashable {
    case vmbus
    case daemon

    /// How the form's strings are encoded.
    public var encoding: ICStringEncoding { self == .vmbus ? .utf16LE : .utf8 }
}

/// A KVP request after dispatch on `kvp_hdr.operation`, its union member decoded and checked: the
/// ICMSGTYPE_KVPEXCHANGE body a host sends, or the `hv_kvp_msg` Linux hands its daemon.
///
/// Parsing checks what a careful receiver needs before it acts: the operation is one of the six, the pool
/// of a key operation is one of the five, the member is all there, and `key_size` and `value_size` stay
/// inside their arrays. Strings stay raw; read them with the members' accessors, which check termination.
/// The daemon handshake (KVP_OP_REGISTER1, `hv_kvp_register`) is not a request.
public enum KVPRequest: Equatable, Sendable {
    /// `KVP_OP_GET`: `body.kvp_get`.
    case get(pool: KVPPool, KVPExchangeValue)
    /// `KVP_OP_SET`: `body.kvp_set`.
    case set(pool: KVPPool, KVPExchangeValue)
    /// `KVP_OP_DELETE`: `body.kvp_delete`.
    case delete(pool: KVPPool, KVPDelete)
    /// `KVP_OP_ENUMERATE`: `body.kvp_enum_data`.
    case enumerate(pool: KVPPool, KVPEnumerate)
    /// `KVP_OP_GET_IP_INFO`. Its pool is carried but not checked: Linux never reads it for IP operations.
    case getIPInfo(KVPIPMessage)
    /// `KVP_OP_SET_IP_INFO`, pool as for ``getIPInfo(_:)``.
    case setIPInfo(KVPIPMessage)

    /// Parses a body in `form`.
    ///
    /// Throws `.truncated` when the body is shorter than the operation's member (Linux 6.12 checks no KVP
    /// length and would read stale buffer bytes), ``WireError/invalidValue(field:value:)`` for an unknown
    /// operation or a pool of 5 or more, and ``WireError/countTooLarge(field:count:limit:)`` for a
    /// `key_size` over 512 or a `value_size` over 2048.
    public init(body: [UInt8], form: KVPMessageForm = .vmbus) throws(WireError) {
        let message = try KVPMessage(wireBytes: body)
        let header = message.kvpHeader
        switch header.operation {
        case .get: self = .get(pool: try Self.checked(header.pool), try Self.checked(message.kvpGet()))
        case .set: self = .set(pool: try Self.checked(header.pool), try Self.checked(message.kvpSet()))
        case .delete:
            let member = try message.kvpDelete()
            try Self.check("key_size", member.keySize, KVPExchangeValue.maxKeySize)
            self = .delete(pool: try Self.checked(header.pool), member)
        case .enumerate:
            let member = try message.kvpEnumData()
            _ = try Self.checked(member.data)
            self = .enumerate(pool: try Self.checked(header.pool), member)
        case .getIPInfo, .setIPInfo:
            let ip: KVPIPMessage
            switch form {
            case .vmbus: ip = try KVPIPMessage(wireBytes: body)
            case .daemon:
                ip = KVPIPMessage(operation: header.operation, pool: header.pool, kvpIPVal: try message.kvpIPVal())
            }
            self = header.operation == .getIPInfo ? .getIPInfo(ip) : .setIPInfo(ip)
        default:
            throw .invalidValue(field: "kvp_hdr.operation", value: UInt64(header.operation.rawValue))
        }
    }

    public var operation: KVPOperation {
        switch self {
        case .get: return .get
        case .set: return .set
        case .delete: return .delete
        case .enumerate: return .enumerate
        case .getIPInfo: return .getIPInfo
        case .setIPInfo: return .setIPInfo
        }
    }

    public var pool: KVPPool {
        switch self {
        case .get(let pool, _), .set(let pool, _): return pool
        case .delete(let pool, _): return pool
        case .enumerate(let pool, _): return pool
        case .getIPInfo(let ip), .setIPInfo(let ip): return ip.pool
        }
    }

    /// The body bytes in `form`: the whole `hv_kvp_msg` (7432 bytes), or on VMBus for the IP operations the
    /// whole `hv_kvp_ip_msg` (7428 bytes).
    public func wireBytes(form: KVPMessageForm = .vmbus) -> [UInt8] {
        let header = KVPHeader(operation: operation, pool: pool)
        switch self {
        case .get(_, let v), .set(_, let v): return KVPMessage(header: header, body: v.wireBytes).wireBytes
        case .delete(_, let d): return KVPMessage(header: header, body: d.wireBytes).wireBytes
        case .enumerate(_, let e): return KVPMessage(header: header, body: e.wireBytes).wireBytes
        case .getIPInfo(let ip), .setIPInfo(let ip):
            if form == .vmbus { return ip.wireBytes }
            return KVPMessage(header: header, body: ip.kvpIPVal.wireBytes).wireBytes
        }
    }

    private static func checked(_ pool: KVPPool) throws(WireError) -> KVPPool {
        guard pool.isValid else { throw .invalidValue(field: "kvp_hdr.pool", value: UInt64(pool.rawValue)) }
        return pool
    }

    private static func checked(_ value: KVPExchangeValue) throws(WireError) -> KVPExchangeValue {
        try check("key_size", value.keySize, KVPExchangeValue.maxKeySize)
        try check("value_size", value.valueSize, KVPExchangeValue.maxValueSize)
        return value
    }

    private static func check(_ field: String, _ size: UInt32, _ limit: Int) throws(WireError) {
        guard Int(size) <= limit else { throw .countTooLarge(field: field, count: Int(size), limit: limit) }
    }
}
