import VMBusWire

/// `struct rndis_config_parameter_info` and its name and value: the value of SET
/// OID_GEN_RNDIS_CONFIG_PARAMETER. Linux changes the MAC address with it: name "NetworkAddress", a string
/// value of 12 hex digits, both UTF-16LE and placed right after the struct, the name first.
public struct RNDISConfigParameterInfo: WireDecodable, WireEncodable, Equatable, Sendable {
    public static let cName = "rndis_config_parameter_info"
    public static let wireSize = 20
    /// `RNDIS_CONFIG_PARAM_TYPE_INTEGER`
    public static let typeInteger: UInt32 = 0
    /// `RNDIS_CONFIG_PARAM_TYPE_STRING`
    public static let typeString: UInt32 = 2
    /// The parameter name Linux sets for a MAC change.
    public static let networkAddressName = "NetworkAddress"

    /// The raw name and value (UTF-16LE for strings).
    public var name: [UInt8]
    public var type: UInt32
    public var value: [UInt8]

    public init(name: [UInt8], type: UInt32, value: [UInt8]) {
        self.name = name
        self.type = type
        self.value = value
    }

    /// A string parameter, both parts UTF-16LE.
    public init(name: String, stringValue: String) {
        self.init(name: Self.utf16LE(name), type: Self.typeString, value: Self.utf16LE(stringValue))
    }

    /// The MAC-change parameter: "NetworkAddress" = the six bytes as 12 upper-case hex digits.
    public static func networkAddress(_ mac: [UInt8]) -> Self {
        let digits = mac.map { b -> String in
            let s = String(b, radix: 16, uppercase: true)
            return s.count == 1 ? "0" + s : s
        }.joined()
        return Self(name: networkAddressName, stringValue: digits)
    }

    static func utf16LE(_ s: String) -> [UInt8] { s.utf16.flatMap { [UInt8(truncatingIfNeeded: $0), UInt8($0 >> 8)] } }

    /// The name and value read as UTF-16LE (invalid units become U+FFFD; an odd last byte is dropped).
    public var nameString: String { Self.string(name) }
    public var valueString: String { Self.string(value) }

    private static func string(_ b: [UInt8]) -> String {
        let units = stride(from: 0, to: b.count - 1, by: 2).map { UInt16(b[$0]) | UInt16(b[$0 + 1]) << 8 }
        return String(decoding: units, as: UTF16.self)
    }

    /// Decodes from an info buffer that runs to the end of `r`; name and value must lie in it, past the
    /// fixed fields.
    public init(from r: inout WireReader) throws(WireError) {
        let s = try r.readSubReader(r.remaining)
        var b = s
        let nameOffset = try b.readUInt32()
        let nameLength = try b.readUInt32()
        type = try b.readUInt32()
        let valueOffset = try b.readUInt32()
        let valueLength = try b.readUInt32()
        name = try RNDISInfoBuffer.read(s, offset: nameOffset, length: nameLength, fixedSize: Self.wireSize,
                                        field: "parameter_name_offset")
        value = try RNDISInfoBuffer.read(s, offset: valueOffset, length: valueLength, fixedSize: Self.wireSize,
                                         field: "parameter_value_offset")
    }

    public func encode(into w: inout WireWriter) {
        w.writeUInt32(UInt32(Self.wireSize))
        w.writeUInt32(UInt32(truncatingIfNeeded: name.count))
        w.writeUInt32(type)
        w.writeUInt32(UInt32(truncatingIfNeeded: Self.wireSize + name.count))
        w.writeUInt32(UInt32(truncatingIfNeeded: value.count))
        w.writeBytes(name)
        w.writeBytes(value)
    }
}
