import VMBusWire

/// `struct hv_kvp_msg_delete` (516 bytes): the key to delete, in the same encoding rules as
/// ``KVPExchangeValue``.
public struct KVPDelete: Equatable, Sendable, WireCodable {
    public static let cName = "hv_kvp_msg_delete"
    public static let wireSize = 516

    public var keySize: UInt32
    public var key: [UInt8]

    public init(keySize: UInt32 = 0, key: [UInt8] = []) {
        self.keySize = keySize
        self.key = fixedField(key, KVPExchangeValue.maxKeySize)
    }

    public init(key s: String, encoding: ICStringEncoding, overflow: ICStringOverflow = .reject) throws(WireError) {
        let (bytes, size) = try KVPExchangeValue.field(s, encoding, KVPExchangeValue.maxKeySize, overflow, "key")
        self.init(keySize: size, key: bytes)
    }

    /// The key through `key_size`: over 512 throws, and so, unless `termination` is `.tolerated`, does a key
    /// without its NUL (see ``ICString/decode(_:size:as:termination:fieldName:)``).
    public func keyString(encoding: ICStringEncoding,
                          termination: ICStringTermination = .required) throws(WireError) -> String {
        try ICString.decode(key, size: Int(keySize), as: encoding, termination: termination, fieldName: "key_size")
    }

    public init(from r: inout WireReader) throws(WireError) {
        try r.require(Self.wireSize)
        keySize = try r.readUInt32()
        key = try r.readBytes(KVPExchangeValue.maxKeySize)
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(keySize)
        w.writeField(key, KVPExchangeValue.maxKeySize)
    }
}
