import VMBusWire

/// `struct hv_kvp_msg` (packed, 7432 bytes): the KVP message, on VMBus (after `ICMSG_HDR`) and through
/// /dev/vmbus/hv_kvp, where Debian's hv_kvp_daemon reads and writes exactly this struct.
///
/// Both parts are unions. The first 4 bytes are `hv_kvp_hdr` on requests and the daemon's `int error` in
/// its answers; the body is get, set, delete, enumerate, IP settings or the handshake's `hv_kvp_register`,
/// as the operation says. The body is kept raw, as long as the peer sent it (hosts send shorter messages
/// than the union, and Linux checks no length here), and each member accessor checks that its member is
/// all there. Strings are UTF-16LE on VMBus and UTF-8 for the daemon (see ``KVPExchangeValue``).
public struct KVPMessage: Equatable, Sendable {
    public static let cName = "hv_kvp_msg"
    public static let wireSize = 7432
    /// The body union: as large as its largest member, `hv_kvp_ipaddr_value`.
    public static let bodySize = 7428

    /// The first 4 bytes, little-endian: `kvp_hdr` or `error`.
    public var head: UInt32
    /// The body bytes received or set, at most ``bodySize``.
    public var body: [UInt8]

    public init(header: KVPHeader, body: [UInt8] = []) {
        head = 0
        self.body = Array(body.prefix(Self.bodySize))
        kvpHeader = header
    }

    public init(operation: KVPOperation, pool: KVPPool, member: some WireEncodable) {
        self.init(header: KVPHeader(operation: operation, pool: pool), body: member.wireBytes)
    }

    /// `kvp_hdr`
    public var kvpHeader: KVPHeader {
        get {
            KVPHeader(operation: KVPOperation(rawValue: UInt8(truncatingIfNeeded: head)),
                      pool: KVPPool(rawValue: UInt8(truncatingIfNeeded: head >> 8)),
                      pad: UInt16(truncatingIfNeeded: head >> 16))
        }
        set {
            head = UInt32(newValue.operation.rawValue) | UInt32(newValue.pool.rawValue) << 8
                | UInt32(newValue.pad) << 16
        }
    }

    /// `error`: the daemon's answer, over the same bytes as `kvp_hdr`.
    public var error: ICStatus {
        get { ICStatus(rawValue: head) }
        set { head = newValue.rawValue }
    }

    // MARK: The body union

    private func member<T: WireDecodable>(_ type: T.Type) throws(WireError) -> T {
        var r = WireReader(body)
        return try T(from: &r)
    }

    /// `body.kvp_get`
    public func kvpGet() throws(WireError) -> KVPExchangeValue { try member(KVPExchangeValue.self) }
    /// `body.kvp_set`
    public func kvpSet() throws(WireError) -> KVPExchangeValue { try member(KVPExchangeValue.self) }
    /// `body.kvp_delete`
    public func kvpDelete() throws(WireError) -> KVPDelete { try member(KVPDelete.self) }
    /// `body.kvp_enum_data`
    public func kvpEnumData() throws(WireError) -> KVPEnumerate { try member(KVPEnumerate.self) }
    /// `body.kvp_ip_val` (the daemon's form; VMBus carries ``KVPIPMessage`` instead).
    public func kvpIPVal() throws(WireError) -> KVPIPAddressValue { try member(KVPIPAddressValue.self) }
    /// `body.kvp_register`
    public func kvpRegister() throws(WireError) -> KVPRegister { try member(KVPRegister.self) }

    /// Writes `value` at the start of the body, keeping any longer body's tail (a union member overwrites
    /// only its own bytes).
    public mutating func setBody(_ value: some WireEncodable) {
        let bytes = Array(value.wireBytes.prefix(Self.bodySize))
        if body.count < bytes.count { body.append(contentsOf: repeatElement(0, count: bytes.count - body.count)) }
        body.replaceSubrange(0..<bytes.count, with: bytes)
    }

    // MARK: Wire

    /// Decodes the 4-byte head (required) and whatever body follows, up to ``bodySize`` bytes.
    public init(from r: inout WireReader) throws(WireError) {
        head = try r.readUInt32()
        body = try r.readBytes(min(r.remaining, Self.bodySize))
    }

    /// Encodes `size` bytes: 7432 for the daemon, which wants the whole struct; a VMBus answer is as long as
    /// its request. The body is zero-padded or cut to fit.
    public func encode(into w: inout WireWriter, size: Int) {
        let bodyBytes = max(0, min(size, Self.wireSize) - 4)
        if size >= 4 {
            w.writeUInt32(head)
        } else {
            for i in 0..<max(0, size) { w.writeUInt8(UInt8(truncatingIfNeeded: head >> (8 * UInt32(i)))) }
        }
        w.writeField(body, bodyBytes)
    }

    /// The whole struct, 7432 bytes.
    public func encode(into w: inout WireWriter) { encode(into: &w, size: Self.wireSize) }

    public var wireBytes: [UInt8] {
        var w = WireWriter(capacity: Self.wireSize)
        encode(into: &w)
        return w.bytes
    }
}

extension KVPMessage: WireDecodable, WireEncodable {}
