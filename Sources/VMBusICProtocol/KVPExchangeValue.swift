import VMBusWire

/// `struct hv_kvp_exchg_msg_value` (packed, 2572 bytes): a key and its value. It is all of
/// `hv_kvp_msg_get` and `hv_kvp_msg_set`, and follows the index in `hv_kvp_msg_enumerate`.
///
/// On VMBus the key and a REG_SZ value are UTF-16LE and the sizes count bytes with the NUL. Through
/// /dev/vmbus/hv_kvp (include/uapi/linux/hyperv.h, Debian's hv_kvp_daemon) the same struct carries UTF-8:
/// Linux converts both ways, and turns REG_U32/REG_U64 values into decimal strings for the daemon. Pass the
/// side's ``ICStringEncoding`` to the string helpers.
public struct KVPExchangeValue: Equatable, Sendable, WireCodable {
    public static let cName = "hv_kvp_exchg_msg_value"
    public static let wireSize = 2572
    /// `HV_KVP_EXCHANGE_MAX_KEY_SIZE`
    public static let maxKeySize = 512
    /// `HV_KVP_EXCHANGE_MAX_VALUE_SIZE`
    public static let maxValueSize = 2048

    public var valueType: KVPValueType
    /// Bytes of `key` in use, NUL included: the peer's word, checked when the key is read.
    public var keySize: UInt32
    /// Bytes of `value` in use, NUL included for strings: the peer's word, checked when the value is read.
    public var valueSize: UInt32
    /// `key[512]`
    public var key: [UInt8]
    /// `value[2048]`, which `value_u32` and `value_u64` overlay.
    public var value: [UInt8]

    public init(valueType: KVPValueType = .sz, keySize: UInt32 = 0, valueSize: UInt32 = 0,
                key: [UInt8] = [], value: [UInt8] = []) {
        self.valueType = valueType
        self.keySize = keySize
        self.valueSize = valueSize
        self.key = fixedField(key, Self.maxKeySize)
        self.value = fixedField(value, Self.maxValueSize)
    }

    /// A REG_SZ pair in `encoding`, sizes set; over-long strings throw unless `overflow` is `.truncate`.
    public init(key k: String, value v: String, encoding: ICStringEncoding,
                overflow: ICStringOverflow = .reject) throws(WireError) {
        self.init()
        try setKey(k, encoding: encoding, overflow: overflow)
        try setStringValue(v, encoding: encoding, overflow: overflow)
    }

    // MARK: Strings

    /// The key, read through `key_size`. A `key_size` over 512 throws (Linux 6.12 passes it on as a count of
    /// UTF-16 units and so can read past the key); so does a key without its NUL unless `termination` is
    /// `.tolerated`.
    public func keyString(encoding: ICStringEncoding,
                          termination: ICStringTermination = .required) throws(WireError) -> String {
        try ICString.decode(key, size: Int(keySize), as: encoding, termination: termination, fieldName: "key_size")
    }

    public mutating func setKey(_ s: String, encoding: ICStringEncoding,
                                overflow: ICStringOverflow = .reject) throws(WireError) {
        (key, keySize) = try Self.field(s, encoding, Self.maxKeySize, overflow, "key")
    }

    /// A REG_SZ value, read through `value_size` (over 2048 throws; checked as ``keyString(encoding:termination:)``).
    public func stringValue(encoding: ICStringEncoding,
                            termination: ICStringTermination = .required) throws(WireError) -> String {
        try ICString.decode(value, size: Int(valueSize), as: encoding, termination: termination,
                            fieldName: "value_size")
    }

    /// Stores a REG_SZ value and sets `value_type`.
    public mutating func setStringValue(_ s: String, encoding: ICStringEncoding,
                                        overflow: ICStringOverflow = .reject) throws(WireError) {
        (value, valueSize) = try Self.field(s, encoding, Self.maxValueSize, overflow, "value")
        valueType = .sz
    }

    /// `s` encoded into an array of `capacity` bytes, with the size its `*_size` member reports.
    static func field(_ s: String, _ encoding: ICStringEncoding, _ capacity: Int, _ overflow: ICStringOverflow,
                      _ name: String) throws(WireError) -> ([UInt8], UInt32) {
        let (bytes, size) = try ICString.encode(s, as: encoding, capacity: capacity, overflow: overflow, field: name)
        return (bytes, UInt32(size))
    }

    /// `value_u32` (0 if `value` was replaced by fewer than 4 bytes).
    public var valueU32: UInt32 {
        get { (try? WireReader(value).getUInt32(at: 0)) ?? 0 }
        set { setLeadingValueBytes(newValue.littleEndianBytes) }
    }

    /// `value_u64` (0 if `value` was replaced by fewer than 8 bytes).
    public var valueU64: UInt64 {
        get { (try? WireReader(value).getUInt64(at: 0)) ?? 0 }
        set { setLeadingValueBytes(newValue.littleEndianBytes) }
    }

    private mutating func setLeadingValueBytes(_ bytes: [UInt8]) {
        value = fixedField(value, Self.maxValueSize)
        value.replaceSubrange(0..<bytes.count, with: bytes)
    }

    /// The value as Linux hands a host's SET to its daemon: REG_SZ converted from UTF-16, REG_U32 and REG_U64
    /// as decimal text. Other types throw `.invalidValue` (Linux leaves the daemon's value empty).
    public func daemonValueString() throws(WireError) -> String {
        switch valueType {
        case .sz: return try stringValue(encoding: .utf16LE, termination: .tolerated)
        case .u32: return String(valueU32)
        case .u64: return String(valueU64)
        default: throw .invalidValue(field: "value_type", value: UInt64(valueType.rawValue))
        }
    }

    // MARK: Wire

    public init(from r: inout WireReader) throws(WireError) {
        try r.require(Self.wireSize)
        valueType = KVPValueType(rawValue: try r.readUInt32())
        keySize = try r.readUInt32()
        valueSize = try r.readUInt32()
        key = try r.readBytes(Self.maxKeySize)
        value = try r.readBytes(Self.maxValueSize)
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(valueType.rawValue)
        w.writeUInt32(keySize)
        w.writeUInt32(valueSize)
        w.writeField(key, Self.maxKeySize)
        w.writeField(value, Self.maxValueSize)
    }
}
