import VMBusWire

/// `struct hv_kvp_register` (512 bytes): the character-device handshake only. Linux answers a daemon's
/// KVP_OP_REGISTER1 with this, `version` holding its driver version as a C string.
public struct KVPRegister: Equatable, Sendable, WireCodable {
    public static let cName = "hv_kvp_register"
    public static let wireSize = 512

    /// `version[512]`
    public var version: [UInt8]

    public init(version: [UInt8] = []) { self.version = fixedField(version, Self.wireSize) }

    /// A NUL-terminated UTF-8 version string; over-long strings throw.
    public init(versionString: String) throws(WireError) {
        self.init(version: try ICString.encode(versionString, as: .utf8, capacity: Self.wireSize, field: "version").bytes)
    }

    public var versionString: String {
        // The whole field bounds the string, so decoding cannot fail.
        (try? ICString.decode(version, as: .utf8, termination: .tolerated)) ?? ""
    }

    public init(from r: inout WireReader) throws(WireError) {
        version = try r.readBytes(Self.wireSize)
    }

    public func encode(into w: inout WireWriter) { w.writeField(version, Self.wireSize) }
}
